"""Through an HTTP proxy, the proxy connects, to what *it* resolves the endpoint's name to:
a name that resolves here to an address the endpoint policy refuses is refused before the
proxy is asked (issue 16, finding 3: no server-side request forgery through a proxy)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from configcat_segment.segment.retry import Verdict

from .delivery.test_endpoint_guard import FAKE_HOST, FakeDNS, PageServer, allowing, send

__all__ = ["fake_dns"]  # a fixture, used by name

UNRESOLVABLE = "only-the-proxy-knows.example"


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == UNRESOLVABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return dns(real, host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[PageServer]:
    """A forward proxy on loopback, set in the environment as requests reads it; it answers
    every request itself, as Segment would, and records the URLs it was asked for."""
    with PageServer(200, b"{}", {"Content-Type": "application/json"}) as server:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(name, server.url)
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1"])
def test_a_name_resolving_to_an_internal_address_is_not_handed_to_the_proxy(
    proxy, fake_dns, address
):
    fake_dns.answers = [[address]]
    with allowing():
        answer = send(f"http://{FAKE_HOST}:8080")
    assert proxy.paths == []
    assert answer.verdict is Verdict.UNHEALTHY
    assert f"{FAKE_HOST} resolves to {address}" in answer.error


def test_a_literal_internal_address_is_not_handed_to_the_proxy(proxy):
    with allowing():
        answer = send("http://0x7f.1:6379")
    assert proxy.paths == []
    assert "0x7f.1 (127.0.0.1) is a loopback address" in answer.error


def test_a_public_endpoint_still_goes_through_the_proxy(proxy, fake_dns):
    fake_dns.answers = [["8.8.8.8"]]
    with allowing():
        answer = send(f"http://{FAKE_HOST}:8080")
    assert answer.status == 200
    assert proxy.paths == [f"http://{FAKE_HOST}:8080/v1/batch"]


def test_an_allowed_name_goes_through_the_proxy_whatever_it_resolves_to(proxy, fake_dns):
    with allowing(FAKE_HOST):
        assert send(f"http://{FAKE_HOST}:8080").status == 200
    assert fake_dns.calls == 0  # not even resolved here
    assert len(proxy.paths) == 1


def test_a_name_only_the_proxy_can_resolve_is_left_to_the_proxy(proxy, fake_dns):
    # Behind a proxy, this machine often has no DNS for the outside: the proxy's own egress
    # rules decide (docs/security.md says so).
    with allowing():
        assert send(f"http://{UNRESOLVABLE}").status == 200
    assert proxy.paths == [f"http://{UNRESOLVABLE}/v1/batch"]
