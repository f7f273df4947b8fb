"""Events written with one statement per chunk (delivery/rows.py, outbox.enqueue_rows)."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from configcat_segment.database import counts, staging
from configcat_segment.delivery import outbox, rows
from configcat_segment.delivery.rows import build_row, insert_rows
from configcat_segment.models import Event, EventCount
from configcat_segment.segment import payloads as messages
from configcat_segment.signals import event_dead

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["copy", "each"])
def way(request, monkeypatch):
    """Both ways PostgreSQL is written to: by COPY and one INSERT (from ``COPY_FROM`` rows
    on), or one pipelined statement per row. (On SQLite both are its multi-row VALUES.)"""
    monkeypatch.setattr(rows, "COPY_FROM", 1 if request.param == "copy" else 10**9)
    return request.param


def message(n, **properties):
    return messages.track(
        event="Feature Flag Evaluated",
        properties={"feature_flag_key": f"f{n}", **properties},
        user_id=f"user-{n}",
        timestamp=timezone.now(),
        message_id=f"m{n}",
    )


def test_rows_are_written_as_the_orm_would_write_them(segment_connection, way):
    now = timezone.now()
    rows = [build_row(segment_connection.pk, message(n), flag_key=f"f{n}") for n in (1, 2)]
    assert insert_rows(rows, now=now) == 2
    event = Event.objects.get(message_id="m1")
    assert event.connection == segment_connection
    assert (event.type, event.event_name, event.flag_key, event.user_id) == (
        "track",
        "Feature Flag Evaluated",
        "f1",
        "user-1",
    )
    assert event.payload["messageId"] == "m1"
    assert event.payload["properties"] == {"feature_flag_key": "f1"}
    assert (event.status, event.attempts, event.last_error) == ("pending", 0, "")
    assert event.created_at == event.queued_at == event.next_attempt_at == now
    assert event.delivered_at is None
    assert event.receipt is None
    assert list(Event.objects.due(now)) == [Event.objects.get(message_id="m2"), event]


def test_a_stored_message_id_is_skipped(segment_connection, way):
    now = timezone.now()
    insert_rows([build_row(segment_connection.pk, message(1))], now=now)
    rows = [build_row(segment_connection.pk, message(n)) for n in (1, 2, 3)]
    assert insert_rows(rows, now=now) == 2
    assert Event.objects.count() == 3


def test_rows_are_written_in_the_callers_transaction(segment_connection, way):
    rows = [build_row(segment_connection.pk, message(1))]

    def write_then_fail() -> None:
        with transaction.atomic():
            insert_rows(rows, now=timezone.now())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert not Event.objects.exists()


def test_enqueue_rows_wakes_after_commit_and_reports_the_dead_it_wrote(segment_connection):
    woken, dead = [], []
    callback = lambda: woken.append(1)  # noqa: E731
    receiver = lambda sender, events, **kw: dead.extend(e.message_id for e in events)  # noqa: E731
    outbox.on_enqueued(callback)
    event_dead.connect(receiver)
    huge = message(9)
    huge["properties"]["huge"] = ["y" * 100] * 400
    try:
        with transaction.atomic():
            rows = [build_row(segment_connection.pk, m) for m in (message(1), huge)]
            assert outbox.enqueue_rows(rows) == 2
            assert woken == []
            assert dead == []
        assert woken == [1]
        assert dead == ["m9"]
        with transaction.atomic():  # again: nothing written, nothing reported
            assert outbox.enqueue_rows(rows) == 0
        assert woken == [1]
        assert dead == ["m9"]
    finally:
        outbox.remove_listener(callback)
        event_dead.disconnect(receiver)
    stored = Event.objects.get(message_id="m9")
    assert stored.status == "dead"
    assert "bytes" in stored.last_error


# -- PostgreSQL: COPY through a staging table ---------------------------------------------


@pytest.mark.postgres
def test_copied_rows_keep_their_order_and_each_copy_writes_only_its_own(segment_connection):
    now = timezone.now()
    first = [build_row(segment_connection.pk, message(n)) for n in range(120)]
    second = [build_row(segment_connection.pk, message(n)) for n in range(100, 260)]
    with transaction.atomic():  # the staging table is emptied by each copy, not by commit
        assert insert_rows(first, now=now) == 120
        assert insert_rows(second, now=now) == 140  # 100 to 119 are stored already
    stored = list(Event.objects.order_by("pk").values_list("message_id", flat=True))
    assert stored == [f"m{n}" for n in range(260)]
    counts.add_all_changes()
    assert counts_of(segment_connection) == {"pending": 260}


@pytest.mark.postgres
def test_without_leave_to_make_temporary_tables_rows_are_written_one_statement_each(
    segment_connection,
):
    """Where the database user may not create temporary tables, the COPY is not tried
    again, and the rows are written all the same."""
    connection.close()  # a new session: PostgreSQL checks the right when it first needs one
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN CREATE ROLE cs_test_no_temp NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute("GRANT USAGE ON SCHEMA public TO cs_test_no_temp")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO cs_test_no_temp")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO cs_test_no_temp")
        cursor.execute(
            f"REVOKE TEMPORARY ON DATABASE {connection.settings_dict['NAME']} FROM PUBLIC"
        )
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL ROLE cs_test_no_temp")
            rows_ = [build_row(segment_connection.pk, message(n)) for n in range(60)]
            assert insert_rows(rows_, now=timezone.now()) == 60
            assert connection.alias in staging._refused
            assert not staging.can_copy(connection)
            more = [build_row(segment_connection.pk, message(n)) for n in range(60, 120)]
            assert insert_rows(more, now=timezone.now()) == 60
    finally:
        staging._refused.discard(connection.alias)
        with connection.cursor() as cursor:
            cursor.execute(
                f"GRANT TEMPORARY ON DATABASE {connection.settings_dict['NAME']} TO PUBLIC"
            )
            cursor.execute("DROP OWNED BY cs_test_no_temp")
            cursor.execute("DROP ROLE cs_test_no_temp")
        connection.close()
    assert Event.objects.count() == 120


def counts_of(segment_connection):
    summed = EventCount.objects.summed(["status"], connection_id=segment_connection.pk)
    return {status: n for (status,), n in summed.items() if n}


@pytest.mark.postgres
def test_a_copy_that_fails_raises_django_s_error_and_leaves_the_transaction_usable(
    segment_connection,
):
    good = [build_row(segment_connection.pk, message(n)) for n in range(60)]
    bad = [*good[:30], good[30]._replace(text="{not json"), *good[31:]]
    with transaction.atomic():
        with pytest.raises(DatabaseError):  # Django's, as from any other statement
            insert_rows(bad, now=timezone.now())
        assert insert_rows(good, now=timezone.now()) == 60  # the savepoint went, not this
    assert Event.objects.count() == 60
    assert connection.alias not in staging._refused
