"""The reliability figures, as tests: outage, SIGKILL, concurrent workers, a poisoned message."""

import os
import signal

import pytest
from django.db.models import Min

from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event

from ..threads import run_together
from .conftest import (
    SAFETY_SECONDS,
    deliver_until_done,
    enqueue,
    message_id,
    statuses,
    subprocess_env,
    wait_for,
)


@pytest.mark.django_db
def test_ten_thousand_events_through_a_30_second_outage(segment_server, connect_to, clock):
    """Segment answers 503 for 30 s of (fake) time, starting after 3,000 events got through."""
    connection = connect_to(segment_server)
    enqueue(connection, range(10_000))
    outage = {}

    def segment_is_down():
        if "start" not in outage and len(segment_server.accepted_ids) >= 3000:
            outage["start"] = clock()
        return "start" in outage and (clock() - outage["start"]).total_seconds() < 30

    segment_server.fail_while(segment_is_down, 503)
    deliver_until_done(Dispatcher(clock=clock), clock)

    assert statuses() == {"delivered": 10_000}
    assert len(segment_server.accepted_ids) == 10_000
    assert segment_server.duplicates() == {}
    # The outage was real and waited out as one group: each failure sends the whole
    # backlog to one retry time at least RETRY_BASE_SECONDS (2 s) later, so 30 s cost at
    # most 15 failed requests (5 seen), not one per batch per backoff step (75 seen when
    # every batch retried on its own).
    assert 3 <= segment_server.statuses().count(503) <= 15
    after = Event.objects.filter(delivered_at__gt=outage["start"])
    assert after.count() == 10_000 - 3000
    first = after.aggregate(at=Min("delivered_at"))["at"]
    assert (first - outage["start"]).total_seconds() >= 30


@pytest.mark.django_db
def test_one_poisoned_message_among_a_thousand(segment_server, connect_to, clock):
    connection = connect_to(segment_server)
    enqueue(connection, range(1000))
    poisoned = message_id(connection, 637)
    segment_server.poison(poisoned, "Invalid event: properties must be an object")
    deliver_until_done(Dispatcher(clock=clock), clock)
    assert statuses() == {"delivered": 999, "dead": 1}
    dead = Event.objects.get(status="dead")
    assert dead.message_id == poisoned
    assert dead.last_error == (
        "Segment answered 400 invalid_request: Invalid event: properties must be an object"
    )
    assert poisoned not in segment_server.accepted_ids
    assert segment_server.duplicates() == {}
    assert len(segment_server.requests) < 25  # bisected: about 2 requests per halving


@pytest.mark.django_db(transaction=True)
def test_four_concurrent_workers_deliver_every_event_exactly_once(
    segment_server, connect_to, delivery_settings
):
    """On PostgreSQL, FOR UPDATE SKIP LOCKED; on SQLite, writers take turns."""
    delivery_settings(BATCH_SIZE=25)
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(1500))
    enqueue(second, range(500))
    reports = run_together(lambda: Dispatcher().deliver_due(), [()] * 4)
    assert statuses() == {"delivered": 2000}
    assert len(segment_server.accepted_ids) == 2000
    assert segment_server.duplicates() == {}
    assert set(Event.objects.values_list("attempts", flat=True)) == {1}  # claimed once each
    assert sum(r.delivered for r in reports) == 2000
    assert sum(r.lost for r in reports) == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing(segment_server, connect_to, start_process):
    """SIGKILL while Segment holds the worker's request; a second worker takes over after
    the lease. Segment may get the killed worker's batch twice, always with the same ids."""
    connection = connect_to(segment_server)
    enqueue(connection, range(300))
    env = subprocess_env(BATCH_SIZE=100, LEASE_SECONDS=1, WORKER_POLL_SECONDS=0.1)
    gate = segment_server.hold()
    doomed = start_process("manage.py", "configcat_segment_worker", env=env)
    assert gate.arrived.wait(SAFETY_SECONDS)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(SAFETY_SECONDS)
    assert statuses() == {"pending": 300}  # 100 of them claimed by the dead worker
    gate.release()  # Segment processes the orphaned request anyway
    wait_for(lambda: len(segment_server.requests) == 1)
    in_flight = set(segment_server.requests[0].message_ids)
    assert len(in_flight) == 100

    survivor = start_process("manage.py", "configcat_segment_worker", env=env)
    wait_for(lambda: statuses() == {"delivered": 300})
    survivor.send_signal(signal.SIGTERM)
    survivor.communicate(timeout=SAFETY_SECONDS)
    assert survivor.returncode == 0

    everything = {message_id(connection, n) for n in range(300)}
    assert set(segment_server.accepted_ids) == everything  # nothing lost
    assert set(segment_server.duplicates()) == in_flight  # resent with the same messageIds
    assert set(segment_server.duplicates().values()) == {2}
    reclaimed = Event.objects.filter(message_id__in=in_flight)
    assert set(reclaimed.values_list("attempts", flat=True)) == {2}
