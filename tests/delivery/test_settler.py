"""Settling deliveries in the background while the next batch is sent (``delivery.settler``):
the settler's own promises, then the dispatcher's and the runner's with it (real database,
the Segment-compatible server)."""

import logging
import threading

import pytest
from django.db import connections

from configcat_segment.delivery import claims
from configcat_segment.delivery import runner as runner_module
from configcat_segment.delivery import settler as settler_module
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.delivery.forkguard import ForkGuard
from configcat_segment.delivery.runner import Runner
from configcat_segment.delivery.settler import Settler
from configcat_segment.models import Event, EventClaim

from ..threads import assert_fork_waits_until
from .conftest import SAFETY_SECONDS, enqueue, statuses

# Threads see only what is committed.
in_transactions = pytest.mark.django_db(transaction=True)


def claims_left() -> int:
    return EventClaim.objects.count()


# -- the settler ---------------------------------------------------------------------------


def database_went_away():
    raise RuntimeError("the database went away")


def test_settlements_run_in_order_on_a_thread_of_their_own_one_at_a_time():
    settler = Settler()
    ran: list[tuple[str, str]] = []
    first_may_end = threading.Event()

    def first():
        first_may_end.wait(SAFETY_SECONDS)
        ran.append(("first", threading.current_thread().name))

    def second():
        ran.append(("second", threading.current_thread().name))

    settler.submit(first)
    submitting = threading.Thread(target=settler.submit, args=(second,))
    submitting.start()
    # The second cannot be handed over while the first is in hand: let the first end.
    first_may_end.set()
    submitting.join(SAFETY_SECONDS)
    settler.close()
    assert ran == [("first", "configcat-segment-settle"), ("second", "configcat-segment-settle")]


def test_wait_raises_what_the_settlement_raised_and_the_settler_goes_on():
    settler = Settler()
    ran = []
    settler.submit(database_went_away)
    with pytest.raises(RuntimeError, match="the database went away"):
        settler.wait()
    settler.wait()  # raised once, then forgotten
    settler.submit(lambda: ran.append(1))
    settler.close()
    assert ran == [1]


def test_close_raises_what_the_settlement_in_hand_raised_and_still_ends_the_thread():
    settler = Settler()
    settler.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        settler.close()
    assert "configcat-segment-settle" not in {t.name for t in threading.enumerate()}


def test_a_fork_waits_for_the_settlement_in_hand():
    guard = ForkGuard()
    settler = Settler(guard)
    may_end = threading.Event()
    with guard.database():  # the lane, delivering
        settler.submit(lambda: may_end.wait(SAFETY_SECONDS))
    assert_fork_waits_until(guard, may_end.set)  # the settlement holds a share of the guard
    guard.after_fork_in_parent()
    settler.close()


def test_a_settlement_never_waits_for_a_fork_that_waits_for_its_lane():
    """The fork asked for after the lane handed over a settlement: the settlement must not
    wait for the fork, which waits for the lane, which waits for the settlement (until
    the fork gives up: 2 s here)."""
    guard = ForkGuard()
    settler = Settler(guard)
    ran = []

    def fork():
        guard.before_fork(2)
        guard.after_fork_in_parent()

    with guard.database():  # the lane, delivering
        forking = threading.Thread(target=fork)
        forking.start()
        while not guard._forking:  # the fork is waiting for the lane
            forking.join(0.001)
        settler.submit(lambda: ran.append(1))
        settler.wait()
        assert forking.is_alive()  # still waiting for the lane: the settlement did not wait
    forking.join(SAFETY_SECONDS)
    settler.close()
    assert ran == [1]


def test_a_failed_settlement_is_raised_by_the_next_submit_which_still_settles():
    """Found when the lane hands over the next batch, which Segment has accepted: that one
    is recorded there and then, and the failure goes on up (the lane logs it and stops)."""
    settler = Settler()
    ran = []
    settler.submit(database_went_away)
    with pytest.raises(RuntimeError, match="the database went away"):
        settler.submit(lambda: ran.append(threading.current_thread().name))
    settler.close()
    assert ran == [threading.current_thread().name]  # here, not on the settler's thread


def test_without_a_thread_at_interpreter_shutdown_a_settlement_runs_at_once(monkeypatch):
    """Python 3.12 and later start no thread at exit: the exit flush settles inline."""

    def no_threads(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(settler_module.threading.Thread, "start", no_threads)
    settler = Settler()
    ran = []
    settler.submit(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]
    settler.close()


@in_transactions
def test_closing_closes_the_thread_s_database_connections():
    settler = Settler()
    used = []

    def query():
        connection = connections["default"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        used.append(connection)

    settler.submit(query)
    settler.close()
    [connection] = used
    assert connection is not connections["default"]  # the settler's own
    assert connection.connection is None
    assert "configcat-segment-settle" not in {t.name for t in threading.enumerate()}


# -- the dispatcher and the runner with a settler ------------------------------------------


@in_transactions
def test_a_round_s_delivery_is_settled_in_the_background_and_counted_once_settled(
    segment_server, connect_to
):
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    settler = Settler()
    report = Dispatcher().deliver(connection.pk, settler=settler)
    settler.close()
    assert (report.claimed, report.requests, report.delivered) == (5, 1, 5)
    assert statuses() == {"delivered": 5}
    assert not claims_left()


@in_transactions
@pytest.mark.postgres  # SQLite's write lock orders the two anyway: the test could not fail
def test_a_later_outcome_waits_for_the_delivery_being_settled(
    segment_server, connect_to, monkeypatch
):
    """Outcomes are recorded in the order Segment gave them: the next round's outage is
    settled only once the previous round's delivery is. Without that wait, the delivery
    (held back here until the outage's settlement starts) would be recorded last."""
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    settled: list[str] = []
    outage_settling = threading.Event()
    settle = claims.settle

    def recording(using, events, lease_until, uncounted=0, **values):
        status = values["status"]
        if status == Event.Status.DELIVERED:
            # Not forever: with the wait in place the outage's settlement never starts
            # before this one ends, so this only delays the test.
            outage_settling.wait(0.5)
        else:
            outage_settling.set()
        settled.append(status)
        return settle(using, events, lease_until, uncounted, **values)

    monkeypatch.setattr(claims, "settle", recording)
    settler = Settler()
    dispatcher = Dispatcher()
    first = dispatcher.deliver(connection.pk, settler=settler)
    enqueue(connection, range(3, 6))
    segment_server.fail(503)
    second = dispatcher.deliver(connection.pk, settler=settler)
    settler.close()
    assert settled == [Event.Status.DELIVERED, Event.Status.FAILED]
    assert (first.delivered, second.retrying) == (3, 3)
    assert statuses() == {"delivered": 3, "failed": 3}


class SettlingInBackground(Dispatcher):
    """On every database, SQLite included (where runners settle inline)."""

    settles_in_background = True  # type: ignore[assignment]


@in_transactions
def test_a_runner_settling_in_the_background_delivers_and_counts_every_batch(
    segment_server, connect_to, delivery_settings
):
    delivery_settings(BATCH_SIZE=4)
    connection = connect_to(segment_server)
    enqueue(connection, range(18))
    report = Runner(SettlingInBackground(), poll_seconds=SAFETY_SECONDS).run(until_idle=True)
    assert (report.claimed, report.delivered, report.requests) == (18, 18, 5)
    assert statuses() == {"delivered": 18}
    assert segment_server.duplicates() == {}
    assert not claims_left()


@in_transactions
def test_a_settlement_that_fails_in_the_background_is_logged_and_loses_nothing(
    segment_server, connect_to, delivery_settings, monkeypatch, caplog
):
    """The lane stops and logs it; the events stay queued under their claims, to be sent
    again (same messageIds) once the lease runs out, as after a crash."""
    delivery_settings(BATCH_SIZE=2)
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    settle = claims.settle

    def fails_in_the_settler(*args, **kwargs):
        if threading.current_thread().name == "configcat-segment-settle":
            raise RuntimeError("the database went away")
        return settle(*args, **kwargs)

    monkeypatch.setattr(claims, "settle", fails_in_the_settler)
    runner = Runner(SettlingInBackground(), poll_seconds=SAFETY_SECONDS)
    with caplog.at_level(logging.ERROR, logger="configcat_segment"):
        report = runner.run(until_idle=True)
    assert runner.errors == 1
    assert f"delivering to {connection.pk} failed" in caplog.text
    assert "the database went away" in caplog.text
    # The first batch was settled by the lane; the second's settlement, in the
    # background, failed, and the lane learnt it when it handed over the third, which it
    # then settled itself before stopping (the round that raised reports nothing).
    assert report.delivered == 2
    assert statuses() == {"delivered": 3, "pending": 2}
    assert claims_left() == 2  # held until their lease runs out, then claimed again


def test_runners_settle_in_the_background_only_where_writers_run_concurrently():
    expected = connections["default"].vendor != "sqlite"
    assert Dispatcher().settles_in_background is expected


@in_transactions
@pytest.mark.parametrize(("events", "settlers"), [(3, 0), (9, 1)])
def test_only_a_lane_with_a_backlog_starts_a_settler(
    segment_server, connect_to, delivery_settings, monkeypatch, events, settlers
):
    """One batch is settled by the lane itself: no second thread and database connection
    for a lane that ends after one round (a trickle of events, the usual case)."""
    delivery_settings(BATCH_SIZE=4)
    started = []

    class Recording(Settler):
        def __init__(self, *args, **kwargs):
            started.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runner_module, "Settler", Recording)
    connection = connect_to(segment_server)
    enqueue(connection, range(events))
    report = Runner(SettlingInBackground(), poll_seconds=SAFETY_SECONDS).run(until_idle=True)
    assert report.delivered == events
    assert len(started) == settlers
