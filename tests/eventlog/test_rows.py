"""The event log's rows, built once a page (eventlog/rows.py), show what they showed before:
the JSON API's page byte for byte what ``EventSerializer`` made of it, and the page's rows
byte for byte what the row's template makes of them."""

import datetime as dt
import zoneinfo

import pytest
from django.template.defaultfilters import date as date_filter
from django.template.loader import render_to_string
from django.utils import timezone, translation
from rest_framework.renderers import JSONRenderer

from configcat_segment.constants import EXPERIMENT_VIEWED
from configcat_segment.eventlog.listing import list_events
from configcat_segment.eventlog.rows import (
    JSON_FIELDS,
    ROW_TEMPLATE,
    event_rows,
    events_json,
    row_template_is_packaged,
    rows_html,
)
from configcat_segment.models import Event
from configcat_segment.serializers import EventSerializer

from .conftest import API_URL, EVENTS_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_kind(make_event):
    """One event of each kind, source and status; times with and without microseconds."""
    moment = dt.datetime(2026, 3, 29, 0, 30, 5, 123456, tzinfo=dt.UTC)  # Europe: clocks change
    audit = make_event(kind="changed", created_at=moment, user_id="<b>&amp;</b>")
    audit.payload["properties"]["source"] = "audit_log"
    audit.save()
    return [
        audit,
        make_event(kind="changed", status="dead", created_at=moment.replace(microsecond=0)),
        make_event(kind="evaluated", status="delivered", flag_key="é ü “x”"),
        make_event(kind="identify", status="failed", last_error="x" * 200),
        make_event(status="dead", last_error='HTTP 400: "bad" <input> & more'),
        make_event(status="dead", last_error="é" * 119 + "e\u0301"),  # NFC: 120 characters
        make_event(status="dead", last_error="ü" * 121, attempts=12345),
        make_event(kind="evaluated", status="pending", event_name=EXPERIMENT_VIEWED),
        make_event(kind="evaluated", status="delivered", delivered_at=moment),
    ]


def serialized(events):
    return EventSerializer(events, many=True).data


def test_the_api_page_is_what_the_serializer_made(viewer_client, every_kind):
    events = list_events({}).page.items  # the rows as the page reads them
    assert [e.pk for e in events] == [e.pk for e in reversed(every_kind)]
    expected = JSONRenderer().render(
        {"next": None, "previous": None, "results": serialized(events)}
    )
    assert viewer_client.get(API_URL).content == expected


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
@pytest.mark.parametrize("language", ["en", "de"])
def test_events_json_is_the_serializers_output(every_kind, zone, language):
    with timezone.override(zoneinfo.ZoneInfo(zone)), translation.override(language):
        events = list_events({}).page.items
        values = list_events({}, fields=JSON_FIELDS).page.items  # what the API reads
        assert [row.pk for row in values] == [event.pk for event in events]
        renderer = JSONRenderer()
        assert renderer.render(events_json(values)) == renderer.render(serialized(events))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
def test_the_rows_show_what_the_template_showed(every_kind, zone):
    with timezone.override(zoneinfo.ZoneInfo(zone)), translation.override("de"):
        events = list_events({}).page.items
        for row in event_rows(events):
            event = row.event
            assert row.url == f"{EVENTS_URL}{event.pk}/"
            local = timezone.template_localtime(event.created_at)
            assert row.created == date_filter(local, "Y-m-d H:i:s")
            assert row.status_display == event.get_status_display()
            assert row.source_display == event.source_display


def test_the_page_shows_each_row(viewer_client, every_kind):
    page = viewer_client.get(EVENTS_URL).content.decode()
    for event in every_kind:
        local = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S")
        assert f'<a href="{EVENTS_URL}{event.pk}/" data-field="created_at">{local}</a>' in page
    assert 'data-field="source_display">audit log</small>' in page
    assert 'data-field="status">Dead</span>' in page
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page  # escaped as before
    assert Event.objects.count() == len(every_kind)


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns"])
@pytest.mark.parametrize("separator", [False, True])
def test_the_rows_html_is_what_the_rows_template_writes(every_kind, zone, separator, settings):
    settings.USE_THOUSAND_SEPARATOR = separator
    with timezone.override(zoneinfo.ZoneInfo(zone)), translation.override("de"):
        rows = event_rows(list_events({}).page.items)
        expected = "".join(
            render_to_string(ROW_TEMPLATE, {"row": row, "event": row.event}) for row in rows
        )
        assert row_template_is_packaged()
        assert rows_html(rows) == expected
    assert ('data-field="attempts">12.345<' in expected) is separator  # German, grouped
