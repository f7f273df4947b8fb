"""The HTTP session our requests to Segment go through: it connects only where the
endpoint policy allows, and never follows a redirect.

segment-analytics-python posts through one module-level ``requests`` session
(:mod:`..compat`). Inside :func:`guarded`, that session is swapped, for the calling thread
only, for ours:

- the endpoint's host is checked as written (:meth:`EndpointPolicy.host_problem`);
- when connecting, its name is resolved once, every address is checked, and the socket
  connects to a checked address, so DNS cannot answer differently between the check and
  the connection (rebinding);
- a redirect is returned as it is, not followed (the dispatcher treats it as a
  misconfigured endpoint), so an allowed endpoint cannot bounce the batch elsewhere;
- through a proxy (``HTTP_PROXY``/``HTTPS_PROXY``), which resolves the name itself, the
  name is resolved here too and refused if an address is not allowed.

A refusal raises :class:`EndpointRefused`. Other users of segment-analytics-python in the
process keep the library's own session, untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from ..compat import replace_segment_session, segment_session
from ..conf import setting_path
from .addresses import EndpointPolicy, host_refusal

ALLOW_HINT = f"Allow it with {setting_path('ALLOWED_ENDPOINT_HOSTS')} if this is intended."


class EndpointRefused(Exception):
    """The endpoint is, or resolves to, an address the policy does not allow."""


_policy: contextvars.ContextVar[EndpointPolicy | None] = contextvars.ContextVar(
    "configcat_segment_endpoint_policy", default=None
)


def _checked_policy() -> EndpointPolicy:
    # Outside guarded() (never, in practice) nothing is allowed but public addresses.
    return _policy.get() or EndpointPolicy()


# -- connecting -----------------------------------------------------------------------------


def _checked_addresses(
    policy: EndpointPolicy, host: str, port: int | None, family: int = socket.AF_UNSPEC
) -> list[str]:
    """Every address ``host`` resolves to, once; :class:`EndpointRefused` if one is not
    allowed. ``socket.gaierror`` when it does not resolve."""
    found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
    for address in addresses:
        try:
            problem = policy.address_problem(ipaddress.ip_address(address))
        except ValueError:
            problem = "not an IP address"
        if problem:
            raise EndpointRefused(f"{host} resolves to {address}, {problem}")
    return addresses


def _connect(conn: HTTPConnection) -> socket.socket:
    """Resolve ``conn``'s host once, check every address, connect to a checked one."""
    policy = _checked_policy()
    host = conn._dns_host
    if policy.host_allowed(host):
        return HTTPConnection._new_conn(conn)
    try:
        addresses = _checked_addresses(policy, host, conn.port, allowed_gai_family())
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    error: OSError | None = None
    for address in addresses:
        try:
            return create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            error = exc
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class _HTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _HTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Any:
        policy = _checked_policy()
        url = urlsplit(request.url or "")
        host = url.hostname or ""
        problem = policy.host_problem(host)
        if problem:
            raise EndpointRefused(host_refusal(host, problem))
        if select_proxy(request.url or "", dict(proxies or {})) and not policy.host_allowed(host):
            # A proxy (HTTP(S)_PROXY) connects for us, to whatever *it* resolves the name
            # to: refuse a name that resolves here to an address that is not allowed. One
            # this machine cannot resolve is left to the proxy (its egress rules decide).
            with contextlib.suppress(socket.gaierror):
                _checked_addresses(policy, host, url.port)
        return super().send(request, stream, timeout, verify, cert, proxies)


class GuardedSession(requests.Session):
    """A session that connects only where the policy allows and follows no redirect."""

    def __init__(self) -> None:
        super().__init__()
        adapter = _GuardedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


# -- the switch ---------------------------------------------------------------------------


class _SessionSwitch:
    """Stands in for segment-analytics-python's session: inside :func:`guarded`, ours
    (``guarded``); outside, the library's own (``library``), as if we were not there.
    ``close()`` (after a fork) closes both."""

    def __init__(self, library: requests.Session) -> None:
        self.library = library
        self.guarded = GuardedSession()

    def __getattr__(self, name: str) -> Any:
        session = self.guarded if _policy.get() is not None else self.library
        return getattr(session, name)

    def close(self) -> None:
        self.library.close()
        self.guarded.close()


_install_lock = threading.Lock()


def _switch() -> _SessionSwitch:
    with _install_lock:
        current = segment_session()
        if not isinstance(current, _SessionSwitch):
            current = _SessionSwitch(current)
            replace_segment_session(current)
        return current


@contextlib.contextmanager
def guarded(policy: EndpointPolicy) -> Iterator[None]:
    """segment-analytics-python's requests, in this block and thread, under ``policy``."""
    _switch()
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def close_checked_connections() -> None:
    """Close the kept-alive connections checked under the endpoint policy: it may have
    changed (:mod:`configcat_segment.lifecycle` calls this when the settings change)."""
    switch = segment_session()
    if isinstance(switch, _SessionSwitch):
        switch.guarded.close()
