"""``configcat-segment/health/``: 200 when every connected connection delivers in time."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configcat_segment.operations import health

from ..conftest import WRITE_KEY
from .conftest import TOKEN, bearer

pytestmark = pytest.mark.django_db

URL = "/configcat-segment/health/"


def get(client=None, **headers):
    return (client or Client()).get(URL, **headers)


def test_healthy_connections_answer_200(monitoring, make_connection, add_event):
    production = make_connection(name="Production", write_key=WRITE_KEY)
    make_connection(name="Staging")
    add_event(production, "delivered", age=3600, delivered_after=1)
    add_event(production, "pending", age=5)  # waiting, but not for long
    response = get(**bearer())
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    assert data["status"] == "ok"
    assert data["max_lag_seconds"] == 300
    assert [(c["name"], c["status"], c["problems"]) for c in data["connections"]] == [
        ("Production", "ok", []),
        ("Staging", "ok", []),
    ]
    assert 5 <= data["connections"][0]["oldest_waiting_seconds"] < 60
    assert data["connections"][1]["oldest_waiting_seconds"] == 0
    assert WRITE_KEY not in response.content.decode()
    assert WRITE_KEY[-4:] not in response.content.decode()  # not even the redacted hint


def test_an_unhealthy_connection_answers_503_naming_it(monitoring, make_connection):
    make_connection(name="Production")
    staging = make_connection(name="Staging")
    staging.mark_unhealthy("Segment answered 401 unauthorized: Invalid write key")
    response = get(**bearer())
    assert response.status_code == 503
    data = response.json()
    assert data["status"] == "unhealthy"
    by_name = {c["name"]: c for c in data["connections"]}
    assert by_name["Production"]["status"] == "ok"
    assert by_name["Staging"]["status"] == "unhealthy"
    assert by_name["Staging"]["healthy"] is False
    assert by_name["Staging"]["id"] == str(staging.pk)
    [problem] = by_name["Staging"]["problems"]
    assert problem["code"] == "unhealthy"
    assert "refused its write key or endpoint since" in problem["message"]
    # Fixed-form reasons: Segment's answer (free text from outside) stays in the event log.
    assert "Invalid write key" not in response.content.decode()


def test_a_lagging_connection_answers_503_with_how_long(monitoring, make_connection, add_event):
    production = make_connection(name="Production")
    add_event(production, "delivered", age=7200, delivered_after=2)
    add_event(production, "pending", age=900)  # nothing delivers it
    add_event(production, "pending", age=10)
    response = get(**bearer())
    assert response.status_code == 503
    [entry] = response.json()["connections"]
    assert entry["status"] == "lagging"
    assert 900 <= entry["oldest_waiting_seconds"] < 1000
    [problem] = entry["problems"]
    assert problem["code"] == "lagging"
    assert "more than 300 s" in problem["message"]
    assert "is anything delivering" in problem["message"]


def test_retrying_events_count_as_lag_and_the_pause_is_named(
    monitoring, make_connection, add_event
):
    production = make_connection(name="Production")
    # Segment is down: the events wait for their retry, the connection is paused.
    add_event(
        production,
        "failed",
        age=1200,
        next_attempt_at=timezone.now() + dt.timedelta(minutes=5),
        last_error="Segment answered 503",
    )
    production.delivery_paused_until = timezone.now() + dt.timedelta(minutes=5)
    production.save()
    response = get(**bearer())
    assert response.status_code == 503
    [entry] = response.json()["connections"]
    assert entry["delivery_paused_until"] is not None
    assert "delivery is paused until" in entry["problems"][0]["message"]


def test_the_threshold_is_a_setting(monitoring, make_connection, add_event):
    add_event(make_connection(), "pending", age=900)
    assert get(**bearer()).status_code == 503
    monitoring(HEALTH_MAX_LAG_SECONDS=3600)
    assert get(**bearer()).status_code == 200


def test_disconnected_connections_are_left_out(monitoring, make_connection, add_event):
    old = make_connection(name="Old", connected=False)
    add_event(old, "pending", age=86400)
    old.mark_unhealthy("refused")
    response = get(**bearer())
    assert response.status_code == 200
    assert response.json()["connections"] == []


def test_a_requeued_event_waits_from_its_requeue(monitoring, make_connection, add_event):
    production = make_connection()
    add_event(production, "pending", age=86400, queued_at=timezone.now() - dt.timedelta(seconds=3))
    assert get(**bearer()).status_code == 200


# -- access --------------------------------------------------------------------------------


def test_without_a_session_or_token_it_answers_401(monitoring, make_connection):
    make_connection()
    response = get()
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="configcat_segment"'
    assert "connections" not in response.json()
    assert get(**bearer("wrong-" + TOKEN)).status_code == 401
    assert get(HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_the_token_also_works_in_the_query_string(monitoring):
    assert Client().get(URL, {"token": TOKEN}).status_code == 200
    assert Client().get(URL, {"token": TOKEN[:-1]}).status_code == 401


def test_without_a_token_setting_no_token_is_accepted(delivery_settings):
    delivery_settings(MONITORING_TOKEN=None)
    assert get(**bearer()).status_code == 401
    assert get(HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_staff_need_the_view_connection_permission(make_connection):
    make_connection()
    user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert get(client).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_segmentconnection"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    assert get(client).status_code == 200
    user.is_staff = False
    user.save()
    assert get(client).status_code == 401


def test_a_superuser_session_is_enough(staff_client, make_connection):
    make_connection()
    assert get(staff_client).status_code == 200


def test_only_get_and_head(monitoring):
    assert Client().head(URL, **bearer()).status_code == 200
    assert Client().post(URL, **bearer()).status_code == 405


# -- cost ----------------------------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 6])
def test_one_query_whatever_the_number_of_connections_and_events(
    monitoring, make_connection, add_event, connections
):
    for n in range(connections):
        connection = make_connection()
        for status in ("pending", "failed", "delivered", "dead", "pending"):
            add_event(connection, status, age=n)
    with CaptureQueriesContext(db_connection) as queries:
        report = health.report()
    assert len(queries) == 1
    assert len(report.connections) == connections
    # And the endpoint, with the token, runs that query only.
    with CaptureQueriesContext(db_connection) as queries:
        assert get(**bearer()).status_code == 200
    assert len(queries) == 1


def test_problems_is_pure_and_names_both_problems():
    now = timezone.now()
    state = health.ConnectionState(
        id=uuid.uuid4(),
        name="Production",
        connected=True,
        unhealthy_since=now - dt.timedelta(hours=1),
        paused_until=None,
        waiting_since=now - dt.timedelta(seconds=301),
    )
    assert [p.code for p in health.problems(state, now, 300)] == ["unhealthy", "lagging"]
    assert [p.code for p in health.problems(state, now, 302)] == ["unhealthy"]
