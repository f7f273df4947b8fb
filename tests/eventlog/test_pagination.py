import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from configcat_segment.eventlog.pagination import Cursor, InvalidCursor, paginate
from configcat_segment.models import Event

from .conftest import EVENTS_URL


@pytest.mark.parametrize("cursor", [Cursor(1), Cursor(42, newer=True), Cursor(10**18)])
def test_cursors_round_trip_as_opaque_text(cursor):
    text = cursor.encode()
    assert str(cursor.id) not in text
    assert Cursor.decode(text) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "bz",  # "o12" cut short: "o"
        Cursor(5).encode() + "!",
        "eDEy",  # "x12": an unknown direction
        "bzA",  # "o0": no such id
        "b" + "A" * 40,  # far too long
        "w6k",  # not ASCII once decoded
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(InvalidCursor):
        Cursor.decode(text)


@pytest.mark.django_db
def test_walking_older_then_newer_visits_every_event_once(make_event):
    events = [make_event(flag_key=f"f{n}") for n in range(7)]
    newest_first = [e.pk for e in reversed(events)]
    queryset = Event.objects.all()

    pages, cursor = [], None
    while True:
        page = paginate(queryset, cursor, 3)
        pages.append([e.pk for e in page.items])
        if page.next is None:
            break
        cursor = page.next
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]
    assert paginate(queryset, None, 3).previous is None

    last = paginate(queryset, paginate(queryset, Cursor(newest_first[5]), 3).previous, 3)
    assert [e.pk for e in last.items] == newest_first[3:6]
    back = paginate(queryset, last.previous, 3)
    assert [e.pk for e in back.items] == newest_first[0:3]
    assert back.previous is None  # the newest page again
    assert back.next is not None


@pytest.mark.django_db
def test_a_cursor_past_the_end_is_an_empty_page(make_event):
    event = make_event()
    page = paginate(Event.objects.all(), Cursor(event.pk), 3)
    assert (page.items, page.next, page.previous) == ([], None, None)


@pytest.mark.django_db
def test_every_page_costs_the_same_queries_and_none_counts_the_table(
    staff_client, make_event, make_connection, settings
):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "EVENT_LOG_PAGE_SIZE": 2}
    other = make_connection(name="Staging")
    for n in range(5):
        make_event(status="delivered", flag_key=f"f{n}")
        make_event(connection=other, status="dead", flag_key=f"f{n}")
    urls, url = [], EVENTS_URL
    while url:
        urls.append(url)
        response = staff_client.get(url)
        url = EVENTS_URL + response.context["next_url"] if response.context["next_url"] else None
    assert len(urls) == 5

    counts = []
    for url in [urls[0], urls[2], urls[-1]]:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(url).status_code == 200
        counts.append(len(captured))
        for query in captured.captured_queries:
            sql = query["sql"].upper()
            assert "OFFSET" not in sql
            if 'FROM "CONFIGCAT_SEGMENT_EVENT"' in sql:
                # Every read of the events table is narrowed or limited: none scans it all.
                assert " WHERE " in sql or " LIMIT " in sql, sql
    assert counts[0] == counts[1] == counts[2]


@pytest.mark.django_db
def test_the_page_query_count_is_fixed(staff_client, make_event, django_assert_num_queries):
    """Session, user, connections with last delivery, counts, last errors, evaluation
    counters, chart, page."""
    make_event(status="dead")
    staff_client.get(EVENTS_URL)
    with django_assert_num_queries(8):
        staff_client.get(EVENTS_URL)
    for n in range(30):
        make_event(status="failed" if n % 2 else "delivered", flag_key=f"f{n}")
    with django_assert_num_queries(8):
        staff_client.get(EVENTS_URL + "?status=failed")
