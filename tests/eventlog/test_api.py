import pytest
from rest_framework.test import APIClient

from configcat_segment.models import WebhookReceipt

from .conftest import API_URL, client_for, user_with

pytestmark = pytest.mark.django_db

HEALTH_URL = "/configcat-segment/api/connections/"


def test_the_api_is_for_staff_with_the_view_permission(make_event, viewer_client):
    event = make_event()
    for url in [API_URL, f"{API_URL}{event.pk}/", HEALTH_URL]:
        assert APIClient().get(url).status_code == 403  # anonymous
        assert client_for(user_with("view_event", staff=False)).get(url).status_code == 403
        assert client_for(user_with("view_segmentconnection")).get(url).status_code == 403
        assert viewer_client.get(url).status_code == 200


def test_basic_auth_is_not_accepted(make_event, superuser):
    response = APIClient().get(API_URL, HTTP_AUTHORIZATION="Basic cm9vdDpwdy1yb290LTEyMw==")
    assert response.status_code == 403  # sessions only


def test_the_api_is_read_only(staff_client, make_event):
    event = make_event(status="dead")
    assert staff_client.post(API_URL, {}).status_code == 403  # no CSRF token
    assert staff_client.post_form(API_URL).status_code == 405
    assert staff_client.delete(f"{API_URL}{event.pk}/").status_code == 403


def test_events_with_filters_and_cursor_links(viewer_client, make_event, settings):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "EVENT_LOG_PAGE_SIZE": 2}
    dead = [make_event(status="dead", flag_key="checkout") for _ in range(3)]
    make_event(status="delivered", flag_key="checkout")
    first = viewer_client.get(API_URL + "?status=dead&flag_key=checkout").json()
    assert [e["id"] for e in first["results"]] == [dead[2].pk, dead[1].pk]
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver/configcat-segment/api/events/?")
    assert "status=dead" in first["next"]
    assert "flag_key=checkout" in first["next"]
    second = viewer_client.get(first["next"]).json()
    assert [e["id"] for e in second["results"]] == [dead[0].pk]
    assert second["next"] is None
    assert [e["id"] for e in viewer_client.get(second["previous"]).json()["results"]] == [
        dead[2].pk,
        dead[1].pk,
    ]
    row = second["results"][0]
    assert row["url"] == f"/configcat-segment/events/{dead[0].pk}/"
    assert row["connection"]["name"] == "Production"
    assert (row["kind"], row["status"], row["status_display"]) == ("changed", "dead", "Dead")
    assert row["message_id"] == dead[0].message_id
    assert row["last_error"] == "Segment answered 500 Internal Server Error"
    assert "payload" not in row


def test_bad_parameters_are_a_400_naming_them(viewer_client, make_event):
    response = viewer_client.get(API_URL + "?status=lost&cursor=nope&until=later")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "cursor", "until"}
    assert "is not one of" in response.json()["errors"]["status"]


def test_one_event_with_its_message_and_receipt(viewer_client, make_event, segment_connection):
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        method="POST",
        headers={"Content-Type": "application/json", "X-Session-Token": "leaked"},
        body=b'{"config_name": "Main"}',
    )
    event = make_event(receipt=receipt)
    data = viewer_client.get(f"{API_URL}{event.pk}/").json()
    assert data["payload"] == event.payload
    assert data["receipt"]["body"] == '{"config_name": "Main"}'
    assert data["receipt"]["headers"] == {"Content-Type": "application/json"}
    assert viewer_client.get(f"{API_URL}999999/").status_code == 404


def test_connection_health(viewer_client, make_event, segment_connection):
    delivered = make_event(status="delivered")
    dead = make_event(status="dead", last_error="HTTP 400")
    [connection] = viewer_client.get(HEALTH_URL).json()["connections"]
    assert connection["id"] == str(segment_connection.pk)
    assert (connection["connected"], connection["healthy"]) == (True, True)
    assert connection["counts"] == {"pending": 0, "failed": 0, "dead": 1}
    assert connection["last_error"] == "HTTP 400"
    assert connection["last_error_event"] == dead.pk
    assert connection["last_delivery"].startswith(
        delivered.delivered_at.strftime("%Y-%m-%dT%H:%M:%S")
    )
