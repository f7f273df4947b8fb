"""Search: part of a flag key or user id, any case, through an index on both databases."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection

from configcat_segment.database import repair, triggers
from configcat_segment.database import search as search_sql
from configcat_segment.eventlog import search
from configcat_segment.eventlog.filters import parse
from configcat_segment.eventlog.listing import list_events
from configcat_segment.models import Event

from .conftest import API_URL, EVENTS_URL

pytestmark = pytest.mark.django_db


def ids(events):
    return [event.pk for event in events]


def every_page(params, size):
    """The ids shown on every page, following "Older" from the first, then "Newer" back."""
    pages, cursor = [], None
    while True:
        listing = list_events({**params, **({"cursor": cursor} if cursor else {})}, size=size)
        assert listing.errors == {}
        pages.append(ids(listing.page.items))
        if listing.page.next is None:
            break
        cursor = listing.page.next.encode()
    back = [pages[-1]]
    while listing.page.previous is not None:
        listing = list_events({**params, "cursor": listing.page.previous.encode()}, size=size)
        back.append(ids(listing.page.items))
    assert back[::-1] == pages  # the same pages, whichever way they are walked
    return [pk for page in pages for pk in page]


@pytest.fixture
def mixed_events(make_event, make_connection):
    """140 events with keys and ids made of few letters, so that texts recur at random."""
    rng = random.Random(13)
    other = make_connection(name="Staging")
    letters = "abAB_%-"
    events = []
    for _ in range(140):
        events.append(
            make_event(
                connection=rng.choice([None, other]),
                kind=rng.choice(["changed", "evaluated", "identify"]),
                status=rng.choice(["pending", "delivered", "failed", "dead"]),
                flag_key="".join(rng.choice(letters) for _ in range(rng.randint(0, 6))),
                user_id="".join(rng.choice(letters) for _ in range(rng.randint(1, 6))),
            )
        )
    return events, other


@pytest.mark.parametrize("few", [1, search.FEW])  # walk the index / check the few one by one
@pytest.mark.parametrize("term", ["aba", "AbA", "b_a", "a%b", "--a", "zzz"])
def test_every_page_of_a_search_shows_exactly_the_matching_events(
    mixed_events, monkeypatch, few, term
):
    monkeypatch.setattr(search, "FEW", few)
    monkeypatch.setattr(search, "FIRST_STEP", 3)  # many small steps through the index
    monkeypatch.setattr(search, "MAX_STEP", 7)
    events, other = mixed_events

    def expected(keep=lambda e: True):
        low = term.lower()
        return [
            e.pk
            for e in reversed(events)
            if keep(e) and (low in e.flag_key.lower() or low in e.user_id.lower())
        ]

    assert every_page({"q": term}, size=4) == expected()
    assert every_page({"q": term, "status": "dead"}, size=3) == expected(
        lambda e: e.status == "dead"
    )
    assert every_page({"q": term, "connection": str(other.pk), "kind": "identify"}, 2) == (
        expected(lambda e: e.connection_id == other.pk and e.kind == "identify")
    )
    # The same set as a queryset (bulk retry, counts).
    event_filter, _ = parse({"q": term})
    assert set(ids(event_filter.apply(Event.objects.all()))) == set(expected())


def test_quotes_and_operators_are_plain_text(make_event):
    quoted = make_event(flag_key='say "hi" AND', user_id="u1")
    make_event(flag_key="say hi", user_id="AND OR NOT")
    for term, found in [('"hi"', [quoted]), ('hi" AND', [quoted]), ("NEAR(", [])]:
        assert ids(list_events({"q": term}).page.items) == ids(found), term


def test_search_needs_three_characters_and_says_so(viewer_client, make_event):
    make_event(flag_key="ab")
    page = viewer_client.get(EVENTS_URL + "?q=ab")
    assert "Search for at least 3 characters" in page.content.decode()
    api = viewer_client.get(API_URL + "?q=ab")
    assert api.status_code == 400
    assert "at least 3 characters" in api.json()["errors"]["q"]


def test_the_page_says_what_the_search_matches(viewer_client, make_event):
    make_event()
    page = viewer_client.get(EVENTS_URL).content.decode()
    assert "Part of a flag key or user id, in any case (at least 3 characters)" in page


def test_search_links_keep_the_text(viewer_client, make_event, settings):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "EVENT_LOG_PAGE_SIZE": 1}
    first, second = make_event(user_id="alice-1"), make_event(user_id="alice-2")
    make_event(user_id="bob")
    response = viewer_client.get(API_URL + "?q=ALICE").json()
    assert [e["id"] for e in response["results"]] == [second.pk]
    assert parse_qs(urlsplit(response["next"]).query)["q"] == ["ALICE"]
    assert [e["id"] for e in viewer_client.get(response["next"]).json()["results"]] == [first.pk]


# -- the index stays in step -----------------------------------------------------------------


def integrity_check():
    """SQLite's FTS5 compares its index with the events table, raising when they differ.
    (PostgreSQL maintains its indexes itself.)"""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO configcat_segment_event_search(configcat_segment_event_search, rank) "
            "VALUES ('integrity-check', 1)"
        )


def test_the_index_follows_inserts_updates_and_deletes(make_event):
    kept, renamed, deleted = make_event(user_id="carol"), make_event(), make_event()
    Event.objects.filter(pk=renamed.pk).update(flag_key="renamed_flag")
    Event.objects.filter(pk=deleted.pk).delete()
    Event.objects.bulk_create([Event(**{**_fields(kept), "message_id": "bulk-1"})])
    integrity_check()
    assert len(list_events({"q": "renamed"}).page.items) == 1
    assert len(list_events({"q": "checkout"}).page.items) == 2  # kept and the bulk copy
    assert len(list_events({"q": "aro"}).page.items) == 2


def _fields(event):
    names = ["connection", "type", "event_name", "flag_key", "user_id", "payload", "status"]
    return {name: getattr(event, name) for name in names}


@pytest.mark.django_db(transaction=True)
def test_migrate_puts_back_triggers_that_a_table_rebuild_dropped(make_event):
    make_event(user_id="before")
    ours = [s for s in repair.all_sets() if s.vendor == connection.vendor]
    with connection.cursor() as cursor:  # what SQLite's table rebuild does to triggers
        for statement in [drop for trigger_set in ours for drop in trigger_set.drop()]:
            cursor.execute(statement)
    written = make_event(user_id="while-missing")

    call_command("migrate", verbosity=0)

    names = {name for trigger_set in ours for name in trigger_set.triggers}
    assert names <= triggers.existing_triggers(connection)
    assert ids(list_events({"q": "while-missing"}).page.items) == [written.pk]
    integrity_check()
    assert repair.repair() == []  # nothing left to repair


def test_each_database_answers_a_search_from_its_index(make_event):
    make_event(flag_key="checkout_v2", user_id="alice")
    if connection.vendor == "sqlite":
        sql, params = search.MATCHING, [search_sql.fts_query("heck")]
    else:
        queryset = Event.objects.filter(search.condition("heck", "postgresql")).values("pk")
        sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert f"SCAN {search_sql.TABLE} VIRTUAL TABLE INDEX" in plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # else a tiny table is read whole
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "cs_event_flag_trgm" in plan
            assert "cs_event_user_trgm" in plan
    assert len(list_events({"q": "HECK"}).page.items) == 1
