"""Events written with one statement per chunk (delivery/rows.py, outbox.enqueue_rows)."""

import pytest
from django.db import transaction
from django.utils import timezone

from configcat_segment.delivery import outbox
from configcat_segment.delivery.rows import build_row, insert_rows
from configcat_segment.models import Event
from configcat_segment.segment import payloads as messages
from configcat_segment.signals import event_dead

pytestmark = pytest.mark.django_db(transaction=True)


def message(n, **properties):
    return messages.track(
        event="Feature Flag Evaluated",
        properties={"feature_flag_key": f"f{n}", **properties},
        user_id=f"user-{n}",
        timestamp=timezone.now(),
        message_id=f"m{n}",
    )


def test_rows_are_written_as_the_orm_would_write_them(segment_connection):
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


def test_a_stored_message_id_is_skipped(segment_connection):
    now = timezone.now()
    insert_rows([build_row(segment_connection.pk, message(1))], now=now)
    rows = [build_row(segment_connection.pk, message(n)) for n in (1, 2, 3)]
    assert insert_rows(rows, now=now) == 2
    assert Event.objects.count() == 3


def test_rows_are_written_in_the_callers_transaction(segment_connection):
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
