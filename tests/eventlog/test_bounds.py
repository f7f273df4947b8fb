"""Every filter and search value is validated and bounded before anything runs (issue 16,
findings 4 and 5): no action on a half-read filter, no redirect longer than Django allows,
no search the database refuses."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages

from configcat_segment.eventlog.filters import MAX_MOMENT_LENGTH, parse
from configcat_segment.models import Event, SegmentConnection, WebhookReceipt

from .conftest import EVENTS_URL, client_for, user_with

pytestmark = pytest.mark.django_db

HUGE_SINCE = "2020-01-01 " + "0" * 20_000


def flash(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_an_overlong_time_is_an_error_not_a_filter():
    event_filter, errors = parse({"since": HUGE_SINCE, "status": "failed"})
    assert errors == {
        "since": f"At most {MAX_MOMENT_LENGTH} characters, not {len(HUGE_SINCE.strip()):,}."
    }
    assert event_filter.since is None
    assert dict(event_filter.params) == {"status": "failed"}


@pytest.mark.parametrize("name", ["connection", "kind", "status", "since", "until"])
def test_an_error_never_echoes_a_long_value_whole(name):
    _, errors = parse({name: "z" * 5000})
    assert len(errors[name]) < 120


def test_bulk_retry_acts_on_nothing_when_a_value_is_too_long(changer_client, make_event):
    event = make_event(status="failed")
    response = changer_client.post_form(
        EVENTS_URL + "retry/", {"status": "failed", "since": HUGE_SINCE}
    )
    assert response.status_code == 302
    assert response["Location"] == EVENTS_URL + "?status=failed"
    assert Event.objects.get(pk=event.pk).status == "failed"
    assert not LogEntry.objects.exists()
    [message] = flash(response)
    assert message.startswith("Nothing was retried: the filter is not valid (At most 40 ")


def test_bulk_retry_redirects_to_the_cleaned_filter(changer_client, make_event):
    event = make_event(status="dead", flag_key="checkout")
    response = changer_client.post_form(
        EVENTS_URL + "retry/",
        {"flag_key": "  checkout  ", "status": "dead", "unknown": "x" * 20_000},
    )
    assert response.status_code == 302
    assert response["Location"] == EVENTS_URL + "?status=dead&flag_key=checkout"
    assert Event.objects.get(pk=event.pk).status == "pending"


def test_the_confirmation_page_bounds_its_filter_too(changer_client, make_event):
    make_event(status="failed")
    response = changer_client.get(EVENTS_URL + "retry/", {"since": HUGE_SINCE})
    assert response.status_code == 302
    assert len(response["Location"]) < 100


def test_the_event_log_search_is_bounded_with_a_clear_message(viewer_client, make_event):
    make_event()
    response = viewer_client.get(EVENTS_URL, {"q": "x" * 50_001})
    assert response.status_code == 200
    assert "At most 255 characters, not 50,001." in response.content.decode()


# -- the admin's searches ------------------------------------------------------------------

ADMIN_LISTS = {
    "event": "view_event",
    "webhookreceipt": "view_webhookreceipt",
    "segmentconnection": "view_segmentconnection",
}


@pytest.mark.parametrize("model", list(ADMIN_LISTS))
def test_admin_searches_are_bounded_with_a_clear_message(model, make_event):
    event = make_event()
    WebhookReceipt.objects.create(connection=event.connection, webhook_id="wh-1", method="POST")
    client = client_for(user_with(ADMIN_LISTS[model]))  # view-only staff can search
    response = client.get(f"/admin/configcat_segment/{model}/", {"q": "x" * 50_001})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Search for at most 255 characters (this was 50,001): nothing was searched." in page
    assert response.context["cl"].result_count == 0


@pytest.mark.parametrize("model", list(ADMIN_LISTS))
def test_admin_searches_with_a_nul_character_are_refused_with_a_message(model, make_event):
    # Django's own search form refuses it; PostgreSQL would refuse the query.
    make_event()
    client = client_for(user_with(ADMIN_LISTS[model]))
    response = client.get(f"/admin/configcat_segment/{model}/", {"q": "a\x00b"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()


@pytest.mark.parametrize("model", list(ADMIN_LISTS))
def test_a_search_within_bounds_still_searches(model, make_event):
    event = make_event(flag_key="checkout")
    WebhookReceipt.objects.create(connection=event.connection, webhook_id="wh-1", method="POST")
    term = {"event": "checkout", "webhookreceipt": "wh-1", "segmentconnection": "Product"}[model]
    client = client_for(user_with(ADMIN_LISTS[model]))
    response = client.get(f"/admin/configcat_segment/{model}/", {"q": term})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert SegmentConnection.objects.count() == 1
