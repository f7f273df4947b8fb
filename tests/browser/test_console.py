"""The console as a person uses it: sign in, connect, disconnect, find an event, retry it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from configcat_segment.models import Event, SegmentConnection

from ..conftest import SIGNING_KEY, WRITE_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page, superuser):
    page.goto("/configcat-segment/events/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", "pw-root-123")
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_have_text("Event log")


def open_add_form(page, navigate):
    """Open an admin add form with ``navigate`` and wait until it is ready to type into.

    Django's add form focuses its first field from ``admin/js/change_form.js``, an
    ``async`` script. A click that opens the form returns once the page is on its way, and
    ``fill`` starts as soon as a field can take text, so the script could run between
    ``fill`` focusing a field and typing into it: the text went into the first field
    ("Productionwk_live_…") and the field meant for it stayed empty. A person waits for
    the cursor to land; so does this. To make that order happen on every run, the script is
    held until the form is on screen.
    """
    held = []
    page.route("**/admin/js/change_form.js", lambda route: held.append(route))
    try:
        navigate()
        expect(page.locator("#id_name")).to_be_editable()
        assert len(held) == 1, "the add form no longer loads change_form.js"
        held[0].continue_()
        expect(page.locator("#id_name")).to_be_focused()  # the form's own autofocus ran
    finally:
        page.unroute("**/admin/js/change_form.js")


def test_connect_and_disconnect_a_segment_source(page, superuser, screenshot):
    sign_in(page, superuser)
    page.goto("/admin/")
    page.get_by_role("link", name="Segment connections").click()
    open_add_form(page, lambda: page.get_by_role("link", name="Connect a Segment source").click())
    page.fill("#id_name", "Production")
    page.fill("#id_write_key", WRITE_KEY)
    page.select_option("#id_region", "eu")
    page.fill("#id_signing_key", SIGNING_KEY)
    screenshot("1-connect-form")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    connection = SegmentConnection.objects.get()
    assert (connection.name, connection.region, connection.connected) == ("Production", "eu", True)

    page.locator("#result_list").get_by_role("link", name="Production").click()
    expect(page.locator("#cs-webhook-url")).to_contain_text(f"/webhooks/{connection.pk}/")
    assert WRITE_KEY not in page.content()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("ul.messagelist")).to_contain_text("is disconnected")
    expect(page.get_by_role("button", name="Reconnect")).to_be_visible()
    screenshot("2-disconnected")
    connection.refresh_from_db()
    assert not connection.connected

    page.locator(".object-tools").get_by_role("link", name="Event log").click()
    expect(page).to_have_url(re.compile(rf"/configcat-segment/events/\?connection={connection.pk}"))


def test_find_an_event_filter_open_it_and_retry_it(page, superuser, make_event, screenshot):
    now = timezone.now()
    for n in reversed(range(5)):  # written oldest first, spread over the day
        when = now - dt.timedelta(hours=4 * n + 1)
        make_event(status="delivered", flag_key=f"flag_{n}", user_id=f"user-{n}", created_at=when)
    make_event(kind="evaluated", status="failed", flag_key="dark_mode", last_error="timeout")
    dead = make_event(
        status="dead", flag_key="checkout_v2", user_id="alice", last_error="HTTP 400: invalid"
    )
    sign_in(page, superuser)
    rows = page.locator("#cs-events tbody tr")
    expect(rows).to_have_count(7)
    expect(rows.first).to_contain_text("checkout_v2")
    expect(page.locator("svg.cs-chart rect.cs-fill-delivered")).to_have_count(5)
    expect(page.locator("svg.cs-chart")).to_be_visible()
    expect(page.locator(".cs-health")).to_contain_text("Production")
    screenshot("1-event-log")

    page.select_option("select[name=status]", "dead")
    page.fill("input[name=flag_key]", "checkout_v2")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=dead"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".cs-badge")).to_have_text("Dead")
    screenshot("2-filtered")

    rows.first.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text(f"Event {dead.pk}")
    expect(page.locator("#cs-payload")).to_contain_text('"event": "Feature Flag Changed"')
    expect(page.locator(".cs-timeline")).to_contain_text("HTTP 400: invalid")
    screenshot("3-detail")

    page.get_by_role("button", name="Retry").click()
    expect(page.locator("ul.messagelist")).to_contain_text("queued again with the same messageId")
    expect(page.locator(".cs-facts .cs-badge")).to_have_text("Pending")
    expect(page.locator(".cs-timeline")).to_contain_text("Retried")
    screenshot("4-retried")
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("pending", 0)


def test_live_refresh_and_dark_mode(page, superuser, make_event, screenshot):
    make_event(status="delivered", flag_key="first_flag")
    sign_in(page, superuser)
    rows = page.locator("#cs-events tbody tr")
    expect(rows).to_have_count(1)
    arrived = make_event(status="dead", flag_key="arrived_later", last_error="HTTP 400")
    page.check("#cs-live")  # refreshes at once, then every few seconds
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("arrived_later")
    expect(rows.first).to_have_class(re.compile("cs-new"))
    expect(rows.first.locator(".cs-badge")).to_have_class(re.compile("cs-status-dead"))
    expect(rows.first.get_by_role("link")).to_have_attribute(
        "href", f"/configcat-segment/events/{arrived.pk}/"
    )
    expect(page.locator('.cs-health [data-field="dead"]')).to_have_text("1")
    expect(page.locator("#cs-live-status")).to_contain_text("Updated")
    page.uncheck("#cs-live")

    page.emulate_media(color_scheme="dark")
    page.reload()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 18)"  # the admin's dark theme, followed by our page
    dead_fill = page.evaluate(
        "getComputedStyle(document.querySelector('.cs-status-dead')).backgroundColor"
    )
    assert dead_fill == "rgb(227, 95, 95)"  # the dark variant of the dead colour
    screenshot("dark")
    assert Event.objects.count() == 2
