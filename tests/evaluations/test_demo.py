"""The demo: the home page evaluates every flag, the local receiver, the seeded connection."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from segment.analytics.request import APIError, post

import configcat_segment
from configcat_segment.compat import close_segment_connections
from configcat_segment.models import SegmentConnection
from project.demo.models import ReceivedMessage

from .conftest import tracks

pytestmark = pytest.mark.django_db

PROJECT_FLAGS = os.path.join(os.path.dirname(__file__), "..", "..", "project", "flags.json")
WRITE_KEY = "demo-write-key-SECRET-1234"


@pytest.fixture
def demo_flags(configure):
    configure(FLAG_OVERRIDES=PROJECT_FLAGS)


def auth(key: str = WRITE_KEY) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def message(n: int = 1, **fields):
    return {
        "type": "track",
        "event": "Feature Flag Evaluated",
        "userId": f"u{n}",
        "messageId": f"m{n}",
        "properties": {"feature_flag_key": "darkMode"},
        **fields,
    }


def test_home_evaluates_every_flag_of_the_flags_file(demo_flags, segment_connection):
    with open(PROJECT_FLAGS) as file:
        flags = json.load(file)["flags"]
    response = Client().get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for key in flags:
        assert f"<code>{key}</code>" in page
    assert "<code>Welcome to the configcat_segment demo</code>" in page
    assert 'href="/configcat-segment/events/"' in page
    assert 'href="/admin/"' in page
    configcat_segment.flush()
    assert sorted(t["properties"]["feature_flag_key"] for t in tracks()) == sorted(flags)


def test_home_for_a_signed_in_user(demo_flags, segment_connection, superuser):
    client = Client()
    client.force_login(superuser)
    assert f"<code>{superuser.pk}</code>" in client.get("/").content.decode()
    configcat_segment.flush()
    assert {t["userId"] for t in tracks()} == {str(superuser.pk)}


def test_home_explains_a_broken_configuration_instead_of_failing(configure, tmp_path):
    configure(FLAG_OVERRIDES=str(tmp_path / "missing.json"))
    response = Client().get("/")
    assert response.status_code == 200
    assert "names a flags file that does not exist" in response.content.decode()


def test_the_receiver_stores_a_batch():
    response = Client().post(
        "/debugger/v1/batch",
        json.dumps({"batch": [message(1), message(2, type="identify", event=None)]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    newest, oldest = ReceivedMessage.objects.all()
    assert (oldest.type, oldest.event, oldest.user_id) == ("track", "Feature Flag Evaluated", "u1")
    assert newest.type == "identify"
    assert oldest.source == "…1234"
    assert oldest.payload == message(1)


def test_the_receiver_takes_gzip_and_the_write_key_in_the_body():
    body = gzip.compress(json.dumps({"batch": [message()], "writeKey": WRITE_KEY}).encode())
    response = Client().post(
        "/debugger/v1/batch", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 200
    assert ReceivedMessage.objects.get().source == "…1234"


@pytest.mark.parametrize(
    ("body", "headers", "status", "text"),
    [
        (b"{not json", {"HTTP_AUTHORIZATION": auth()}, 400, "not valid JSON"),
        (b"[]", {"HTTP_AUTHORIZATION": auth()}, 400, "JSON object"),
        (json.dumps({"batch": [message()]}).encode(), {}, 401, "No write key"),
        (b'{"batch": {}}', {"HTTP_AUTHORIZATION": auth()}, 400, '"batch" must be a list'),
        (b'{"batch": [1]}', {"HTTP_AUTHORIZATION": auth()}, 400, "Message 0 is not"),
        (
            json.dumps({"batch": [message(), message(userId=None)]}).encode(),
            {"HTTP_AUTHORIZATION": auth()},
            400,
            "Message 1 has neither userId nor anonymousId",
        ),
        (b"x", {"HTTP_AUTHORIZATION": "Basic !!!"}, 401, "not valid Basic auth"),
        (b"x" * 600_000, {"HTTP_AUTHORIZATION": auth()}, 413, "larger than 500 KB"),
        (b"not gzip", {"HTTP_AUTHORIZATION": auth(), "HTTP_CONTENT_ENCODING": "gzip"}, 400, "gzip"),
    ],
)
def test_the_receiver_refuses_bad_batches_precisely(body, headers, status, text):
    response = Client().post("/debugger/v1/batch", body, content_type="application/json", **headers)
    assert response.status_code == status
    assert response.json()["success"] is False
    assert text in response.json()["message"]
    assert not ReceivedMessage.objects.exists()


def test_a_gzip_bomb_is_refused():
    body = gzip.compress(b'{"batch": [' + b" " * 2_000_000 + b"]}")
    response = Client().post(
        "/debugger/v1/batch",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 413


def test_the_receiver_only_takes_post():
    assert Client().get("/debugger/v1/batch").status_code == 405


def test_the_debugger_lists_newest_first_for_staff_without_write_keys(staff_client):
    for n in (1, 2, 3):
        Client().post(
            "/debugger/v1/batch",
            json.dumps({"batch": [message(n, event=f"Event {n}")]}),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(),
        )
    page = staff_client.get("/debugger/").content.decode()
    assert page.index("Event 3") < page.index("Event 2") < page.index("Event 1")
    assert WRITE_KEY not in page
    assert "…1234" in page
    assert Client().get("/debugger/").status_code == 302, "staff only: it shows user data"


@pytest.mark.django_db(transaction=True)
def test_segment_analytics_python_can_post_to_the_receiver(live_server):
    """The receiver speaks Segment's protocol: Segment's own Python library posts to it."""
    host = f"{live_server.url}/debugger"
    try:
        response = post(WRITE_KEY, host=host, gzip=True, batch=[message(1), message(2)])
        assert response.status_code == 200
        assert ReceivedMessage.objects.count() == 2
        with pytest.raises(APIError) as refused:
            post(WRITE_KEY, host=host, batch=[{"type": "track"}])
    finally:
        # Its keep-alive connection would hold a server thread, and its database session.
        close_segment_connections()
    assert refused.value.status == 400
    assert "neither userId nor anonymousId" in refused.value.message


def test_demo_seed_creates_the_local_debugger_connection_once(monkeypatch):
    monkeypatch.delenv("DEMO_DEBUGGER_URL", raising=False)
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "pw-demo-123")
    out = io.StringIO()
    call_command("demo_seed", stdout=out)
    connection = SegmentConnection.objects.get(name="Local debugger")
    assert connection.endpoint == "http://127.0.0.1:8000/debugger"
    assert connection.connected
    assert connection.forward_evaluations
    assert connection.forward_changes
    assert connection.signing_key.startswith("configcat_whsk_")  # the sample webhook signs
    call_command("demo_seed", stdout=io.StringIO())
    assert SegmentConnection.objects.filter(name="Local debugger").count() == 1
    assert SegmentConnection.objects.get(name="Local debugger").signing_key == (
        connection.signing_key
    )

    monkeypatch.setenv("DEMO_DEBUGGER_URL", "http://127.0.0.1:9000/debugger/")
    call_command("demo_seed", stdout=io.StringIO())
    connection.refresh_from_db()
    assert connection.endpoint == "http://127.0.0.1:9000/debugger"

    monkeypatch.setenv("DEMO_DEBUGGER_URL", "ftp://nope")
    with pytest.raises(CommandError, match=r"DEMO_DEBUGGER_URL: .*http"):
        call_command("demo_seed", stdout=io.StringIO())
