"""Permissions that match the docs (issue 16, findings 7 and 8): events need ``view_event``,
the webhook receipts behind them ``view_webhookreceipt``, connection details
``view_segmentconnection``, in the pages and the JSON API alike; the API is never cached."""

import pytest

from configcat_segment.models import WebhookReceipt

from .conftest import API_URL, EVENTS_URL, client_for, event_url, user_with

pytestmark = pytest.mark.django_db

HEALTH_URL = "/configcat-segment/api/connections/"
RAW_BODY = '{"config_name": "Receipt body only receipt viewers see"}'
CONNECTION_DETAILS = (
    "region",
    "endpoint",
    "webhook_path",
    "write_key",
    "signing_keys",
    "product_id",
    "product_name",
    "unhealthy_reason",
    "delivery_paused_until",
)


@pytest.fixture
def event_with_receipt(make_event, segment_connection):
    segment_connection.region = "custom"
    segment_connection.custom_endpoint = "https://segment-proxy.example.com/internal"
    segment_connection.save()
    segment_connection.mark_unhealthy("Segment answered 401 unauthorized: the reason")
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-perm",
        method="POST",
        headers={"Content-Type": "application/json", "X-Configcat-Webhook-Id": "wh-perm"},
        body=RAW_BODY.encode(),
        remote_addr="203.0.113.9",
    )
    return make_event(receipt=receipt, status="failed")


def test_an_event_viewer_sees_the_event_but_not_its_receipt(event_with_receipt):
    client = client_for(user_with("view_event"))
    page = client.get(event_url(event_with_receipt))
    assert page.status_code == 200
    text = page.content.decode()
    assert event_with_receipt.message_id in text
    for private in ("Receipt body only", "203.0.113.9", "wh-perm", "X-Configcat-Webhook-Id"):
        assert private not in text
    assert "You need the “Can view webhook receipt” permission" in text
    data = client.get(f"{API_URL}{event_with_receipt.pk}/").json()
    assert data["message_id"] == event_with_receipt.message_id
    assert "receipt" not in data
    admin_page = client.get(f"/admin/configcat_segment/event/{event_with_receipt.pk}/change/")
    assert admin_page.status_code == 200
    assert "wh-perm" not in admin_page.content.decode()


def test_a_receipt_viewer_sees_the_receipt_in_page_and_api(event_with_receipt):
    client = client_for(user_with("view_event", "view_webhookreceipt"))
    text = client.get(event_url(event_with_receipt)).content.decode()
    assert "Receipt body only receipt viewers see" in text
    assert "203.0.113.9" in text
    admin_page = client.get(f"/admin/configcat_segment/event/{event_with_receipt.pk}/change/")
    assert "wh-perm" in admin_page.content.decode()
    data = client.get(f"{API_URL}{event_with_receipt.pk}/").json()
    assert data["receipt"]["body"] == RAW_BODY
    assert data["receipt"]["remote_addr"] == "203.0.113.9"


def test_connection_details_need_the_connection_permission(event_with_receipt):
    events_only = client_for(user_with("view_event"))
    [row] = events_only.get(HEALTH_URL).json()["connections"]
    assert row["name"] == "Production"
    assert row["counts"] == {"pending": 0, "failed": 1, "dead": 0}
    assert [key for key in CONNECTION_DETAILS if key in row] == []
    listing = events_only.get(EVENTS_URL).content.decode()
    assert "the reason" not in listing
    assert "segment-proxy.example.com" not in listing
    assert "/admin/configcat_segment/segmentconnection/" not in listing
    detail = events_only.get(event_url(event_with_receipt)).content.decode()
    assert "/admin/configcat_segment/segmentconnection/" not in detail
    assert "Production" in detail

    both = client_for(user_with("view_event", "view_segmentconnection"))
    [row] = both.get(HEALTH_URL).json()["connections"]
    assert row["endpoint"] == "https://segment-proxy.example.com/internal"
    assert row["unhealthy_reason"] == "Segment answered 401 unauthorized: the reason"
    assert "the reason" in both.get(EVENTS_URL).content.decode()


@pytest.mark.parametrize("url", [API_URL, HEALTH_URL, "event"])
def test_the_api_is_never_cached(url, event_with_receipt):
    url = f"{API_URL}{event_with_receipt.pk}/" if url == "event" else url
    allowed = client_for(user_with("view_event")).get(url)
    refused = client_for(user_with("view_segmentconnection")).get(url)
    for response in (allowed, refused):
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= directives, url
    assert (allowed.status_code, refused.status_code) == (200, 403)
