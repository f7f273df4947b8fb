"""401/403 and a misconfigured endpoint: the connection is unhealthy, its events wait."""

import datetime as dt
import json

import pytest
from django.core.management import call_command

from configcat_segment.delivery import outbox
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event, SegmentConnection

from .conftest import enqueue, statuses

pytestmark = pytest.mark.django_db

REFUSED = "Segment answered 401 unauthorized: Invalid write key"


@pytest.fixture
def dispatcher(clock):
    return Dispatcher(clock=clock, random=lambda: 0.0)


@pytest.fixture
def refused(segment_server, connect_to, dispatcher):
    """A connection whose write key Segment refuses, after its first attempt."""
    connection = connect_to(segment_server, accepted=False)
    enqueue(connection, range(3))
    report = dispatcher.deliver(connection.pk)
    assert report.waiting == 3
    connection.refresh_from_db()
    return connection


def test_a_refused_write_key_marks_the_connection_unhealthy_and_its_events_wait(refused, clock):
    assert not refused.is_healthy
    assert refused.unhealthy_reason == REFUSED
    for event in Event.objects.all():
        assert event.status == "failed"  # failed = will retry; never dead for this
        assert event.attempts == 0  # not burnt
        assert event.last_error == REFUSED
        assert event.next_attempt_at == clock() + dt.timedelta(seconds=2)


def test_events_written_meanwhile_join_the_wait_instead_of_probing(
    refused, segment_server, dispatcher, clock
):
    requests = len(segment_server.requests)
    enqueue(refused, range(10, 15))
    assert dispatcher.due_connections() == []  # paused until the probe
    assert dispatcher.deliver(refused.pk).claimed == 0
    assert len(segment_server.requests) == requests  # no request was made
    probe_at = clock() + dt.timedelta(seconds=2)
    assert refused.delivery_paused_until == probe_at
    clock.move_to(probe_at)
    report = dispatcher.deliver_due()
    assert (report.claimed, report.requests, report.waiting) == (8, 1, 8)  # one probe for all


def test_probes_are_spaced_out_and_never_burn_attempts(refused, segment_server, connect_to, clock):
    dispatcher = Dispatcher(clock=clock, random=lambda: 0.999999)
    since = refused.unhealthy_since
    gaps = []
    for _ in range(3):
        clock.move_to(Event.objects.order_by("next_attempt_at").first().next_attempt_at)
        before = clock()
        report = dispatcher.deliver_due()
        assert report.claimed == 3
        gaps.append((Event.objects.first().next_attempt_at - before).total_seconds())
    assert gaps == sorted(gaps)  # backing off
    assert gaps[-1] > gaps[0]
    assert set(Event.objects.values_list("attempts", "status")) == {(0, "failed")}
    refused.refresh_from_db()
    assert refused.unhealthy_since == since  # still the first time it happened


def test_a_probe_that_gets_through_makes_the_connection_healthy_again(
    refused, segment_server, dispatcher, clock
):
    segment_server.write_keys.add(refused.write_key)  # fixed on Segment's side
    clock.advance(2)
    assert dispatcher.deliver_due().delivered == 3
    refused.refresh_from_db()
    assert refused.is_healthy
    assert refused.unhealthy_reason == ""


def test_saving_a_new_write_key_resets_the_health_and_sends_the_events_now(
    refused, segment_server, dispatcher, django_capture_on_commit_callbacks
):
    woken = []

    def wake():
        woken.append(True)

    outbox.on_enqueued(wake)
    refused.write_key = "wk_the_right_one_0123456789"
    segment_server.write_keys.add(refused.write_key)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            refused.save()
    finally:
        outbox.remove_listener(wake)
    assert woken  # whatever delivers was woken
    refused.refresh_from_db()
    assert refused.is_healthy
    assert refused.delivery_paused_until is None
    assert dispatcher.deliver_due().delivered == 3  # no waiting for the next probe


def test_fixing_the_key_in_the_admin_resets_the_health(refused, segment_server, staff_client):
    new_key = "wk_fixed_in_the_admin_0123456789"
    segment_server.write_keys.add(new_key)
    data = {
        "name": refused.name,
        "write_key": new_key,
        "region": "custom",
        "custom_endpoint": refused.custom_endpoint,
        "product_id": "",
        "product_name": "",
        "forward_changes": "on",
        "forward_evaluations": "on",
        "_save": "Save",
    }
    url = f"/admin/configcat_segment/segmentconnection/{refused.pk}/change/"
    response = staff_client.post_form(url, data)
    assert response.status_code == 302
    refused.refresh_from_db()
    assert refused.write_key == new_key
    assert refused.is_healthy
    assert Dispatcher().deliver_due().delivered == 3


def test_other_saves_leave_the_health_alone(refused):
    refused.disconnect()
    refused.connect()
    refused.name = "Renamed"
    refused.save()
    refused.refresh_from_db()
    assert not refused.is_healthy
    assert statuses() == {"failed": 3}


@pytest.mark.parametrize("status", [403, 404, 501])
def test_an_endpoint_that_is_not_a_tracking_api_is_unhealthy_too(
    status, segment_server, connect_to, dispatcher
):
    connection = connect_to(segment_server)
    enqueue(connection, range(2))
    segment_server.fail(status)
    assert dispatcher.deliver(connection.pk).waiting == 2
    connection.refresh_from_db()
    assert f"Segment answered {status}" in connection.unhealthy_reason
    assert statuses() == {"failed": 2}


def test_the_status_command_shows_why_a_connection_is_unhealthy(refused, capsys, clock):
    call_command("configcat_segment_status")
    data = json.loads(capsys.readouterr().out)
    [shown] = data["connections"]
    assert (shown["healthy"], shown["unhealthy_reason"]) == (False, REFUSED)
    probe_at = clock() + dt.timedelta(seconds=2)
    assert shown["delivery_paused_until"] == probe_at.isoformat().replace("+00:00", "Z")
    assert data["events"]["failed"] == 3
    assert SegmentConnection.objects.get().unhealthy_reason == REFUSED
