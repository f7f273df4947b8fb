"""Export: every event a filter shows, as CSV or JSON Lines, streamed in flat memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pytest

from configcat_segment.eventlog import export
from configcat_segment.models import Event

from ..conftest import CsrfClient
from .bulk import generate_events
from .conftest import EVENTS_URL, client_for, user_with

pytestmark = pytest.mark.django_db

CSV_URL = EVENTS_URL + "export.csv"
JSONL_URL = EVENTS_URL + "export.jsonl"


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(body(response))))


def test_exports_are_for_staff_with_the_view_permission(make_event, viewer_client):
    make_event()
    for url in (CSV_URL, JSONL_URL):
        assert CsrfClient().get(url)["Location"].startswith("/admin/login/?next=")
        assert client_for(user_with("view_segmentconnection")).get(url).status_code == 403
        assert viewer_client.get(url).status_code == 200
    assert viewer_client.get(EVENTS_URL + "export.xml").status_code == 404


def test_the_csv_holds_every_filtered_event_on_every_page(
    viewer_client, make_event, settings, monkeypatch
):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "EVENT_LOG_PAGE_SIZE": 2}
    monkeypatch.setattr(export, "CHUNK", 2)  # several chunks
    dead = [
        make_event(status="dead", flag_key="checkout_v2", user_id=f"alice-{n}") for n in range(5)
    ]
    make_event(status="delivered", flag_key="checkout_v2")
    make_event(status="dead", flag_key="other", user_id="bob")
    response = viewer_client.get(CSV_URL + "?status=dead&q=CHECKOUT&cursor=bzE")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="events-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = csv_rows(response)
    assert [int(row["id"]) for row in rows] == [e.pk for e in reversed(dead)]  # newest first
    first = rows[0]
    event = dead[-1]
    assert list(first) == list(export.CSV_HEADER)
    assert first == {
        **first,
        "connection": "Production",
        "connection_id": str(event.connection_id),
        "kind": "changed",
        "type": "track",
        "event_name": "Feature Flag Changed",
        "flag_key": "checkout_v2",
        "user_id": "alice-4",
        "message_id": event.message_id,
        "status": "dead",
        "attempts": "3",
        "last_error": "Segment answered 500 Internal Server Error",
        "delivered_at": "",
    }
    assert first["created_at"] == event.created_at.isoformat().replace("+00:00", "Z")


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(viewer_client, make_event):
    make_event(user_id='=HYPERLINK("http://evil")', flag_key="+1", last_error="-x")
    row = csv_rows(viewer_client.get(CSV_URL))[0]
    assert row["user_id"] == '\'=HYPERLINK("http://evil")'
    assert row["flag_key"] == "'+1"


def test_json_lines_carry_the_exact_messages(viewer_client, make_event, make_connection):
    staging = make_connection(name="Staging")
    identify = make_event(kind="identify", connection=staging, user_id="carol", status="delivered")
    changed = make_event(status="failed")
    response = viewer_client.get(JSONL_URL)
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    lines = body(response).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [changed.pk, identify.pk]
    for record, event in zip(records, [changed, identify], strict=True):
        assert record["message"] == Event.objects.get(pk=event.pk).payload
        assert record["message_id"] == record["message"]["messageId"]
    assert records[1]["connection"] == {"id": str(staging.pk), "name": "Staging"}
    assert (records[1]["kind"], records[1]["status"]) == ("identify", "delivered")
    assert records[1]["delivered_at"].endswith("Z")
    assert records[0]["delivered_at"] is None
    only_staging = body(viewer_client.get(JSONL_URL + f"?connection={staging.pk}"))
    assert [json.loads(line)["id"] for line in only_staging.splitlines()] == [identify.pk]


def test_a_filter_that_is_not_valid_exports_nothing(viewer_client, make_event):
    make_event()
    response = viewer_client.get(CSV_URL + "?status=lost&q=ab")
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("Nothing was exported: the filter is not valid")
    assert "“lost” is not one of" in text
    assert "at least 3 characters" in text


def test_the_page_links_the_exports_with_its_filter(viewer_client, make_event):
    make_event()
    page = viewer_client.get(EVENTS_URL + "?status=dead&q=check").content.decode()
    assert f'href="{CSV_URL}?status=dead&amp;q=check" download' in page
    assert f'href="{JSONL_URL}?status=dead&amp;q=check" download' in page


def stream_in_stretches(response, rows, stretches=10, header=0):
    """Read ``response`` ``rows / stretches`` lines at a time: the peak of traced memory
    while reading each stretch, and how many lines there were."""
    chunks = iter(response.streaming_content)
    lines, peaks = 0, []
    tracemalloc.start()
    try:
        for stretch in range(1, stretches + 1):
            tracemalloc.reset_peak()
            while lines < stretch * rows // stretches + header:
                lines += next(chunks).count(b"\n")
            peaks.append(tracemalloc.get_traced_memory()[1])
        lines += sum(piece.count(b"\n") for piece in chunks)
    finally:
        tracemalloc.stop()
    return peaks, lines


def test_an_export_of_100000_events_streams_in_flat_memory(viewer_client, segment_connection):
    generate_events(segment_connection, 100_000)
    peaks, lines = stream_in_stretches(viewer_client.get(CSV_URL), 100_000, header=1)
    assert lines == 100_000 + 1  # and the header
    # The last half of the rows needs no more memory than the first half: nothing
    # accumulates with the rows sent.
    assert max(peaks[5:]) < max(peaks[:5]) + 64 * 1024, peaks
    assert max(peaks) < 16 * 1024 * 1024, peaks


def test_an_export_through_the_search_index_streams_in_flat_memory(
    viewer_client, segment_connection, monkeypatch
):
    monkeypatch.setattr(export, "CHUNK", 200)  # a hundred chunks
    generate_events(segment_connection, 20_000)
    response = viewer_client.get(JSONL_URL + "?q=USER-")
    peaks, lines = stream_in_stretches(response, 20_000)
    assert lines == 20_000
    assert max(peaks[5:]) < max(peaks[:5]) + 64 * 1024, peaks
