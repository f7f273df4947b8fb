"""A round's bounds: the lease, the split budget, refusals of everything, the order of
outcomes, the pause, and signals that fail. The dispatcher against the Segment-compatible
server, on a fake clock."""

import datetime as dt

import pytest

from configcat_segment import outbox, transport
from configcat_segment.dispatcher import MAX_SPLIT_REQUESTS, Dispatcher
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.signals import event_delivered

from .conftest import enqueue, message_id, statuses, track

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatcher(clock):
    return Dispatcher(clock=clock, random=lambda: 0.0)


def enqueue_big(connection, count):
    """Events of about 30 KB each: 16 fit in one request, so 20 take two."""
    return outbox.enqueue(
        [
            outbox.build_event(connection, track(n, message_id=f"big-{n}", details="x" * 30_000))
            for n in range(count)
        ]
    )


def slow_sender(clock, seconds):
    """Sends for real, while the fake clock says each request took ``seconds``."""

    def send(messages, **kwargs):
        clock.advance(seconds)
        return transport.send(messages, **kwargs)

    return send


def test_no_request_starts_that_could_outlast_the_lease(
    segment_server, connect_to, delivery_settings, clock
):
    delivery_settings(LEASE_SECONDS=60, HTTP_TIMEOUT_SECONDS=15)
    connection = connect_to(segment_server)
    enqueue_big(connection, 20)
    dispatcher = Dispatcher(clock=clock, send=slow_sender(clock, 50))
    report = dispatcher.deliver(connection.pk)
    # The first request was settled at once; the second would have ended past the lease.
    assert report.requests == 1
    assert (report.delivered, report.released, report.lost) == (16, 4, 0)
    assert report.more  # the lane goes on with them
    assert statuses() == {"delivered": 16, "pending": 4}
    assert set(Event.objects.filter(status="pending").values_list("attempts", flat=True)) == {0}
    assert dispatcher.deliver(connection.pk).delivered == 4
    assert segment_server.duplicates() == {}


def test_two_dispatchers_with_slow_requests_finish_instead_of_stealing_forever(
    segment_server, connect_to, delivery_settings, clock
):
    """Every request takes longer than half the lease: each round sends one and settles it,
    so the work gets done whichever dispatcher does it, and nothing is sent twice."""
    delivery_settings(LEASE_SECONDS=60, HTTP_TIMEOUT_SECONDS=15, BATCH_SIZE=40)
    connection = connect_to(segment_server)
    enqueue_big(connection, 40)
    a = Dispatcher(clock=clock, send=slow_sender(clock, 40))
    b = Dispatcher(clock=clock, send=slow_sender(clock, 40))
    for _ in range(10):
        if not Event.objects.exclude(status="delivered").exists():
            break
        a.deliver_due()
        b.deliver_due()
    assert statuses() == {"delivered": 40}
    assert segment_server.duplicates() == {}


def test_an_event_claimed_too_often_without_an_outcome_goes_dead_unsent(
    segment_server, connect_to, delivery_settings, clock
):
    """Its worker died while sending it, MAX_ATTEMPTS times over: it is not tried again."""
    delivery_settings(MAX_ATTEMPTS=3)
    dispatcher = Dispatcher(clock=clock)
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    killer = message_id(connection, 1)
    Event.objects.filter(message_id=killer).update(attempts=3)
    report = dispatcher.deliver(connection.pk)
    assert (report.delivered, report.dead) == (2, 1)
    dead = Event.objects.get(status="dead")
    assert dead.message_id == killer
    assert dead.last_error.startswith("Claimed more than 3 times without an outcome")
    assert killer not in segment_server.accepted_ids


def test_a_gateway_refusing_everything_kills_nothing(segment_server, connect_to, dispatcher, clock):
    connection = connect_to(segment_server)
    enqueue(connection, range(6))
    broken = [True]
    segment_server.fail_while(lambda: broken[0], 400)
    report = dispatcher.deliver(connection.pk)
    assert (report.dead, report.retrying) == (0, 6)
    assert report.requests == 11  # the batch, then halves down to each message alone
    connection.refresh_from_db()
    assert not connection.is_healthy
    assert connection.unhealthy_reason.startswith(
        "Segment refused every message it was sent, even one at a time: Segment answered 400"
    )
    assert set(Event.objects.values_list("status", "attempts")) == {("failed", 1)}
    broken[0] = False  # the gateway is fixed
    clock.move_to(connection.delivery_paused_until)
    assert dispatcher.deliver_due().delivered == 6
    connection.refresh_from_db()
    assert connection.is_healthy


def test_a_message_refused_when_alone_in_its_round_dies_once_others_get_through(
    segment_server, connect_to, dispatcher, clock
):
    connection = connect_to(segment_server)
    [poisoned] = enqueue(connection, [1])
    segment_server.poison(poisoned.message_id)
    report = dispatcher.deliver(connection.pk)
    assert (report.dead, report.retrying) == (0, 1)  # alone, it cannot be told from a gateway
    connection.refresh_from_db()
    assert connection.is_healthy  # one refusal is no evidence against the connection
    enqueue(connection, range(2, 5))
    clock.move_to(connection.delivery_paused_until)
    report = dispatcher.deliver_due()
    assert (report.delivered, report.dead) == (3, 1)
    assert Event.objects.get(status="dead").message_id == poisoned.message_id


def test_splitting_stops_at_its_budget_and_leaves_the_rest_queued(
    segment_server, connect_to, delivery_settings, dispatcher
):
    delivery_settings(BATCH_SIZE=500)
    connection = connect_to(segment_server)
    enqueue(connection, range(500))
    for n in range(0, 500, 50):  # ten refused messages: more than one round can find
        segment_server.poison(message_id(connection, n))
    report = dispatcher.deliver(connection.pk)
    assert report.requests == 1 + MAX_SPLIT_REQUESTS
    assert report.released > 0
    assert report.delivered + report.dead + report.released == 500
    assert report.more
    assert statuses()["pending"] == report.released
    while (report := dispatcher.deliver(connection.pk)).claimed:
        pass
    assert statuses() == {"delivered": 490, "dead": 10}


def test_a_refusal_after_a_delivery_in_one_round_leaves_the_connection_unhealthy(
    segment_server, connect_to, dispatcher
):
    connection = connect_to(segment_server)
    enqueue_big(connection, 20)
    answers = iter([None, transport.Answer(401, "Segment answered 401 unauthorized: revoked")])

    def send(messages, **kwargs):
        answer = next(answers)
        return answer or transport.send(messages, **kwargs)

    report = Dispatcher(clock=dispatcher.clock, send=send).deliver(connection.pk)
    assert (report.delivered, report.waiting) == (16, 4)
    connection.refresh_from_db()
    assert not connection.is_healthy
    assert connection.unhealthy_reason == "Segment answered 401 unauthorized: revoked"


@pytest.mark.parametrize("status", [406, 411, 415])
def test_a_refusal_of_the_request_itself_kills_nothing(
    segment_server, connect_to, dispatcher, status
):
    connection = connect_to(segment_server)
    enqueue(connection, range(4))
    segment_server.fail(status)
    report = dispatcher.deliver(connection.pk)
    assert (report.dead, report.waiting, report.requests) == (0, 4, 1)
    connection.refresh_from_db()
    assert not connection.is_healthy


def test_finding_due_connections_is_one_query_and_skips_paused_ones(
    segment_server, connect_to, dispatcher, clock, django_assert_num_queries
):
    ready, paused, idle = (connect_to(segment_server) for _ in range(3))
    enqueue(ready, range(50))
    enqueue(paused, range(50, 60))
    SegmentConnection.objects.filter(pk=paused.pk).update(
        delivery_paused_until=clock() + dt.timedelta(seconds=1)
    )
    with django_assert_num_queries(1):
        assert dispatcher.due_connections() == [ready.pk]
    clock.advance(1)
    assert sorted(dispatcher.due_connections()) == sorted([ready.pk, paused.pk])
    assert idle.pk not in dispatcher.due_connections()


def test_a_failing_signal_receiver_changes_nothing(
    segment_server, connect_to, dispatcher, django_capture_on_commit_callbacks, caplog
):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    heard = []

    def broken(sender, events, **kwargs):
        raise RuntimeError("a receiver's bug")

    def listening(sender, events, **kwargs):
        heard.extend(e.message_id for e in events)

    event_delivered.connect(broken, dispatch_uid="test-broken")
    event_delivered.connect(listening, dispatch_uid="test-listening")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = dispatcher.deliver(connection.pk)
    finally:
        event_delivered.disconnect(dispatch_uid="test-broken")
        event_delivered.disconnect(dispatch_uid="test-listening")
    assert report.delivered == 3
    assert sorted(heard) == sorted(message_id(connection, n) for n in range(3))
    assert "a receiver's bug" in caplog.text
