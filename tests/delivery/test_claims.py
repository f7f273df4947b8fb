"""Leases in the claims table: one write per event delivered, no event to two workers,
and no claim row left behind or blocking forever."""

import datetime as dt
import re
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.db import connections as db_connections
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configcat_segment.delivery import claims, outbox
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event, EventClaim
from configcat_segment.segment import transport

from ..threads import run_together
from .conftest import SAFETY_SECONDS, enqueue, statuses

EVENTS = Event._meta.db_table


def writes_to_events(queries):
    written = re.compile(rf'^(UPDATE|INSERT INTO|DELETE FROM) "?{EVENTS}"?\s', re.IGNORECASE)
    return [q["sql"] for q in queries if written.match(q["sql"].lstrip())]


@pytest.mark.django_db
def test_a_delivered_event_is_written_once_by_its_round(segment_server, connect_to):
    connection = connect_to(segment_server)
    enqueue(connection, range(40))
    with CaptureQueriesContext(db_connection) as queries:
        report = Dispatcher().deliver(connection.pk)
    assert report.delivered == 40
    assert len(writes_to_events(queries)) == 1  # the outcome; the claim wrote claim rows
    assert set(Event.objects.values_list("attempts", flat=True)) == {1}
    assert not EventClaim.objects.exists()


@pytest.mark.django_db
def test_a_live_claim_holds_its_events_whatever_their_status(segment_server, connect_to, clock):
    """Due by their rows, held by the claim: a second dispatcher finds nothing to claim
    (and the runner does not spin on it) until the lease runs out."""
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    now = clock()
    lease = now + dt.timedelta(seconds=60)
    held = claims.claim("default", connection, now, lease, 10)
    assert len(held) == 3
    assert Dispatcher(clock=clock).due_connections() == [connection.pk]  # the index says due
    assert claims.claim("default", connection, now, lease, 10) == []
    # deliver_due() stops (the runner rests the connection until the next poll:
    # test_runners.py, test_a_connection_due_yet_with_nothing_to_claim_...).
    assert Dispatcher(clock=clock).deliver_due().claimed == 0
    clock.advance(61)
    again = claims.claim("default", connection, clock(), clock() + dt.timedelta(seconds=60), 10)
    assert [(e.pk, e.attempts) for e in again] == [(e.pk, 2) for e in held]
    assert set(EventClaim.objects.values_list("claims", flat=True)) == {2}


@pytest.mark.django_db
def test_an_event_deleted_while_claimed_leaves_no_claim_behind(segment_server, connect_to, clock):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    gone = []

    def send(messages, **kwargs):
        Event.objects.filter(pk=min(Event.objects.values_list("pk", flat=True))).delete()
        gone.append(True)
        return transport.send(messages, **kwargs)

    report = Dispatcher(clock=clock, send=send).deliver(connection.pk)
    assert (report.delivered, report.lost) == (2, 1)
    assert not EventClaim.objects.exists()


@pytest.mark.django_db
def test_prune_sweeps_the_claims_of_dead_workers_on_events_gone_or_settled(
    segment_server, connect_to, capsys
):
    connection = connect_to(segment_server)
    events = enqueue(connection, range(4))
    now = timezone.now()
    claims.claim("default", connection, now, now - dt.timedelta(seconds=1), 4)  # expired
    Event.objects.filter(pk=events[0].pk).delete()
    Event.objects.filter(pk=events[1].pk).update(status="dead")
    call_command("configcat_segment_prune")
    assert '"stale_claims": 2' in capsys.readouterr().out
    # The queued ones keep their expired claims: each counts an attempt.
    assert sorted(EventClaim.objects.values_list("event_id", flat=True)) == [
        events[2].pk,
        events[3].pk,
    ]


@pytest.mark.django_db
def test_a_requeue_forgets_the_claims_of_a_dead_worker(segment_server, connect_to):
    connection = connect_to(segment_server)
    enqueue(connection, range(2))
    now = timezone.now()
    for _ in range(2):  # two claims whose workers died: their leases ran out
        assert len(claims.claim("default", connection, now, now - dt.timedelta(seconds=1), 2)) == 2
    assert set(EventClaim.objects.values_list("claims", flat=True)) == {2}
    Event.objects.update(status="failed", attempts=3)
    assert outbox.requeue(Event.objects.all()) == 2
    assert not EventClaim.objects.exists()
    report = Dispatcher(clock=lambda: timezone.now() + dt.timedelta(seconds=1)).deliver_due()
    assert report.delivered == 2
    assert set(Event.objects.values_list("attempts", flat=True)) == {1}
    assert statuses() == {"delivered": 2}


def waiting_for_a_lock(pid):
    with db_connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [pid])
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_that_saw_no_lease_still_cannot_take_a_leased_event(segment_server, connect_to):
    """The window of READ COMMITTED: a claim whose snapshot predates another claim's
    commit passes ``NOT EXISTS`` and locks the events once they are free. The claims
    table's key refuses it: ``ON CONFLICT`` sees the committed claim row, whose live lease
    fails the update's condition, so the event is not returned.

    The first claim is played by a transaction that inserted its claim row and holds it
    open without locking the event (a real claim's event locks end at the same commit;
    here they are absent so that the second claim gets past them while the first is
    uncommitted, and waits on the claims key instead: the same state, reached
    deterministically)."""
    connection = connect_to(segment_server)
    [event] = enqueue(connection, range(1))
    now = timezone.now() + dt.timedelta(seconds=1)
    first_lease = now + dt.timedelta(seconds=60)
    second = {}
    started = threading.Event()

    def second_claim():
        try:
            with db_connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second["pid"] = cursor.fetchone()[0]
            started.set()
            second["claimed"] = claims.claim(
                "default", connection, now, now + dt.timedelta(seconds=30), 10
            )
        except Exception as exc:  # pragma: no cover - reported below
            second["error"] = exc
        finally:
            started.set()
            db_connections.close_all()

    with transaction.atomic():
        EventClaim.objects.create(event_id=event.pk, lease_until=first_lease, claims=1)
        thread = threading.Thread(target=second_claim)
        thread.start()
        started.wait(SAFETY_SECONDS)
        deadline = time.monotonic() + SAFETY_SECONDS
        while not waiting_for_a_lock(second["pid"]):  # on the claims key, past NOT EXISTS
            assert time.monotonic() < deadline, "the second claim never waited"
            time.sleep(0.01)
    thread.join(SAFETY_SECONDS)
    assert "error" not in second
    assert second["claimed"] == []
    claim = EventClaim.objects.get()
    assert (claim.event_id, claim.lease_until, claim.claims) == (event.pk, first_lease, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claims_racing_in_threads_never_share_an_event(segment_server, connect_to):
    connection = connect_to(segment_server)
    enqueue(connection, range(300))
    now = timezone.now() + dt.timedelta(seconds=1)

    def claim_some() -> list[int]:
        lease = now + dt.timedelta(seconds=60)
        return [e.pk for _ in range(5) for e in claims.claim("default", connection, now, lease, 20)]

    keys = [pk for taken in run_together(claim_some, [()] * 4) for pk in taken]
    assert len(keys) == len(set(keys)) == EventClaim.objects.filter(claims=1).count()
    assert len(keys) >= 100  # each thread's first claims alone take that many


@pytest.mark.django_db
def test_the_requeue_command_counts_what_it_would_requeue(segment_server, connect_to, capsys):
    """Not the events being sent right now: requeue() leaves them alone."""
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    Event.objects.update(status="failed")
    now = timezone.now()
    claims.claim("default", connection, now, now + dt.timedelta(minutes=5), 2)
    call_command("configcat_segment_requeue", "--status", "failed", "--dry-run")
    assert '"would_requeue": 1' in capsys.readouterr().out
    call_command("configcat_segment_requeue", "--status", "failed")
    assert '"requeued": 1' in capsys.readouterr().out
