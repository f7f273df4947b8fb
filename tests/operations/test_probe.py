""" "Send test event": through the real transport to the local Segment, recorded, explained."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connections
from django.utils import timezone

from configcat_segment.conf import get_settings
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event, EventClaim
from configcat_segment.operations import probe
from configcat_segment.operations.advice import ERROR, SUCCESS, WARNING, advise
from configcat_segment.segment import transport

from ..conftest import IN_CI, WRITE_KEY, CsrfClient
from ..delivery.conftest import SAFETY_SECONDS
from ..segment_server import refused_url

pytestmark = pytest.mark.django_db


def test_a_successful_test_sends_an_identify_and_a_track_in_one_request(segment_server, connect_to):
    connection = connect_to(segment_server, name="Production", write_key=WRITE_KEY)
    result = probe.send_test_events(connection)
    assert result.ok
    assert (result.status, result.body) == (200, '{"success": true}')
    assert result.seconds >= 0
    [request] = segment_server.requests
    assert request.write_key == WRITE_KEY
    assert request.gzip  # the same transport, with the same settings as delivery
    identify, track = segment_server.accepted_messages
    assert identify["type"] == "identify"
    assert identify["userId"] == track["userId"] == probe.TEST_USER_ID
    assert identify["traits"]["configcat_segment_test"] is True
    assert track["event"] == "ConfigCat Segment Test"
    assert track["properties"]["test"] is True
    assert track["context"]["integration"] == {"name": "configcat", "version": "1.0.0"}
    # Recorded in the event log as such.
    events = list(Event.objects.order_by("pk"))
    assert [(e.type, e.event_name, e.user_id, e.status) for e in events] == [
        ("identify", "", probe.TEST_USER_ID, "delivered"),
        ("track", "ConfigCat Segment Test", probe.TEST_USER_ID, "delivered"),
    ]
    assert [e.message_id for e in events] == request.message_ids
    assert all(e.delivered_at is not None and e.attempts == 1 for e in events)
    assert result.events == events


def test_a_refused_write_key_is_recorded_dead_and_explained(segment_server, connect_to):
    connection = connect_to(segment_server, accepted=False)
    result = probe.send_test_events(connection)
    assert result.status == 401
    assert "Invalid write key" in result.body
    assert result.advice.level == ERROR
    assert "write key was refused" in result.advice.headline
    assert "Settings → API Keys" in result.advice.details[0]
    for event in Event.objects.all():
        assert event.status == "dead"
        assert event.last_error == (
            "Test event, not retried. Segment answered 401 unauthorized: Invalid write key"
        )
    connection.refresh_from_db()
    assert connection.is_healthy  # a test is not delivery: the health is the dispatcher's
    assert connection.delivery_paused_until is None


def test_a_timeout_is_explained(segment_server, connect_to, delivery_settings):
    delivery_settings(HTTP_TIMEOUT_SECONDS=0.3)
    connection = connect_to(segment_server)
    gate = segment_server.hold()
    try:
        result = probe.send_test_events(connection)
    finally:
        gate.release()
    assert result.status is None
    assert result.body == ""
    assert "timed out" in result.error
    assert result.advice.headline.startswith("No answer from 127.0.0.1:")
    assert "within 0.3 s (HTTP_TIMEOUT_SECONDS)" in result.advice.headline
    assert {e.status for e in result.events} == {"dead"}


def test_connection_refused_is_explained(make_connection):
    url = refused_url()
    connection = make_connection(region="custom", custom_endpoint=url)
    result = probe.send_test_events(connection)
    assert result.status is None
    assert result.advice.headline == f"{url.removeprefix('http://')} refused the connection."


@pytest.mark.django_db(transaction=True)
def test_no_dispatcher_sends_the_test_events_while_they_are_sent(segment_server, connect_to):
    connection = connect_to(segment_server)
    gate = segment_server.hold()
    results = []

    def test_send():
        try:
            results.append(probe.send_test_events(connection))
        finally:
            connections.close_all()

    thread = threading.Thread(target=test_send)
    thread.start()
    try:
        assert gate.arrived.wait(SAFETY_SECONDS)
        assert Event.objects.filter(status="pending").count() == 2  # written first
        dispatcher = Dispatcher()
        assert dispatcher.due_connections() == []
        assert dispatcher.deliver(connection.pk).claimed == 0
    finally:
        gate.release()
        thread.join(SAFETY_SECONDS)
    assert results[0].ok
    assert len(segment_server.requests) == 1
    assert set(Event.objects.values_list("status", flat=True)) == {"delivered"}


def test_test_events_a_dispatcher_claimed_meanwhile_are_left_to_it(segment_server, connect_to):
    """Only if the request outlasts LEASE_SECONDS (its timeout is far shorter): a dispatcher
    may then claim and send the test events, and its outcome is the one recorded."""
    connection = connect_to(segment_server)

    def send_while_a_dispatcher_claims(messages, **kwargs):
        answer = transport.send(messages, **kwargs)
        # The lease ran out meanwhile: a dispatcher claims them (and will settle them).
        later = timezone.now() + dt.timedelta(seconds=get_settings().LEASE_SECONDS + 1)
        for event in Event.objects.all():
            EventClaim.objects.create(
                event=event, lease_until=later + dt.timedelta(seconds=60), claims=1
            )
        return answer

    result = probe.send_test_events(connection, send=send_while_a_dispatcher_claims)
    assert result.ok
    assert set(Event.objects.values_list("status", flat=True)) == {"pending"}  # not settled
    assert EventClaim.objects.count() == 2


# -- the words ----------------------------------------------------------------------------


def explain(status, error="", region="us", endpoint="https://api.segment.io"):
    return advise(
        status, error, region=region, endpoint=endpoint, timeout=15, event=probe.TEST_EVENT
    )


def test_success_points_at_the_debugger_and_the_region_trap():
    us = explain(200)
    assert us.level == SUCCESS
    assert "Connections → Sources → your source → Debugger" in us.details[0]
    assert "“ConfigCat Segment Test”" in us.details[0]
    assert "an EU workspace's write key sent to the US endpoint is accepted" in us.details[1]
    assert "Switch this connection's region to EU" in us.details[1]
    eu = explain(200, region="eu", endpoint="https://events.eu1.segmentapis.com")
    assert "Switch this connection's region to US" in eu.details[1]
    custom = explain(200, region="custom", endpoint="https://proxy.example.com")
    assert "custom endpoint accepted" in custom.details[0]


@pytest.mark.parametrize(
    ("status", "error", "level", "words"),
    [
        (403, "", ERROR, "write key was refused"),
        (301, "", ERROR, "redirects"),
        (404, "", ERROR, "no Tracking API"),
        (429, "", WARNING, "rate limiting"),
        (503, "", WARNING, "unavailable"),
        (400, "", ERROR, "refused (400)"),
        (None, "No answer from x: HTTPSConnectionPool: Read timed out.", ERROR, "within 15 s"),
        (
            None,
            "No answer: (Caused by SSLError(SSLCertVerificationError(1, "
            "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed')))",
            ERROR,
            "TLS connection",
        ),
        (
            None,
            "No answer: NameResolutionError: Failed to resolve 'api.segment.oi'",
            ERROR,
            "could not be resolved",
        ),
        (None, "[Errno 111] Connection refused", ERROR, "refused the connection"),
        (None, "Connection reset by peer", ERROR, "No answer from"),
    ],
)
def test_failures_in_words(status, error, level, words):
    advice = explain(status, error)
    assert advice.level == level
    assert words in advice.headline


def test_the_transport_returns_the_body_without_the_write_key(segment_server):
    key = "wk_echo_0123456789abcdefSECRET"
    segment_server.fail(500)
    segment_server._faults[-1].body = {"code": "oops", "message": f"bad key {key}"}
    answer = transport.send(
        [{"type": "track", "event": "x", "userId": "a", "messageId": "m1"}],
        endpoint=segment_server.url,
        write_key=key,
        sent_at="2025-01-01T00:00:00.000Z",
        gzip=False,
        timeout=5,
    )
    assert answer.status == 500
    assert "bad key" in answer.body
    assert key not in answer.body
    assert key not in answer.error


# -- the admin ----------------------------------------------------------------------------


def test_the_button_sends_logs_and_shows_the_answer(segment_server, connect_to, staff_client):
    connection = connect_to(segment_server, name="Production", write_key=WRITE_KEY)
    page = staff_client.get(f"/admin/configcat_segment/segmentconnection/{connection.pk}/change/")
    assert "Send test event" in page.content.decode()
    url = f"/admin/configcat_segment/segmentconnection/{connection.pk}/test/"
    response = staff_client.post_form(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Accepted: 127.0.0.1" in html
    assert "{&quot;success&quot;: true}" in html
    assert "ms</td>" in html
    for event in Event.objects.all():
        assert f'href="/configcat-segment/events/{event.pk}/"' in html
    assert WRITE_KEY not in html
    entry = LogEntry.objects.get()
    assert entry.action_flag == CHANGE
    assert entry.object_id == str(connection.pk)
    assert entry.get_change_message().startswith("Sent test events: 200 in ")


def test_the_button_needs_post_and_the_change_permission(segment_server, connect_to):
    connection = connect_to(segment_server)
    url = f"/admin/configcat_segment/segmentconnection/{connection.pk}/test/"
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_segmentconnection"))
    client = CsrfClient()
    client.force_login(viewer)
    assert client.get(url).status_code == 405
    assert client.post_form(url).status_code == 403
    assert (
        "Send test event"
        not in client.get(
            f"/admin/configcat_segment/segmentconnection/{connection.pk}/change/"
        ).content.decode()
    )
    assert segment_server.requests == []
    assert not Event.objects.exists()
    bad = "/admin/configcat_segment/segmentconnection/not-a-uuid/test/"
    assert client.post_form(bad).status_code == 404


def test_the_list_action_tests_each_selected_connection(segment_server, connect_to, staff_client):
    good = connect_to(segment_server, name="Good")
    bad = connect_to(segment_server, name="Bad", accepted=False)
    response = staff_client.post_form(
        "/admin/configcat_segment/segmentconnection/",
        {"action": "send_test_events", "_selected_action": [str(good.pk), str(bad.pk)]},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Test of 2 connections" in html
    assert html.index(">Bad</h2>") < html.index(">Good</h2>")
    assert "The write key was refused (401)." in html
    assert "Accepted: 127.0.0.1" in html
    assert LogEntry.objects.count() == 2
    assert len(segment_server.requests) == 2


def test_the_list_action_tests_at_most_ten_at_once(segment_server, connect_to, staff_client):
    selected = [str(connect_to(segment_server).pk) for _ in range(11)]
    response = staff_client.post_form(
        "/admin/configcat_segment/segmentconnection/",
        {"action": "send_test_events", "_selected_action": selected},
        follow=True,
    )
    assert "Select at most 10 connections" in response.content.decode()
    assert segment_server.requests == []


# -- TLS: a real HTTPS endpoint whose certificate this server does not trust ---------------


@pytest.fixture
def untrusted_https_url(tmp_path):
    """An HTTPS server on loopback with a self-signed certificate."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("openssl is needed to make a test certificate")
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
        check=True,
        capture_output=True,
        timeout=SAFETY_SECONDS,
    )

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the client hangs up during the handshake: that is the point

    server = QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(SAFETY_SECONDS)


def test_an_untrusted_certificate_is_explained(make_connection, untrusted_https_url):
    connection = make_connection(region="custom", custom_endpoint=untrusted_https_url)
    result = probe.send_test_events(connection)
    assert result.status is None
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert result.advice.headline.startswith("The TLS connection to 127.0.0.1:")
    assert "REQUESTS_CA_BUNDLE" in result.advice.details[0]
