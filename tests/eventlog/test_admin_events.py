import html

import pytest
from django.contrib.admin.models import LogEntry

from configcat_segment.eventlog import actions
from configcat_segment.models import Event, WebhookReceipt

from .conftest import client_for, user_with

pytestmark = pytest.mark.django_db

EVENTS = "/admin/configcat_segment/event/"
RECEIPTS = "/admin/configcat_segment/webhookreceipt/"


def listed(response):
    return [obj.pk for obj in response.context["cl"].result_list]


def test_the_event_admin_lists_and_filters(staff_client, make_event, make_connection):
    staging = make_connection(name="Staging")
    changed = make_event(flag_key="checkout", user_id="alice")
    dead = make_event(kind="evaluated", status="dead", flag_key="dark_mode")
    identify = make_event(kind="identify", connection=staging, user_id="carol", flag_key="")
    response = staff_client.get(EVENTS)
    assert listed(response) == [identify.pk, dead.pk, changed.pk]
    assert 'href="/configcat-segment/events/"' in response.content.decode()
    for query, expected in [
        ("status__exact=dead", [dead]),
        ("kind=identify", [identify]),
        ("kind=changed", [changed]),
        (f"connection__id__exact={staging.pk}", [identify]),
        ("q=dark_mode", [dead]),
        ("q=alice", [changed]),
        ("q=dark", []),  # exact, so each search is an index lookup
    ]:
        assert listed(staff_client.get(f"{EVENTS}?{query}")) == [e.pk for e in expected], query


def test_events_and_receipts_are_read_only(staff_client, make_event, segment_connection):
    event = make_event(status="dead")
    receipt = WebhookReceipt.objects.create(connection=segment_connection, method="POST")
    assert staff_client.get(EVENTS + "add/").status_code == 403
    assert staff_client.get(RECEIPTS + "add/").status_code == 403
    page = staff_client.get(f"{EVENTS}{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert '<pre class="cs-json">' in page
    assert f'href="/configcat-segment/events/{event.pk}/"' in page
    before = Event.objects.get(pk=event.pk).status
    staff_client.post_form(f"{EVENTS}{event.pk}/change/", {"status": "delivered"})
    assert Event.objects.get(pk=event.pk).status == before
    assert (
        'name="_save"' not in staff_client.get(f"{RECEIPTS}{receipt.pk}/change/").content.decode()
    )


def test_the_retry_action_retries_failed_and_dead_events_and_logs_each(staff_client, make_event):
    dead, failed, delivered = (make_event(status=s) for s in ("dead", "failed", "delivered"))
    response = staff_client.post_form(
        EVENTS,
        {"action": "retry_selected", "_selected_action": [dead.pk, failed.pk, delivered.pk]},
    )
    assert response.status_code == 302
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses == {dead.pk: "pending", failed.pk: "pending", delivered.pk: "delivered"}
    assert sorted(
        LogEntry.objects.filter(change_message=actions.RETRIED).values_list("object_id", flat=True)
    ) == sorted([str(dead.pk), str(failed.pk)])
    assert "2 events are queued again" in staff_client.get(EVENTS).content.decode()


def test_the_retry_action_needs_the_change_permission(make_event):
    make_event(status="dead")
    viewer = client_for(user_with("view_event"))
    assert "retry_selected" not in viewer.get(EVENTS).content.decode()
    changer = client_for(user_with("view_event", "change_event"))
    assert "retry_selected" in changer.get(EVENTS).content.decode()


def test_the_receipt_admin_shows_the_body_and_safe_headers(staff_client, segment_connection):
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-9",
        method="POST",
        headers={"Content-Type": "application/json", "X-Upstream-Auth": "Bearer abc"},
        body=b'{"config_name": "<Main>"}',
        outcome=WebhookReceipt.Outcome.FAILED,
        error="Unknown setting",
    )
    response = staff_client.get(RECEIPTS + "?outcome__exact=failed")
    assert [r.pk for r in response.context["cl"].result_list] == [receipt.pk]
    page = staff_client.get(f"{RECEIPTS}{receipt.pk}/change/").content.decode()
    assert "&lt;Main&gt;" in page
    assert "<Main>" not in page
    assert "Content-Type" in page
    assert "X-Upstream-Auth" not in page
    assert "Bearer abc" not in page
    assert "Unknown setting" in html.unescape(page)
