"""At send time the endpoint's host is resolved and every address checked, the connection
goes to the address that was checked, redirects are not followed, and what comes back is
kept as a short plain-text excerpt (issue 16, finding 3)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from configcat_segment.conf import get_settings
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event
from configcat_segment.segment import transport
from configcat_segment.segment.retry import Verdict
from tests.segment_server import SegmentServer

from .conftest import enqueue, track

KEY = "wk_guard_0123456789SECRET"
FAKE_HOST = "segment-proxy.example"  # resolved by the fake DNS below, never by the internet


def allowing(*entries: str) -> Any:
    return override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "ALLOWED_ENDPOINT_HOSTS": list(entries)}
    )


def send(url: str, **kwargs: Any) -> transport.Answer:
    return transport.send(
        [track(1)],
        endpoint=url,
        write_key=KEY,
        sent_at="2026-01-01T00:00:00.000Z",
        gzip=False,
        timeout=5.0,
        **kwargs,
    )


@pytest.fixture
def server() -> Iterator[SegmentServer]:
    with SegmentServer(write_keys={KEY}) as server:
        yield server


class FakeDNS:
    """``FAKE_HOST`` resolves to the addresses of the next answer (the last one repeats).

    Stands in for DNS, which the tests must not reach; every other name resolves as usual.
    """

    def __init__(self) -> None:
        self.answers: list[list[str]] = [["127.0.0.1"]]
        self.calls = 0

    def __call__(self, real: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != FAKE_HOST:
            return real(host, port, *args, **kwargs)
        addresses = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, int(port)))
            for a in addresses
        ]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS()
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: dns(real, *a, **k))
    return dns


def port_of(server: SegmentServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_loopback_is_refused_at_send_time_without_the_setting(server):
    with allowing():
        answer = send(server.url)
    assert server.requests == []
    assert answer.status is None
    assert answer.verdict is Verdict.UNHEALTHY
    assert answer.error == (
        f"Not sent to {server.url}: 127.0.0.1 is a loopback address. Allow it with "
        'CONFIGCAT_SEGMENT["ALLOWED_ENDPOINT_HOSTS"] if this is intended.'
    )


def test_loopback_is_sent_to_when_the_setting_allows_it(server):
    with allowing("127.0.0.0/8"):
        answer = send(server.url)
    assert answer == transport.Answer(200)
    assert answer.verdict is Verdict.DELIVERED


def test_a_name_is_checked_on_the_address_it_resolves_to(server, fake_dns):
    url = f"http://{FAKE_HOST}:{port_of(server)}"
    with allowing():
        answer = send(url)
    assert server.requests == []
    assert answer.verdict is Verdict.UNHEALTHY
    assert f"{FAKE_HOST} resolves to 127.0.0.1, a loopback address" in answer.error
    with allowing("127.0.0.0/8"):
        assert send(url).status == 200
    [received] = server.requests
    assert received.headers["host"] == f"{FAKE_HOST}:{port_of(server)}"


def test_https_connections_are_checked_the_same_way(server, fake_dns):
    with allowing():
        answer = send(f"https://{FAKE_HOST}:{port_of(server)}")
    assert answer.verdict is Verdict.UNHEALTHY
    assert f"{FAKE_HOST} resolves to 127.0.0.1, a loopback address" in answer.error
    assert server.requests == []


def test_a_name_in_the_allowlist_may_resolve_to_anything(server, fake_dns):
    with allowing(FAKE_HOST):
        assert send(f"http://{FAKE_HOST}:{port_of(server)}").status == 200


def test_a_name_resolving_to_public_and_private_addresses_is_refused(server, fake_dns):
    fake_dns.answers = [["8.8.8.8", "127.0.0.1"]]
    with allowing():
        answer = send(f"http://{FAKE_HOST}:{port_of(server)}")
    assert "resolves to 127.0.0.1" in answer.error
    assert server.requests == []


def test_the_connection_goes_to_the_address_that_was_checked(server, fake_dns):
    # DNS rebinding: the first answer passes the check, a later one would not. Only one
    # resolution happens, and the socket connects to the address it checked.
    fake_dns.answers = [["127.0.0.1"], ["127.0.0.2"]]
    with allowing("127.0.0.1"):
        assert send(f"http://{FAKE_HOST}:{port_of(server)}").status == 200
    assert fake_dns.calls == 1
    # ... and the other way round: an address outside the allowlist first is refused.
    fake_dns.answers = [["127.0.0.2"], ["127.0.0.1"]]
    fake_dns.calls = 0
    with allowing("127.0.0.1"):
        answer = send(f"http://{FAKE_HOST}:{port_of(server)}")
    assert "127.0.0.2" in answer.error
    assert answer.verdict is Verdict.UNHEALTHY


# -- what comes back -------------------------------------------------------------------------


class PageServer:
    """Answers every request with one fixed page; records the paths it was asked for."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.paths.append(self.path)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


INTERNAL_PAGE = (
    b"<html><head><title>Admin</title></head><body>"
    + b"<p>internal-secret-page-content</p>" * 200
    + b"</body></html>"
)


def test_a_page_that_answers_is_never_kept_only_its_status_and_reason():
    with (
        PageServer(500, INTERNAL_PAGE, {"Content-Type": "text/html"}) as page,
        allowing("127.0.0.0/8"),
    ):
        answer = send(page.url)
    assert answer.status == 500
    assert "internal-secret-page-content" not in answer.error
    assert "<" not in answer.error
    assert answer.error == (
        "Segment answered 500 Internal Server Error (not a Segment answer: text/html, "
        f"{len(INTERNAL_PAGE):,} bytes)"
    )


def test_a_segment_style_error_is_kept_short():
    long_message = "x" * 5000
    body = ('{"code": "invalid_request", "message": "' + long_message + '"}').encode()
    with (
        PageServer(400, body, {"Content-Type": "application/json"}) as page,
        allowing("127.0.0.0/8"),
    ):
        answer = send(page.url)
    assert answer.error.startswith("Segment answered 400 invalid_request: xxxx")
    assert len(answer.error) <= transport.MAX_ERROR_CHARS


def test_redirects_are_not_followed():
    with (
        PageServer(200, b"{}") as internal,
        PageServer(307, b"", {"Location": internal.url + "/latest/meta-data/"}) as redirector,
        allowing("127.0.0.0/8"),
    ):
        answer = send(redirector.url)
    assert internal.paths == []
    assert answer.status == 307
    assert answer.verdict is Verdict.UNHEALTHY


# -- in the dispatcher: nothing is lost ------------------------------------------------------


@pytest.mark.django_db
def test_events_of_a_refused_endpoint_wait_with_a_clear_error_and_go_once_allowed(
    segment_server, connect_to, clock
):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    dispatcher = Dispatcher(clock=clock, random=lambda: 0.0)
    with allowing():
        report = dispatcher.deliver(connection.pk)
    assert (report.requests, report.waiting, report.dead) == (1, 3, 0)  # 1: the attempt
    assert segment_server.requests == []
    connection.refresh_from_db()
    assert not connection.is_healthy
    assert "a loopback address" in connection.unhealthy_reason
    for event in Event.objects.all():
        assert (event.status, event.attempts) == ("failed", 0)
        assert event.last_error.startswith(f"Not sent to {segment_server.url}: 127.0.0.1 is")
    clock.move_to(connection.delivery_paused_until)
    report = dispatcher.deliver_due()  # the test settings allow loopback again
    assert report.delivered == 3
    connection.refresh_from_db()
    assert connection.is_healthy
