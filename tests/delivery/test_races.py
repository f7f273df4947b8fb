"""Putting events back in the queue while a round sends them: nothing goes out twice.

A claimed event is held by its live claim (``EventClaim``) until its round settles it,
whatever its status says: requeueing leaves it alone, and fixing a connection's
credentials may make it due, but no claim takes it while the lease lives.
"""

import pytest
from django.db.models import Max

from configcat_segment.delivery import outbox
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.segment import transport

from .conftest import enqueue, statuses

pytestmark = pytest.mark.django_db


def fail_once(segment_server, connection, clock):
    """Three events that failed once (503): failed, the connection paused; then the clock
    moves to their retry."""
    enqueue(connection, range(3))
    segment_server.fail(503)
    report = Dispatcher(clock=clock, random=lambda: 0.0).deliver(connection.pk)
    assert report.retrying == 3
    assert statuses() == {"failed": 3}
    paused = SegmentConnection.objects.aggregate(until=Max("delivery_paused_until"))["until"]
    clock.move_to(paused)


def test_a_requeue_during_the_send_of_a_retry_does_not_send_it_twice(
    segment_server, connect_to, clock
):
    connection = connect_to(segment_server)
    fail_once(segment_server, connection, clock)
    requeued = []

    def send(messages, **kwargs):
        requeued.append(outbox.requeue(Event.objects.all()))  # an admin, meanwhile
        return transport.send(messages, **kwargs)

    report = Dispatcher(clock=clock, send=send).deliver(connection.pk)
    assert requeued == [0]  # being sent: not requeued
    assert (report.delivered, report.lost) == (3, 0)
    assert statuses() == {"delivered": 3}
    assert Dispatcher(clock=clock).deliver_due().claimed == 0
    assert segment_server.duplicates() == {}
    assert len(segment_server.accepted_ids) == 3


def test_fixing_the_credentials_during_the_send_of_a_retry_does_not_send_it_twice(
    segment_server, connect_to, clock
):
    connection = connect_to(segment_server)
    fail_once(segment_server, connection, clock)
    segment_server.write_keys.add("wk_rotated_while_in_flight_0123")

    def send(messages, **kwargs):
        saved = SegmentConnection.objects.get(pk=connection.pk)
        saved.write_key = "wk_rotated_while_in_flight_0123"
        saved.save()
        return transport.send(messages, **kwargs)  # the old key, still accepted

    report = Dispatcher(clock=clock, send=send).deliver(connection.pk)
    assert (report.delivered, report.lost) == (3, 0)
    assert statuses() == {"delivered": 3}
    assert Dispatcher(clock=clock).deliver_due().claimed == 0
    assert segment_server.duplicates() == {}


def test_a_lease_that_runs_out_still_makes_a_retried_event_due_again(
    segment_server, connect_to, clock, delivery_settings
):
    """The worker died while retrying: its events stay failed, held by the claim until
    the lease's end, then are due again, the lost claim counted as an attempt."""
    delivery_settings(LEASE_SECONDS=60)
    connection = connect_to(segment_server)
    fail_once(segment_server, connection, clock)

    def die(messages, **kwargs):
        raise KeyboardInterrupt  # nothing settles

    with pytest.raises(KeyboardInterrupt):
        Dispatcher(clock=clock, send=die).deliver(connection.pk)
    assert statuses() == {"failed": 3}
    assert Dispatcher(clock=clock).deliver_due().claimed == 0  # leased
    assert outbox.requeue(Event.objects.all()) == 0  # in flight, as far as anyone knows
    clock.advance(61)
    report = Dispatcher(clock=clock).deliver_due()
    assert report.delivered == 3
    assert set(Event.objects.values_list("attempts", flat=True)) == {3}
