"""The runner loop: lanes per connection, waking, stopping (threads, real database)."""

import logging
import threading
import time

import pytest

from configcat_segment.delivery import outbox
from configcat_segment.delivery.backends.thread import ThreadBackend, in_test_environment
from configcat_segment.delivery.dispatcher import Dispatcher, Report
from configcat_segment.delivery.forkguard import ForkGuard
from configcat_segment.delivery.runner import Runner
from configcat_segment.models import Event

from ..threads import assert_fork_waits_until
from .conftest import enqueue, statuses, track

pytestmark = pytest.mark.django_db(transaction=True)

SAFETY = 30  # seconds: only ever reached when something is broken


def wait_for(condition, timeout=SAFETY):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


@pytest.fixture
def running():
    """Start ``runner.run()`` in a thread; stopped and joined at the end of the test."""
    started = []

    def start(runner, **kwargs):
        thread = threading.Thread(target=runner.run, kwargs=kwargs, daemon=True)
        thread.start()
        started.append((runner, thread))
        return thread

    yield start
    for runner, thread in started:
        runner.stop()
        thread.join(SAFETY)
        assert not thread.is_alive()


def test_until_idle_delivers_everything_due_then_returns(segment_server, connect_to):
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(30))
    enqueue(second, range(5))
    report = Runner(poll_seconds=SAFETY).run(until_idle=True)
    assert report.delivered == 35
    assert statuses() == {"delivered": 35}


def test_connections_take_turns_when_more_are_due_than_lanes(
    segment_server, connect_to, delivery_settings
):
    delivery_settings(BATCH_SIZE=2)
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(6))
    enqueue(second, range(6))
    report = Runner(threads=1, poll_seconds=SAFETY).run(until_idle=True)
    assert report.delivered == 12
    served = [request.write_key for request in segment_server.requests]
    # A batch each in turn, not one's whole backlog before the other's.
    assert served in (
        [first.write_key, second.write_key] * 3,
        [second.write_key, first.write_key] * 3,
    )


def test_a_slow_connection_never_holds_up_another(segment_server, connect_to, running):
    slow, fast = connect_to(segment_server), connect_to(segment_server)
    gate = segment_server.hold(write_key=slow.write_key)
    enqueue(slow, range(3))
    enqueue(fast, range(4))
    runner = Runner(poll_seconds=SAFETY)
    running(runner)
    assert gate.arrived.wait(SAFETY)
    wait_for(lambda: statuses(connection=fast) == {"delivered": 4})
    assert statuses(connection=slow) == {"pending": 3}  # still in Segment's hands
    enqueue(fast, range(10, 12))
    runner.wake()
    wait_for(lambda: statuses(connection=fast) == {"delivered": 6})
    gate.release()
    wait_for(lambda: statuses(connection=slow) == {"delivered": 3})


def test_new_events_wake_the_runner_through_the_outbox(segment_server, connect_to, running):
    connection = connect_to(segment_server)
    runner = Runner(poll_seconds=SAFETY * 10)  # it would not look again on its own
    outbox.on_enqueued(runner.wake)
    try:
        running(runner)
        enqueue(connection, range(3))  # autocommit: notified at once
        wait_for(lambda: statuses() == {"delivered": 3})
    finally:
        outbox.remove_listener(runner.wake)


def test_stop_lets_the_batch_in_hand_finish(segment_server, connect_to, running):
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    gate = segment_server.hold()
    runner = Runner(poll_seconds=SAFETY)
    thread = running(runner)
    assert gate.arrived.wait(SAFETY)
    runner.stop()
    gate.release()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert statuses() == {"delivered": 5}
    assert runner.report.delivered == 5


def test_stop_ends_a_round_after_the_request_in_hand(segment_server, connect_to, running):
    """A round of several requests (messages of 30 KB): after stop(), the one in flight
    finishes, and the rest goes back to the queue untried."""
    connection = connect_to(segment_server)
    outbox.enqueue(
        [
            outbox.build_event(connection, track(n, message_id=f"big-{n}", details="x" * 30_000))
            for n in range(40)
        ]
    )
    gate = segment_server.hold()
    runner = Runner(poll_seconds=SAFETY)
    thread = running(runner)
    assert gate.arrived.wait(SAFETY)
    runner.stop()
    gate.release()
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert len(segment_server.requests) == 1
    assert statuses() == {"delivered": 16, "pending": 24}
    assert (runner.report.delivered, runner.report.released) == (16, 24)
    assert set(Event.objects.filter(status="pending").values_list("attempts", flat=True)) == {0}


def test_finish_delivers_what_is_due_then_stops(segment_server, connect_to, running):
    connection = connect_to(segment_server)
    runner = Runner(poll_seconds=SAFETY)
    thread = running(runner)
    enqueue(connection, range(4))
    runner.finish(timeout=SAFETY)
    thread.join(SAFETY)
    assert not thread.is_alive()
    assert statuses() == {"delivered": 4}


def test_a_lane_that_fails_is_logged_and_does_not_stop_the_others(
    segment_server, connect_to, caplog
):
    broken, fine = connect_to(segment_server), connect_to(segment_server)
    enqueue(broken, range(2))
    enqueue(fine, range(2))

    class FailsForOne(Dispatcher):
        def deliver(self, connection_id, **kwargs):
            if connection_id == broken.pk:
                raise RuntimeError("the database went away")
            return super().deliver(connection_id, **kwargs)

    runner = Runner(FailsForOne(), poll_seconds=SAFETY)
    with caplog.at_level(logging.ERROR, logger="configcat_segment"):
        report = runner.run(until_idle=True)
    assert report.delivered == 2
    assert runner.errors == 1
    assert statuses(connection=fine) == {"delivered": 2}
    assert statuses(connection=broken) == {"pending": 2}  # nothing lost
    assert f"delivering to {broken.pk} failed" in caplog.text


def test_the_fork_guard_waits_for_database_users_and_holds_new_ones():
    guard = ForkGuard()
    inside, leave, entered_while_forking = threading.Event(), threading.Event(), []

    def user():
        with guard.database():
            inside.set()
            leave.wait(SAFETY)

    first = threading.Thread(target=user)
    first.start()
    assert inside.wait(SAFETY)
    assert_fork_waits_until(guard, leave.set)  # waits while a thread is inside the database

    def latecomer():
        with guard.database():
            entered_while_forking.append(True)

    second = threading.Thread(target=latecomer)
    second.start()
    second.join(0.05)
    assert entered_while_forking == []  # held until the fork is over
    guard.after_fork_in_parent()
    second.join(SAFETY)
    assert entered_while_forking == [True]
    first.join(SAFETY)


def test_the_fork_guard_gives_up_waiting_after_its_timeout():
    guard = ForkGuard()
    with guard.database():
        guard.before_fork(timeout=0.01)  # returns: a fork is never blocked for good
    guard.after_fork_in_parent()


def test_a_connection_due_yet_with_nothing_to_claim_rests_until_the_next_poll(
    segment_server, connect_to
):
    """Its due rows are locked by another transaction, or held by another worker's live
    claims (the due index cannot tell): the claim finds nothing. The
    runner must not look again at once, which would spin for as long as the lock is held."""
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    rounds = []

    class NothingToClaim(Dispatcher):
        def deliver(self, connection_id, **kwargs):
            rounds.append(connection_id)
            if len(rounds) > 5:
                raise RuntimeError("spinning")  # the lane logs it, and rests at last
            return Report()

    report = Runner(NothingToClaim(), poll_seconds=SAFETY).run(until_idle=True)
    assert rounds == [connection.pk]
    assert report.claimed == 0
    assert statuses() == {"pending": 3}


def test_the_thread_runner_stays_off_in_django_s_test_environment(settings):
    """A test's request or event would otherwise start it: it would hold the test database
    open at teardown, and deliver the real database's events after it."""
    assert in_test_environment()  # pytest-django set up Django's test environment
    backend = ThreadBackend()
    assert backend.ensure_started() is None
    backend.on_request_started()
    backend.on_enqueued()
    assert backend.runner is None
    assert "configcat-segment-runner" not in {t.name for t in threading.enumerate()}


def test_stopping_from_a_signal_handler_takes_no_lock(segment_server, connect_to, running):
    """A signal handler runs in whatever thread the signal interrupts, which may be inside
    Event.wait() holding the event's own lock: Event.set() there never returns."""
    runner = Runner(poll_seconds=0.05)
    thread = running(runner)
    stopped = threading.Event()

    def handler_interrupting_a_wait():
        with runner._wake._cond:  # where the loop's thread may be when SIGTERM arrives
            runner.stop_from_signal()
        stopped.set()

    handler = threading.Thread(target=handler_interrupting_a_wait, daemon=True)
    handler.start()
    assert stopped.wait(SAFETY)
    thread.join(SAFETY)
    assert not thread.is_alive()
