"""The dispatcher against the Segment-compatible server, on a fake clock."""

import datetime as dt
import json

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configcat_segment.delivery import claims, outbox
from configcat_segment.delivery.dispatcher import OVERSIZED_ERROR, Dispatcher
from configcat_segment.models import Event, EventClaim
from configcat_segment.segment import transport
from configcat_segment.signals import event_dead, event_delivered
from tests.segment_server import refused_url

from .conftest import enqueue, message_id, statuses, track

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatcher(clock):
    return Dispatcher(clock=clock, random=lambda: 0.0)


@pytest.fixture
def received():
    """Signals received: a list of ("delivered" | "dead", [message ids])."""
    calls = []

    def on_delivered(sender, events, **kwargs):
        calls.append(("delivered", [e.message_id for e in events]))

    def on_dead(sender, events, **kwargs):
        calls.append(("dead", [(e.message_id, e.last_error) for e in events]))

    event_delivered.connect(on_delivered, dispatch_uid="test-delivered")
    event_dead.connect(on_dead, dispatch_uid="test-dead")
    yield calls
    event_delivered.disconnect(dispatch_uid="test-delivered")
    event_dead.disconnect(dispatch_uid="test-dead")


def test_due_events_are_delivered_and_marked_with_the_time(
    segment_server, connect_to, dispatcher, clock, received, django_capture_on_commit_callbacks
):
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    with django_capture_on_commit_callbacks(execute=True):
        report = dispatcher.deliver(connection.pk)
    assert (report.claimed, report.delivered, report.requests) == (5, 5, 1)
    expected = sorted(message_id(connection, n) for n in range(5))
    assert sorted(segment_server.accepted_ids) == expected
    for event in Event.objects.all():
        assert (event.status, event.attempts, event.last_error) == ("delivered", 1, "")
        assert event.delivered_at == clock()
        assert (
            segment_server.accepted_messages[segment_server.accepted_ids.index(event.message_id)]
            == event.payload
        )
    assert received == [("delivered", [message_id(connection, n) for n in range(5)])]


def test_only_due_events_are_sent(segment_server, connect_to, dispatcher, clock):
    connection = connect_to(segment_server)
    enqueue(connection, range(4))
    later = clock() + dt.timedelta(minutes=5)
    Event.objects.filter(message_id=message_id(connection, 0)).update(
        status="failed", next_attempt_at=later
    )
    Event.objects.filter(message_id=message_id(connection, 1)).update(status="dead")
    Event.objects.filter(message_id=message_id(connection, 2)).update(status="delivered")
    assert dispatcher.due_connections() == [connection.pk]
    dispatcher.deliver_due()
    assert segment_server.accepted_ids == [message_id(connection, 3)]
    assert dispatcher.due_connections() == []
    clock.move_to(later)
    assert dispatcher.due_connections() == [connection.pk]
    dispatcher.deliver_due()
    assert segment_server.accepted_ids[-1] == message_id(connection, 0)


def test_events_are_claimed_in_batches_and_each_connection_gets_its_own_requests(
    segment_server, connect_to, dispatcher, delivery_settings
):
    delivery_settings(BATCH_SIZE=10)
    dispatcher = Dispatcher(clock=dispatcher.clock)
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(25))
    enqueue(second, range(3))
    report = dispatcher.deliver(first.pk)
    assert (report.claimed, report.more) == (10, True)
    total = dispatcher.deliver_due()
    assert total.delivered == 18
    assert statuses() == {"delivered": 28}
    by_key = {}
    for request in segment_server.requests:
        by_key.setdefault(request.write_key, []).append(len(request.message_ids))
    assert by_key == {first.write_key: [10, 10, 5], second.write_key: [3]}


def test_a_claim_is_split_into_requests_within_segment_s_limits(
    segment_server, connect_to, dispatcher, delivery_settings
):
    delivery_settings(BATCH_SIZE=3000)
    dispatcher = Dispatcher(clock=dispatcher.clock)
    connection = connect_to(segment_server)
    outbox.enqueue(
        [
            outbox.build_event(connection, track(n, message_id=f"big-{n}", details="x" * 30_000))
            for n in range(30)
        ]
        + [outbox.build_event(connection, track(n, message_id=f"small-{n}")) for n in range(2600)]
    )
    report = dispatcher.deliver(connection.pk)
    assert report.delivered == 2630
    assert all(r.status == 200 for r in segment_server.requests)  # the server enforces limits
    assert all(len(r.message_ids) <= 2500 for r in segment_server.requests)
    assert all(r.body_bytes <= 500_000 for r in segment_server.requests)
    assert len(segment_server.requests) == report.requests == 4  # 17 + 13 big, then 2500 + 100


def test_a_message_that_is_too_big_is_never_sent_and_never_poisons_a_batch(
    segment_server, connect_to, dispatcher, received, django_capture_on_commit_callbacks
):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    # Written too big (e.g. edited after the fact): the dispatcher checks again.
    big = Event.objects.get(message_id=message_id(connection, 1))
    big.payload["properties"]["details"] = "x" * 40_000
    big.save()
    # Too big when written: dead on arrival, never claimed.
    outbox.enqueue([outbox.build_event(connection, track(9, message_id="doa", junk=[1] * 20_000))])
    with django_capture_on_commit_callbacks(execute=True):
        dispatcher.deliver_due()
    assert sorted(segment_server.accepted_ids) == [message_id(connection, n) for n in (0, 2)]
    big.refresh_from_db()
    assert (big.status, big.last_error) == ("dead", OVERSIZED_ERROR)
    assert Event.objects.get(message_id="doa").attempts == 0
    assert ("dead", [(big.message_id, OVERSIZED_ERROR)]) in received


def test_an_unavailable_segment_means_retry_later_with_backoff(
    segment_server, connect_to, dispatcher, clock
):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    segment_server.fail(503)
    report = dispatcher.deliver(connection.pk)
    assert (report.retrying, report.delivered) == (3, 0)
    for event in Event.objects.all():
        assert event.status == "failed"
        assert event.attempts == 1
        assert event.next_attempt_at == clock() + dt.timedelta(seconds=2)  # RETRY_BASE_SECONDS
        assert event.last_error == "Segment answered 503 unavailable: Injected fault"
    assert dispatcher.deliver_due().claimed == 0  # not before its time
    clock.advance(2)
    assert dispatcher.deliver_due().delivered == 3
    assert set(Event.objects.values_list("attempts", flat=True)) == {2}
    assert set(Event.objects.values_list("last_error", flat=True)) == {""}


def test_backoff_grows_with_each_attempt(segment_server, connect_to, clock):
    connection = connect_to(segment_server)
    [event] = enqueue(connection, [1])

    def waits(dispatcher, failures):
        segment_server.fail(500, times=failures)
        seconds = []
        for _ in range(failures):
            before = clock()
            dispatcher.deliver(connection.pk)
            event.refresh_from_db()
            seconds.append(round((event.next_attempt_at - before).total_seconds()))
            clock.move_to(event.next_attempt_at)
        return seconds

    # random() == 0: the floor of full jitter, every time.
    assert waits(Dispatcher(clock=clock, random=lambda: 0.0), 4) == [2, 2, 2, 2]
    # random() ~ 1: the ceiling, doubling with attempts 5, 6, 7.
    assert waits(Dispatcher(clock=clock, random=lambda: 0.999999), 3) == [32, 64, 128]


def test_retry_after_is_honoured(segment_server, connect_to, dispatcher, clock):
    connection = connect_to(segment_server)
    [event] = enqueue(connection, [1])
    segment_server.fail(429, retry_after="30")
    dispatcher.deliver(connection.pk)
    event.refresh_from_db()
    assert event.next_attempt_at == clock() + dt.timedelta(seconds=30)
    assert event.status == "failed"


def test_when_one_request_fails_the_rest_of_the_round_waits_untried(
    segment_server, connect_to, dispatcher, clock
):
    connection = connect_to(segment_server)
    outbox.enqueue(
        [
            outbox.build_event(connection, track(n, message_id=f"big-{n}", details="x" * 30_000))
            for n in range(20)
        ]
    )
    segment_server.fail(503)
    report = dispatcher.deliver(connection.pk)
    assert report.requests == 1  # the second request was not sent
    assert report.retrying + report.released == 20
    assert report.released > 0
    untried = Event.objects.filter(attempts=0)
    assert untried.count() == report.released
    assert set(untried.values_list("status", "last_error")) == {("pending", "")}
    connection.refresh_from_db()
    assert connection.delivery_paused_until == clock() + dt.timedelta(seconds=2)
    assert dispatcher.deliver_due().requests == 0  # paused: due, yet not sent
    clock.advance(2)
    assert dispatcher.deliver_due().delivered == 20


def test_no_answer_means_retry(connect_to, make_connection, dispatcher):
    connection = make_connection(region="custom", custom_endpoint=refused_url())
    enqueue(connection, range(2))
    report = dispatcher.deliver(connection.pk)
    assert report.retrying == 2
    event = Event.objects.first()
    assert event.status == "failed"
    assert event.last_error.startswith("No answer from http://127.0.0.1:")


def test_a_timeout_means_retry(segment_server, connect_to, delivery_settings, clock):
    delivery_settings(HTTP_TIMEOUT_SECONDS=0.2)
    connection = connect_to(segment_server)
    enqueue(connection, [1])
    gate = segment_server.hold()
    try:
        report = Dispatcher(clock=clock).deliver(connection.pk)
    finally:
        gate.release()
    assert report.retrying == 1
    assert "timed out" in Event.objects.get().last_error.lower()


def test_events_go_dead_after_the_maximum_attempts(
    segment_server,
    connect_to,
    delivery_settings,
    clock,
    received,
    django_capture_on_commit_callbacks,
):
    delivery_settings(MAX_ATTEMPTS=3)
    dispatcher = Dispatcher(clock=clock, random=lambda: 0.0)
    connection = connect_to(segment_server)
    enqueue(connection, range(2))
    segment_server.fail(503, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            dispatcher.deliver(connection.pk)
            clock.advance(3600)
    error = "Gave up after 3 attempts. Last error: Segment answered 503 unavailable: Injected fault"
    assert set(Event.objects.values_list("status", "attempts", "last_error")) == {
        ("dead", 3, error)
    }
    assert received == [("dead", [(message_id(connection, n), error) for n in range(2)])]
    assert dispatcher.deliver_due().claimed == 0


def test_events_go_dead_after_the_maximum_age(segment_server, connect_to, delivery_settings, clock):
    delivery_settings(MAX_AGE_SECONDS=3600)
    connection = connect_to(segment_server)
    enqueue(connection, [1], now=clock() - dt.timedelta(seconds=3600))
    segment_server.fail(503)
    Dispatcher(clock=clock).deliver(connection.pk)
    event = Event.objects.get()
    assert event.status == "dead"
    assert event.last_error == (
        "Gave up: queued longer than the maximum of 1 h. "
        "Last error: Segment answered 503 unavailable: Injected fault"
    )


def test_an_old_event_is_still_delivered_when_segment_takes_it(
    segment_server, connect_to, delivery_settings, clock
):
    delivery_settings(MAX_AGE_SECONDS=3600)
    connection = connect_to(segment_server)
    enqueue(connection, [1], now=clock() - dt.timedelta(days=2))
    assert Dispatcher(clock=clock).deliver(connection.pk).delivered == 1


def test_a_refused_batch_is_split_to_find_the_culprit(
    segment_server, connect_to, dispatcher, received, django_capture_on_commit_callbacks
):
    connection = connect_to(segment_server)
    enqueue(connection, range(16))
    poisoned = message_id(connection, 11)
    segment_server.poison(poisoned, "Invalid timestamp")
    with django_capture_on_commit_callbacks(execute=True):
        report = dispatcher.deliver(connection.pk)
    assert (report.delivered, report.dead) == (15, 1)
    assert report.requests == 1 + 2 * 4  # the whole batch, then two halves per level
    dead = Event.objects.get(status="dead")
    assert dead.message_id == poisoned
    assert dead.last_error == "Segment answered 400 invalid_request: Invalid timestamp"
    assert sorted(segment_server.accepted_ids) == sorted(
        message_id(connection, n) for n in range(16) if n != 11
    )
    assert ("dead", [(poisoned, dead.last_error)]) in received
    assert sum(len(ids) for kind, ids in received if kind == "delivered") == 15


def test_two_culprits_in_one_batch(segment_server, connect_to, dispatcher):
    connection = connect_to(segment_server)
    enqueue(connection, range(10))
    segment_server.poison(message_id(connection, 0))
    segment_server.poison(message_id(connection, 9))
    report = dispatcher.deliver(connection.pk)
    assert (report.delivered, report.dead) == (8, 2)


def test_a_message_segment_would_refuse_goes_dead_alone(segment_server, connect_to, dispatcher):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    Event.objects.filter(message_id=message_id(connection, 1)).update(
        payload={"type": "track", "event": "x", "messageId": message_id(connection, 1)}
    )
    dispatcher.deliver(connection.pk)
    dead = Event.objects.get(status="dead")
    assert dead.last_error == (
        "Segment answered 400 no_user_anon_id: userId or anonymousId is required"
    )
    assert statuses() == {"delivered": 2, "dead": 1}


def test_events_of_a_disconnected_connection_wait_for_it_to_be_reconnected(
    segment_server, connect_to, dispatcher
):
    connection = connect_to(segment_server)
    enqueue(connection, range(2))
    connection.disconnect()
    assert dispatcher.due_connections() == []
    assert dispatcher.deliver(connection.pk).claimed == 0
    assert segment_server.requests == []
    assert statuses() == {"pending": 2}
    connection.connect()
    assert dispatcher.deliver_due().delivered == 2


def test_a_worker_whose_lease_ran_out_cannot_overwrite_a_newer_claim(
    segment_server, connect_to, delivery_settings, clock
):
    """A is slow: its lease runs out, B claims and delivers, then A's answer arrives."""
    delivery_settings(LEASE_SECONDS=60)
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    b = Dispatcher(clock=clock)
    b_reports = []

    def slow_send(messages, **kwargs):
        clock.advance(61)  # A's lease has run out while it was waiting
        b_reports.append(b.deliver(connection.pk))  # B claims the same events, delivers
        return transport.Answer(503, "A's late failure")

    a = Dispatcher(clock=clock, send=slow_send)
    a_report = a.deliver(connection.pk)
    assert b_reports[0].delivered == 3
    assert (a_report.lost, a_report.retrying) == (3, 0)
    assert set(Event.objects.values_list("status", "attempts", "last_error")) == {
        ("delivered", 2, "")
    }
    assert segment_server.duplicates() == {}


def test_while_segment_fails_the_connection_s_backlog_waits_behind_the_failed_batch(
    segment_server, connect_to, delivery_settings, clock
):
    """A 429 (or 5xx) pauses the whole connection: one request per backoff step."""
    delivery_settings(BATCH_SIZE=5)
    connection = connect_to(segment_server)
    enqueue(connection, range(12))
    segment_server.fail(429, retry_after="30")
    dispatcher = Dispatcher(clock=clock, random=lambda: 0.0)
    report = dispatcher.deliver_due()
    assert (report.requests, report.retrying) == (1, 5)
    retry_at = clock() + dt.timedelta(seconds=30)
    connection.refresh_from_db()
    assert connection.delivery_paused_until == retry_at
    assert set(Event.objects.filter(attempts=1).values_list("next_attempt_at", flat=True)) == {
        retry_at
    }
    assert sorted(Event.objects.values_list("attempts", flat=True)) == [0] * 7 + [1] * 5
    enqueue(connection, range(100, 103))  # written during the wait: they wait too
    clock.advance(29)
    assert dispatcher.deliver_due().requests == 0
    clock.move_to(retry_at)
    assert dispatcher.deliver_due().delivered == 15


def test_a_message_shrunk_when_written_is_delivered_within_segment_s_limit(
    segment_server, connect_to, dispatcher
):
    connection = connect_to(segment_server)
    big_value = track(
        1,
        message_id="long-value",
        value='{"theme": "' + "x" * 40_000 + '"}',
        variation_id="v-1a2b",
    )
    big_user = track(
        2,
        message_id="big-user",
        user={"Identifier": "u2", "Email": "u2@example.com", "notes": "y" * 40_000},
    )
    outbox.enqueue([outbox.build_event(connection, m) for m in (big_value, big_user)])
    assert dispatcher.deliver_due().delivered == 2
    sent = {m["messageId"]: m for m in segment_server.accepted_messages}
    assert sent["long-value"]["properties"]["value"] == "v-1a2b"  # as the seed documents ask
    assert sent["big-user"]["properties"]["user"] == {
        "Identifier": "u2",
        "Email": "u2@example.com",
        "_trimmed": True,
    }
    assert all(len(json.dumps(m).encode()) <= 32 * 1024 for m in sent.values())


def test_the_claim_reads_the_due_index_in_order(segment_server, connect_to):
    """The statuses are written into the SQL: with parameters, SQLite cannot tell that the
    query matches the partial index, and sorted every due row on each claim."""
    connection = connect_to(segment_server)
    due = Event.objects.due().filter(connection=connection).order_by("next_attempt_at")
    sql, params = due.values_list("pk").query.sql_with_params()
    assert "IN ('pending', 'failed')" in sql
    if db_connection.vendor == "sqlite":
        with db_connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "USING INDEX cs_event_conn_due" in plan
        assert "TEMP B-TREE" not in plan


def test_in_constants_takes_identifiers_only():
    with pytest.raises(ValueError, match="identifiers only"):
        str(Event.objects.filter(status__in_constants=["x') OR ('1"]).query)


def test_a_claim_is_one_statement_that_reads_the_due_index_in_order(segment_server, connect_to):
    """Choosing, locking, leasing and reading back the claimed events is one statement
    that writes the claims table only, and on SQLite it reads the partial "due" index in
    order rather than sorting."""
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    before = list(Event.objects.order_by("pk").values())
    now = timezone.now()
    lease = now + dt.timedelta(minutes=5)
    with CaptureQueriesContext(db_connection) as queries:
        claimed = claims.claim("default", connection, now, lease, 3)
    statements = [q["sql"] for q in queries if "eventclaim" in q["sql"].lower()]
    assert len(statements) == 1
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert [e.attempts for e in claimed] == [1, 1, 1]
    assert [e.pk for e in claimed] == sorted(e.pk for e in claimed)
    assert {json.loads(e.text)["messageId"] for e in claimed} <= {
        message_id(connection, n) for n in range(5)
    }
    assert list(Event.objects.order_by("pk").values()) == before  # the events: untouched
    leases = EventClaim.objects.values_list("event_id", "lease_until", "claims")
    assert sorted(leases) == [(e.pk, lease, 1) for e in claimed]
    if db_connection.vendor == "sqlite":
        with db_connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + statements[0])
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "USING INDEX cs_event_conn_due" in plan
        assert "TEMP B-TREE" not in plan


def test_the_statements_of_a_round_do_not_grow_with_its_events(
    segment_server, connect_to, dispatcher
):
    """Claimed events are settled by their keys passed whole, not one placeholder each."""
    connection = connect_to(segment_server)
    counts = []
    for size in (2, 40):
        enqueue(connection, range(size * 10, size * 11))
        with CaptureQueriesContext(db_connection) as queries:
            assert dispatcher.deliver(connection.pk).delivered == size
        counts.append(len(queries))
        settle = [q["sql"] for q in queries if "delivered_at" in q["sql"] and "UPDATE" in q["sql"]]
        assert len(settle) == 1
        assert "= ANY(" in settle[0] or "json_each(" in settle[0]
    assert counts[0] == counts[1]


@pytest.mark.parametrize("extra", [0, 1, 1200])
def test_any_of_finds_exactly_the_keys_given(segment_server, connect_to, extra):
    """Keys passed as one parameter: none, some, and more than SQLite's old limit of
    999 placeholders, mixed with keys that match nothing."""
    connection = connect_to(segment_server)
    enqueue(connection, range(4))
    pks = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    missing = [max(pks) + 1 + n for n in range(extra)]
    given = pks[1:3] + missing if extra else []
    found = Event.objects.filter(pk__any_of=given).order_by("pk").values_list("pk", flat=True)
    assert list(found) == (pks[1:3] if extra else [])
