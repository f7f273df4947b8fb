import datetime as dt
import html
import re

import pytest
from django.utils import timezone

from configcat_segment.models import EventClaim, WebhookReceipt

from ..conftest import CsrfClient
from .conftest import EVENTS_URL, client_for, event_url, user_with

pytestmark = pytest.mark.django_db


def text(response):
    return html.unescape(response.content.decode())


def rows(response):
    return [event.pk for event in response.context["events"]]


def test_anonymous_users_are_sent_to_the_admin_login(make_event):
    event = make_event()
    for url in [EVENTS_URL, event_url(event), EVENTS_URL + "retry/"]:
        response = CsrfClient().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_signed_in_users_who_are_not_staff_are_sent_to_the_login_too(make_event):
    client = client_for(user_with("view_event", staff=False))
    assert client.get(EVENTS_URL)["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_get_403(make_event):
    client = client_for(user_with("view_segmentconnection"))
    assert client.get(EVENTS_URL).status_code == 403
    assert client.get(event_url(make_event())).status_code == 403


def test_the_list_shows_each_event_newest_first(viewer_client, make_event):
    older = make_event(
        status="dead", flag_key="checkout_v2", user_id="alice", last_error="HTTP 400: bad"
    )
    newer = make_event(kind="evaluated", status="delivered", flag_key="dark_mode", user_id="bob")
    response = viewer_client.get(EVENTS_URL)
    assert response.status_code == 200
    assert rows(response) == [newer.pk, older.pk]
    page = text(response)
    row = re.search(rf'<tr data-event-id="{older.pk}">(.*?)</tr>', page, re.S).group(1)
    for shown in [
        older.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "Production",
        "changed",
        "checkout_v2",
        "alice",
        'class="cs-badge cs-status-dead"',
        ">Dead<",
        ">3<",
        "HTTP 400: bad",
    ]:
        assert shown in row
    assert 'class="cs-badge cs-status-delivered"' in page
    assert "evaluated" in page


def test_each_filter_narrows_the_list(viewer_client, make_event, make_connection):
    staging = make_connection(name="Staging")
    changed = make_event(flag_key="checkout_v2", user_id="alice")
    dead = make_event(kind="evaluated", status="dead", flag_key="dark_mode", user_id="bob")
    identify = make_event(kind="identify", connection=staging, user_id="carol", flag_key="")
    for query, expected in [
        (f"connection={staging.pk}", [identify]),
        ("kind=evaluated", [dead]),
        ("status=dead", [dead]),
        ("flag_key=checkout_v2", [changed]),
        ("user_id=carol", [identify]),
        ("q=dark", [dead]),
        ("status=dead&flag_key=dark_mode", [dead]),
        ("status=dead&flag_key=checkout_v2", []),
        (f"until={(timezone.now() - dt.timedelta(days=1)).date()}", []),
    ]:
        response = viewer_client.get(f"{EVENTS_URL}?{query}")
        assert rows(response) == [e.pk for e in expected], query
    empty = text(viewer_client.get(f"{EVENTS_URL}?flag_key=nothing"))
    assert "No event matches this filter." in empty


def test_the_filter_form_keeps_what_was_chosen(viewer_client, make_event, make_connection):
    staging = make_connection(name="Staging")
    make_event()
    page = viewer_client.get(
        f"{EVENTS_URL}?connection={staging.pk}&status=dead&kind=identify&flag_key=f1&q=zzz"
    ).content.decode()
    assert f'<option value="{staging.pk}" selected>Staging</option>' in page
    assert '<option value="dead" selected>' in page
    assert '<option value="identify" selected>' in page
    assert 'name="flag_key" value="f1"' in page
    assert 'name="q" value="zzz"' in page


def test_bad_filters_and_cursors_are_explained_not_a_500(viewer_client, make_event):
    event = make_event()
    response = viewer_client.get(
        EVENTS_URL + "?status=lost&since=soon&connection=42&cursor=%%%&flag_key=" + "k" * 300
    )
    assert response.status_code == 200
    page = text(response)
    assert '<ul class="errorlist">' in page
    for message in [
        "“lost” is not one of: pending, delivered, failed, dead.",
        "“soon” is not a date or time",
        "“42” is not a connection id.",
        "This page link is not valid",
        "At most 255 characters, not 300.",
    ]:
        assert message in page
    assert rows(response) == [event.pk]  # what could not be read is not applied


def test_pages_link_older_and_newer_keeping_the_filter(viewer_client, make_event, settings):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "EVENT_LOG_PAGE_SIZE": 2}
    events = [make_event(status="dead") for _ in range(3)]
    make_event(status="delivered")
    first = viewer_client.get(EVENTS_URL + "?status=dead")
    assert rows(first) == [events[2].pk, events[1].pk]
    assert first.context["previous_url"] is None
    next_url = first.context["next_url"]
    assert "status=dead" in next_url
    assert "cursor=" in next_url
    assert f'href="{html.escape(next_url)}" rel="next"' in first.content.decode()
    second = viewer_client.get(EVENTS_URL + next_url)
    assert rows(second) == [events[0].pk]
    assert second.context["next_url"] is None
    back = viewer_client.get(EVENTS_URL + second.context["previous_url"])
    assert rows(back) == [events[2].pk, events[1].pk]
    assert 'rel="first"' in second.content.decode()


def test_the_overview_shows_each_connections_health(viewer_client, make_event, make_connection):
    staging = make_connection(name="Staging", connected=False)
    staging.mark_unhealthy("Segment refused the write key (401)")
    delivered = make_event(status="delivered")
    make_event(status="pending")
    make_event(status="failed", last_error="timeout after 15 s")
    dead = make_event(status="dead", last_error="HTTP 400: invalid")
    make_event(status="dead", connection=staging)
    response = viewer_client.get(EVENTS_URL)
    health = {row.connection.name: row for row in response.context["health"]}
    production = health["Production"]
    assert (production.pending, production.failed, production.dead) == (1, 1, 1)
    assert production.last_delivery == delivered.delivered_at
    assert (production.last_error, production.last_error_event_id) == ("HTTP 400: invalid", dead.pk)
    assert (health["Staging"].dead, health["Staging"].last_delivery) == (1, None)
    page = text(response)
    row = re.search(rf'<tr data-connection-id="{staging.pk}">(.*?)</tr>', page, re.S).group(1)
    assert 'alt="no"' in row  # disconnected and unhealthy
    assert "Segment refused the write key (401)" in row
    assert f'href="?connection={staging.pk}&status=dead">1<' in row
    assert f'href="{event_url(dead)}"' in page


def test_the_chart_is_inline_svg_without_scripts(viewer_client, make_event):
    make_event(status="delivered")
    make_event(status="dead")
    page = viewer_client.get(EVENTS_URL).content.decode()
    svg = page[page.index('<svg class="cs-chart"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count("<g>") == 24
    assert "cs-fill-delivered" in svg
    assert "cs-fill-dead" in svg
    assert "1 Delivered · 1 Dead" in html.unescape(svg)
    assert "<script" not in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing from a CDN


def test_the_pages_look_like_the_admin(viewer_client, make_event):
    event = make_event()
    for url in [EVENTS_URL, event_url(event)]:
        page = viewer_client.get(url).content.decode()
        assert 'id="header"' in page
        assert "admin/css/base.css" in page
        assert "admin/js/theme.js" in page  # the light / dark / auto switch
        assert "configcat_segment/eventlog.css" in page
        assert 'href="/admin/"' in page  # breadcrumbs back to the admin
    assert "configcat_segment/eventlog.js" in viewer_client.get(EVENTS_URL).content.decode()


def test_projects_can_override_the_templates(viewer_client, make_event, settings, tmp_path):
    event = make_event(status="dead", flag_key="checkout_v2")
    override = tmp_path / "configcat_segment" / "includes"
    override.mkdir(parents=True)
    (override / "event_row.html").write_text("<tr><td>OUR ROW {{ event.flag_key }}</td></tr>")
    (override / "status_badge.html").write_text("<b>OUR BADGE {{ event.status }}</b>")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    assert "<tr><td>OUR ROW checkout_v2</td></tr>" in viewer_client.get(EVENTS_URL).content.decode()
    assert "<b>OUR BADGE dead</b>" in viewer_client.get(event_url(event)).content.decode()


def test_the_event_log_is_linked_from_the_admin(staff_client, segment_connection):
    index = staff_client.get("/admin/").content.decode()
    assert 'href="/admin/configcat_segment/eventlog/"' in index
    assert ">Event log<" in index
    redirect = staff_client.get("/admin/configcat_segment/eventlog/")
    assert redirect["Location"] == EVENTS_URL
    change = staff_client.get(
        f"/admin/configcat_segment/segmentconnection/{segment_connection.pk}/change/"
    )
    assert f'href="{EVENTS_URL}?connection={segment_connection.pk}"' in change.content.decode()
    changelist = staff_client.get("/admin/configcat_segment/segmentconnection/").content.decode()
    assert f'href="{EVENTS_URL}"' in changelist


def test_the_admin_index_hides_the_link_from_those_who_cannot_view_events(db):
    client = client_for(user_with("view_segmentconnection"))
    assert "/admin/configcat_segment/eventlog/" not in client.get("/admin/").content.decode()


def test_the_detail_shows_the_exact_message_safely_escaped(viewer_client, make_event):
    event = make_event(status="dead", last_error="HTTP 400: <b>bad</b>")
    event.payload["properties"]["note"] = "</pre><script>alert(1)</script>"
    event.save()
    response = viewer_client.get(event_url(event))
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bad</b>" not in page
    shown = re.search(r'<pre class="cs-json" id="cs-payload">(.*?)</pre>', page, re.S).group(1)
    import json

    assert json.loads(html.unescape(shown)) == event.payload  # exactly what was sent
    assert '\n  "type": "track",' in html.unescape(shown)  # pretty-printed
    assert event.message_id in page


def test_the_detail_shows_the_delivery_timeline(viewer_client, make_event):
    event = make_event(status="delivered", attempts=2)
    page = text(viewer_client.get(event_url(event)))
    timeline = re.search(r'<ol class="cs-timeline">(.*?)</ol>', page, re.S).group(1)
    assert "Created" in timeline
    assert "2 attempts" in timeline
    assert event.delivered_at.strftime("%Y-%m-%d %H:%M:%S") in timeline
    assert "Delivered: Segment accepted it" in timeline
    failed = make_event(status="failed", last_error="timeout")
    timeline = text(viewer_client.get(event_url(failed)))
    assert "next attempt at" in timeline
    assert 'Last error: <span class="cs-error-text">timeout</span>' in timeline


def test_the_detail_shows_an_event_being_sent_and_attempts_without_an_outcome(
    changer_client, make_event
):
    """The lease is in the claims table, not in the row: a failed event being retried
    says so rather than "failed" alone, and is not offered a retry meanwhile."""
    now = timezone.now()
    event = make_event(status="failed", attempts=1, last_error="timeout")
    claim = EventClaim.objects.create(
        event_id=event.pk, lease_until=now + dt.timedelta(minutes=5), claims=1
    )
    page = text(changer_client.get(event_url(event)))
    assert "Being sent now: a worker holds it until" in page
    assert claim.lease_until.strftime("%Y-%m-%d %H:%M:%S") in page
    assert event_url(event) + "retry/" not in page
    EventClaim.objects.filter(pk=claim.pk).update(lease_until=now, claims=2)
    page = text(changer_client.get(event_url(event)))
    assert "Being sent now" not in page
    assert event_url(event) + "retry/" in page
    assert "2 more attempts whose workers stopped before recording an outcome" in page


def test_a_change_shows_the_webhook_receipt_it_came_from(
    viewer_client, make_event, segment_connection
):
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-1",
        method="POST",
        headers={"Content-Type": "application/json", "X-ConfigCat-Webhook-ID": "wh-1"},
        body=b'{"config_name":"Main","change_details":[]}',
        remote_addr="203.0.113.9",
        outcome=WebhookReceipt.Outcome.PROCESSED,
    )
    event = make_event(receipt=receipt)
    page = text(viewer_client.get(event_url(event)))
    assert "Webhook it came from" in page
    assert "203.0.113.9" in page
    assert "X-ConfigCat-Webhook-ID" in page
    body = re.search(r'<pre class="cs-json" id="cs-receipt-body">(.*?)</pre>', page, re.S).group(1)
    assert body == '{\n  "config_name": "Main",\n  "change_details": []\n}'
    assert "Webhook it came from" not in text(viewer_client.get(event_url(make_event())))


def test_an_unknown_event_is_404(viewer_client):
    assert viewer_client.get(f"{EVENTS_URL}999999/").status_code == 404


@pytest.mark.parametrize(
    "query", ["until=9999-12-31", "since=0001-01-01T00:00%2B14:00", "flag_key=a%00b", "q=%00"]
)
def test_out_of_range_or_nul_filters_are_messages_not_errors(viewer_client, make_event, query):
    make_event()
    for url in ("/configcat-segment/events/", "/configcat-segment/api/events/"):
        response = viewer_client.get(f"{url}?{query}")
        assert response.status_code in (200, 400), (url, response.status_code)
        assert (
            "not a date or time" in response.content.decode() or "NUL" in response.content.decode()
        )


def test_a_receipt_body_nested_too_deep_for_json_is_shown_as_text(
    viewer_client, make_event, segment_connection
):
    body = b'{"a":' * 5000 + b"1" + b"}" * 5000
    receipt = WebhookReceipt.objects.create(connection=segment_connection, method="POST", body=body)
    event = make_event(receipt=receipt)
    response = viewer_client.get(f"/configcat-segment/events/{event.pk}/")
    assert response.status_code == 200
    assert "{&quot;a&quot;:{&quot;a&quot;" in response.content.decode()
