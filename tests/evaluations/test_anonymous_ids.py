"""One tracked user per visitor: random anonymous ids are counted where a user sees the cost
(``configcat_segment_status``, the event log), and the demo gives each visitor one id."""

from __future__ import annotations

import io
import json
import os

import pytest
from configcatclient.user import User
from django.core.management import call_command
from django.test import Client

import configcat_segment
from configcat_segment.models import Event
from project.settings import CONFIGCAT_SEGMENT as DEMO_SETTINGS

from .conftest import tracks

pytestmark = pytest.mark.django_db

PROJECT_FLAGS = os.path.join(os.path.dirname(__file__), "..", "..", "project", "flags.json")


def random_ids_counted() -> int:
    out = io.StringIO()
    call_command("configcat_segment_status", stdout=out)
    count: int = json.loads(out.getvalue())["evaluations"]["random_anonymous_ids"]
    return count


@pytest.mark.urls("tests.evaluations.urls")
def test_a_request_without_cookie_or_session_counts_one_random_id(segment_connection):
    for _ in range(3):  # three visits by a browser that keeps no cookie: three tracked users
        Client().get("/flags/?keys=isPremium,maxItems,discountRate")
    configcat_segment.flush()
    assert len({t["anonymousId"] for t in tracks()}) == 3
    assert len(tracks()) == 9
    assert random_ids_counted() == 3


@pytest.mark.urls("tests.evaluations.urls")
def test_a_cookie_or_a_signed_in_user_counts_nothing(segment_connection, superuser):
    Client(headers={"cookie": "ajs_anonymous_id=from-analytics-js"}).get("/flags/")
    signed_in = Client()
    signed_in.force_login(superuser)
    signed_in.get("/flags/")
    configcat_segment.flush()
    assert len(tracks()) == 2
    assert random_ids_counted() == 0


def test_outside_requests_each_evaluation_without_a_user_is_a_random_id(make_connection):
    make_connection(name="One")
    make_connection(name="Two")
    client = configcat_segment.get_client()
    client.get_value("isPremium", False)
    client.get_value("maxItems", 0)
    client.get_value("isPremium", False, User("u1"))
    configcat_segment.flush()
    # Two evaluations, each to two Segment sources: four tracked users.
    assert random_ids_counted() == 4
    anonymous = Event.objects.filter(type="track").exclude(user_id="u1")
    assert len({e.payload["anonymousId"] for e in anonymous}) == 4


@pytest.mark.urls("tests.evaluations.urls")
def test_a_random_id_not_sent_to_any_connection_is_not_counted(make_connection, configure):
    make_connection(flag_denylist="*")
    Client().get("/flags/")
    configure(FLAG_DENYLIST=["*"])
    Client().get("/flags/")
    configcat_segment.flush()
    assert Event.objects.count() == 0
    assert random_ids_counted() == 0


def test_the_event_log_shows_the_count(segment_connection, staff_client):
    client = configcat_segment.get_client()
    client.get_value("isPremium", False)
    client.get_value("maxItems", 0)
    configcat_segment.flush()
    page = staff_client.get("/configcat-segment/events/").content.decode()
    assert '<strong data-field="random_anonymous_ids">2</strong>' in page
    assert "each a tracked user" in page


def test_the_demo_gives_each_visitor_one_anonymous_id(segment_connection, configure):
    assert DEMO_SETTINGS["SET_ANONYMOUS_ID_COOKIE"] is True
    configure(FLAG_OVERRIDES=PROJECT_FLAGS, SET_ANONYMOUS_ID_COOKIE=True)
    visitor = Client()
    first = visitor.get("/")
    cookie = first.cookies["ajs_anonymous_id"]
    assert cookie["path"] == "/"
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 365 * 24 * 3600
    assert not cookie["httponly"]
    for _ in range(3):  # reloads: the same id, nothing new to send
        assert "ajs_anonymous_id" not in visitor.get("/").cookies
    configcat_segment.flush()
    with open(PROJECT_FLAGS) as file:
        flags = json.load(file)["flags"]
    assert len(tracks()) == len(flags)
    assert {t["anonymousId"] for t in tracks()} == {cookie.value}
    assert random_ids_counted() == 1  # the visitor's first request drew it
