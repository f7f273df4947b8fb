"""A round's bounds: the lease, the split budget, refusals of everything, the order of
outcomes, the pause, and signals that fail. The dispatcher against the Segment-compatible
server, on a fake clock."""

import datetime as dt
import threading
import uuid

import pytest
from django.db import connections as db_connections
from django.db import transaction

from configcat_segment.delivery import connection_state, outbox
from configcat_segment.delivery.dispatcher import MAX_SPLIT_REQUESTS, Dispatcher
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.segment import transport
from configcat_segment.signals import event_delivered

from .conftest import (
    SAFETY_SECONDS,
    deliver_until_done,
    enqueue,
    message_id,
    statuses,
    track,
)

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


def test_splitting_stops_at_its_budget_and_retries_the_rest_with_backoff(
    segment_server, connect_to, delivery_settings, clock
):
    delivery_settings(BATCH_SIZE=500)
    dispatcher = Dispatcher(clock=clock, random=lambda: 0.0)
    connection = connect_to(segment_server)
    enqueue(connection, range(500))
    for n in range(0, 500, 50):  # ten refused messages: more than one round can find
        segment_server.poison(message_id(connection, n))
    report = dispatcher.deliver(connection.pk)
    assert report.requests == 1 + MAX_SPLIT_REQUESTS
    assert report.retrying > 0  # refused but not narrowed down: tried, so an attempt counts
    assert report.delivered + report.dead + report.retrying == 500
    assert set(Event.objects.filter(status="failed").values_list("attempts", flat=True)) == {1}
    deliver_until_done(dispatcher, clock)
    assert statuses() == {"delivered": 490, "dead": 10}


def test_a_search_cut_short_by_the_lease_does_not_start_over_forever(
    segment_server, connect_to, delivery_settings, clock
):
    """Each request takes 2 s of a 14 s budget: no round can finish the search. The parts
    not narrowed down come back one by one, so each round searches deeper: the refused
    messages end dead with Segment's reason, every other one delivered."""
    delivery_settings(LEASE_SECONDS=30, HTTP_TIMEOUT_SECONDS=15, BATCH_SIZE=500, MAX_ATTEMPTS=10)
    connection = connect_to(segment_server)
    enqueue(connection, range(500))
    segment_server.poison(message_id(connection, 0))
    segment_server.poison(message_id(connection, 499))
    dispatcher = Dispatcher(clock=clock, send=slow_sender(clock, 2), random=lambda: 0.0)
    report = dispatcher.deliver(connection.pk)
    assert (report.requests, report.retrying) == (7, 500)
    deliver_until_done(dispatcher, clock, max_rounds=200)
    assert statuses() == {"delivered": 498, "dead": 2}
    dead = Event.objects.filter(status="dead")
    assert {e.message_id for e in dead} == {message_id(connection, n) for n in (0, 499)}
    for event in dead:  # alone in its last round, a refused message may run out of attempts
        assert event.last_error.endswith("Segment answered 400 invalid_request: Invalid message")
    assert segment_server.duplicates() == {}


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
    ready, paused, _idle, unplugged = (connect_to(segment_server) for _ in range(4))
    enqueue(ready, range(50))
    enqueue(paused, range(50, 60))
    enqueue(unplugged, range(60, 70))
    SegmentConnection.objects.filter(pk=paused.pk).update(
        delivery_paused_until=clock() + dt.timedelta(seconds=1)
    )
    SegmentConnection.objects.filter(pk=unplugged.pk).update(connected=False)
    with django_assert_num_queries(1):
        assert dispatcher.due_connections() == [ready.pk]
    clock.advance(1)
    assert sorted(dispatcher.due_connections()) == sorted([ready.pk, paused.pk])
    assert all(isinstance(key, uuid.UUID) for key in dispatcher.due_connections())
    Event.objects.filter(connection=ready).update(next_attempt_at=clock() + dt.timedelta(hours=1))
    assert dispatcher.due_connections() == [paused.pk]  # idle and unplugged never


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


def test_retry_after_counts_from_the_answer_not_from_the_start_of_the_round(
    segment_server, connect_to, clock
):
    """Request 1 (200) takes 50 s; request 2 gets a 429 with Retry-After: 30."""
    connection = connect_to(segment_server)
    enqueue_big(connection, 20)
    answers = iter([None, transport.Answer(429, "Segment answered 429 rate_limited", "30")])

    def send(messages, **kwargs):
        clock.advance(50)
        return next(answers) or transport.send(messages, **kwargs)

    dispatcher = Dispatcher(clock=clock, send=send, random=lambda: 0.0)
    assert dispatcher.deliver(connection.pk).retrying == 4
    answered_at = clock()
    connection.refresh_from_db()
    assert connection.delivery_paused_until == answered_at + dt.timedelta(seconds=30)
    assert dispatcher.due_connections() == []


def test_a_shorter_pause_never_cuts_a_longer_one(
    segment_server, connect_to, delivery_settings, clock
):
    """B gets 429 Retry-After: 600 while A's request is in flight; A then gets a 503 with a
    2 s backoff: Segment asked for 600 s, and gets them."""
    delivery_settings(BATCH_SIZE=2)
    connection = connect_to(segment_server)
    enqueue(connection, range(4))
    b = Dispatcher(
        clock=clock,
        random=lambda: 0.0,
        send=lambda messages, **kwargs: transport.Answer(429, "Segment answered 429", "600"),
    )

    def send_a(messages, **kwargs):
        assert b.deliver(connection.pk).retrying == 2
        return transport.Answer(503, "Segment answered 503")

    Dispatcher(clock=clock, random=lambda: 0.0, send=send_a).deliver(connection.pk)
    connection.refresh_from_db()
    assert connection.delivery_paused_until == clock() + dt.timedelta(seconds=600)


def test_another_dispatcher_s_pause_stops_a_round_between_requests(
    segment_server, connect_to, clock
):
    connection = connect_to(segment_server)
    enqueue_big(connection, 20)
    sent = []

    def send(messages, **kwargs):
        sent.append(len(messages))
        SegmentConnection.objects.filter(pk=connection.pk).update(
            delivery_paused_until=clock() + dt.timedelta(seconds=60)  # someone got a 429
        )
        return transport.send(messages, **kwargs)

    report = Dispatcher(clock=clock, send=send).deliver(connection.pk)
    assert len(sent) == 1
    assert (report.delivered, report.released) == (16, 4)


def test_an_answer_to_old_credentials_says_nothing_about_new_ones(
    segment_server, connect_to, clock
):
    """The write key is fixed (in the admin) while a request with the old one is in flight:
    its 401 must not mark the fixed connection unhealthy or pause it."""
    connection = connect_to(segment_server, accepted=False)
    enqueue(connection, range(3))
    fixed_key = "wk_fixed_while_in_flight_0123"
    segment_server.write_keys.add(fixed_key)

    def send(messages, **kwargs):
        saved = SegmentConnection.objects.get(pk=connection.pk)
        saved.write_key = fixed_key
        saved.save()
        return transport.send(messages, **kwargs)  # the old key: 401

    dispatcher = Dispatcher(clock=clock, random=lambda: 0.0, send=send)
    # Saving leaves the events this round is sending alone (they are pending, claimed);
    # the answer to the old key says nothing of the new one: they go back to the queue,
    # attempts untouched.
    report = dispatcher.deliver(connection.pk)
    assert (report.released, report.lost, report.waiting) == (3, 0, 0)
    connection.refresh_from_db()
    assert connection.is_healthy
    assert connection.delivery_paused_until is None
    assert Dispatcher(clock=clock).deliver_due().delivered == 3


def test_each_refused_message_keeps_its_own_reason(segment_server, connect_to, dispatcher):
    connection = connect_to(segment_server)
    enqueue(connection, range(8))
    segment_server.poison(message_id(connection, 1), "bad property 'a'")
    segment_server.poison(message_id(connection, 6), "bad property 'b'")
    report = dispatcher.deliver(connection.pk)
    assert (report.delivered, report.dead) == (6, 2)
    errors = dict(Event.objects.filter(status="dead").values_list("message_id", "last_error"))
    assert errors == {
        message_id(connection, 1): "Segment answered 400 invalid_request: bad property 'a'",
        message_id(connection, 6): "Segment answered 400 invalid_request: bad property 'b'",
    }


def test_a_round_stops_between_requests_when_asked(segment_server, connect_to, clock):
    connection = connect_to(segment_server)
    enqueue_big(connection, 40)
    stopping = []

    def send(messages, **kwargs):
        stopping.append(True)  # SIGTERM arrives during the first request
        return transport.send(messages, **kwargs)

    dispatcher = Dispatcher(clock=clock, send=send, should_stop=lambda: bool(stopping))
    report = dispatcher.deliver(connection.pk)
    assert (report.requests, report.delivered, report.released) == (1, 16, 24)
    assert statuses() == {"delivered": 16, "pending": 24}


def test_retry_now_lifts_the_pause(segment_server, connect_to, dispatcher):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    segment_server.fail(503, retry_after="3600")
    assert dispatcher.deliver(connection.pk).retrying == 3
    assert dispatcher.due_connections() == []
    assert outbox.requeue(Event.objects.filter(status="failed")) == 3
    connection.refresh_from_db()
    assert connection.delivery_paused_until is None
    assert dispatcher.deliver_due().delivered == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_settling_a_failure_and_saving_new_credentials_never_deadlock(
    segment_server, connect_to, clock, monkeypatch
):
    """The admin's save locks the connection's row, then (releasing it) its events. A
    dispatcher settling a 503 locks the row first too, so when the save comes in the middle
    of the settling, it waits for it instead of deadlocking (it did, when the dispatcher
    locked the events first)."""
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    settling = threading.Event()
    saved = threading.Event()
    errors = []
    pause = connection_state.pause

    def pause_when_the_save_has_begun(using, connection, until):
        settling.set()  # the events are updated: their rows are locked
        saved.wait(1)  # the save cannot finish (it waits for this transaction): time out
        return pause(using, connection, until)

    monkeypatch.setattr(connection_state, "pause", pause_when_the_save_has_begun)

    def admin_saves_a_new_key():
        try:
            settling.wait(SAFETY_SECONDS)
            with transaction.atomic():  # as the admin's change view
                row = SegmentConnection.objects.get(pk=connection.pk)
                row.write_key = "wk_new_key_0123456789abcdef"
                row.save()
            saved.set()
        except Exception as exc:
            errors.append(exc)
        finally:
            db_connections.close_all()

    admin = threading.Thread(target=admin_saves_a_new_key)
    admin.start()
    dispatcher = Dispatcher(
        clock=clock,
        random=lambda: 0.0,
        send=lambda messages, **kwargs: transport.Answer(503, "Segment answered 503"),
    )
    report = dispatcher.deliver(connection.pk)
    admin.join(SAFETY_SECONDS)
    assert errors == []
    assert report.retrying == 3
    # The save came second: the new key is not paused by the old key's 503.
    connection.refresh_from_db()
    assert connection.write_key == "wk_new_key_0123456789abcdef"
    assert connection.delivery_paused_until is None
