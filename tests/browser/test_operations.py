""" "Send test event" as a staff user clicks it: against the local Segment-compatible server."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import override_settings
from playwright.sync_api import expect

from configcat_segment.conf import get_settings
from configcat_segment.models import Event, SegmentConnection

from ..conftest import WRITE_KEY
from ..segment_server import SegmentServer
from .test_console import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def segment_server():
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        yield server


@pytest.fixture
def production(segment_server):
    return SegmentConnection.objects.create(
        name="Production", write_key=WRITE_KEY, region="custom", custom_endpoint=segment_server.url
    )


def open_connection(page, connection):
    page.goto(f"/admin/configcat_segment/segmentconnection/{connection.pk}/change/")
    expect(page.locator("h1")).to_contain_text("Change Segment connection")


def send_test_event(page):
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("h1")).to_have_text("Test of “Production”")
    return page.locator(".cs-test-result")


def test_a_working_write_key(page, superuser, production, segment_server, screenshot):
    sign_in(page, superuser)
    open_connection(page, production)
    result = send_test_event(page)
    expect(result.locator(".cs-test-headline")).to_have_text(
        f"Accepted: {segment_server.url.removeprefix('http://')} answered 200."
    )
    expect(result.locator(".messagelist li.success")).to_be_visible()
    expect(result.locator(".cs-test-status")).to_have_text("200")
    expect(result.locator(".cs-test-body")).to_have_text('{"success": true}')
    expect(result.locator(".cs-test-time")).to_contain_text(" ms")
    expect(result.locator(".cs-test-advice").first).to_contain_text("arrived where it forwards")
    screenshot("1-accepted")
    assert WRITE_KEY not in page.content()
    assert len(segment_server.requests) == 1
    assert [m["type"] for m in segment_server.accepted_messages] == ["identify", "track"]

    # Both events are in the event log, as test events.
    result.locator(".cs-test-events a").nth(1).click()
    expect(page.locator("#cs-payload")).to_contain_text('"event": "ConfigCat Segment Test"')
    expect(page.locator(".cs-facts .cs-badge")).to_have_text("Delivered")
    screenshot("2-in-the-event-log")
    assert LogEntry.objects.get().get_change_message().startswith("Sent test events: 200")


def test_a_wrong_write_key(page, superuser, production, segment_server, screenshot):
    production.write_key = "wk_wrong_0123456789abcdef"
    production.save()
    sign_in(page, superuser)
    open_connection(page, production)
    result = send_test_event(page)
    expect(result.locator(".cs-test-headline")).to_have_text("The write key was refused (401).")
    expect(result.locator(".messagelist li.error")).to_be_visible()
    expect(result.locator(".cs-test-status")).to_have_text("401")
    expect(result.locator(".cs-test-body")).to_contain_text("Invalid write key")
    expect(result.locator(".cs-test-advice").first).to_contain_text("Settings → API Keys")
    screenshot("refused")
    assert "wk_wrong_0123456789abcdef" not in page.content()
    assert set(Event.objects.values_list("status", flat=True)) == {"dead"}

    # Fixed in the form, then tested again from the result page.
    page.get_by_role("link", name="Back to the connection").click()
    page.fill("#id_write_key", WRITE_KEY)
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    result = send_test_event(page)
    expect(result.locator(".cs-test-status")).to_have_text("200")


def test_segment_does_not_answer_in_time(page, superuser, production, segment_server, screenshot):
    with override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "HTTP_TIMEOUT_SECONDS": 0.5}
    ):
        gate = segment_server.hold(times=None)
        try:
            sign_in(page, superuser)
            open_connection(page, production)
            result = send_test_event(page)
            expect(result.locator(".cs-test-headline")).to_contain_text(
                "within 0.5 s (HTTP_TIMEOUT_SECONDS)"
            )
            expect(result.locator(".cs-test-status")).to_have_text("no answer")
            expect(result.locator(".cs-test-body")).to_contain_text("timed out")
            screenshot("timeout")
        finally:
            gate.release()
    assert set(Event.objects.values_list("status", flat=True)) == {"dead"}


def test_the_list_action(page, superuser, production, segment_server):
    SegmentConnection.objects.create(
        name="Staging",
        write_key="wk_other_0123456789abcdef",
        region="custom",
        custom_endpoint=segment_server.url,
    )
    sign_in(page, superuser)
    page.goto("/admin/configcat_segment/segmentconnection/")
    page.locator("#action-toggle").check()
    page.select_option("select[name=action]", "send_test_events")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("h1")).to_have_text("Test of 2 connections")
    results = page.locator(".cs-test-result")
    expect(results).to_have_count(2)
    expect(results.nth(0).locator(".cs-test-status")).to_have_text("200")  # Production
    expect(results.nth(1).locator(".cs-test-status")).to_have_text("401")  # Staging
