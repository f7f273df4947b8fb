"""Searching the event log and downloading what it shows, as a person does in Chromium."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from playwright.sync_api import expect

from .test_console import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_search_for_part_of_a_flag_key_or_user_then_download_it(
    page, superuser, make_event, screenshot
):
    make_event(status="delivered", flag_key="checkout_v2", user_id="alice")
    make_event(status="dead", flag_key="dark_mode", user_id="bob", last_error="HTTP 400")
    wanted = make_event(status="dead", flag_key="new_checkout", user_id="carol")
    make_event(status="failed", flag_key="banner", user_id="Checkout-Tester")
    sign_in(page, superuser)
    rows = page.locator("#cs-events tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#cs-search-help")).to_have_text(
        "Part of a flag key or user id, in any case (at least 3 characters)."
    )

    page.get_by_label("Search").fill("CHECKOUT")
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(re.compile(r"q=CHECKOUT"))
    expect(rows).to_have_count(3)  # two flag keys and a user id, whatever their case
    page.select_option("select[name=status]", "dead")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("new_checkout")
    expect(page.get_by_label("Search")).to_have_value("CHECKOUT")
    screenshot("1-searched")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert re.fullmatch(r"events-\d{8}-\d{6}\.csv", download.value.suggested_filename)
    table = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(row["id"], row["flag_key"], row["status"]) for row in table] == [
        (str(wanted.pk), "new_checkout", "dead")
    ]

    with page.expect_download() as download:
        page.get_by_role("link", name="JSON Lines").click()
    lines = download.value.path().read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == [wanted.payload]


def test_a_search_too_short_is_explained(page, superuser, make_event):
    make_event(flag_key="ab")
    sign_in(page, superuser)
    page.goto("/configcat-segment/events/?q=ab")
    expect(page.locator(".cs-filters .errorlist")).to_contain_text(
        "Search for at least 3 characters"
    )
    expect(page.locator("#cs-events tbody tr")).to_have_count(1)  # the filter is left out
