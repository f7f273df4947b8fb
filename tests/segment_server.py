"""A Segment-compatible Tracking API on loopback, for tests and benchmarks.

It speaks ``POST /v1/batch`` as Segment documents it and enforces what Segment enforces:
HTTP Basic auth with a known write key (401 otherwise), gzip bodies, at most 500,000
bytes per request, 2,500 messages per batch and 32 KB per message, and a ``userId`` or
``anonymousId`` and a ``messageId`` of at most 100 characters on every message (400
otherwise, with a JSON ``{"code", "message"}`` answer like Segment's). It records every
messageId it accepts, duplicates included, and can inject faults:

- :meth:`SegmentServer.fail`: answer the next requests with a status (503, 429 with
  ``Retry-After``, ...); :meth:`fail_while`: while a predicate holds (e.g. a fake clock
  inside an outage);
- :meth:`poison`: 400 for any request carrying a given messageId;
- :meth:`hold`: keep requests waiting until released (a slow Segment), telling the test
  when one has arrived, so nothing depends on timing;
- :func:`refused_url`: a URL on which nothing listens (connection refused).

Usage::

    with SegmentServer(write_keys={"KEY"}) as server:
        ...  # send to server.url
        assert server.accepted_ids == [...]
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUEST_BYTES = 500_000
MAX_MESSAGES = 2500
MAX_MESSAGE_BYTES = 32 * 1024
MAX_MESSAGE_ID = 100
HOLD_SAFETY_SECONDS = 60  # a held request never outlives a forgotten release() by more


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Received:
    """One request as the server saw it."""

    status: int
    write_key: str | None
    gzip: bool
    body_bytes: int  # uncompressed JSON
    message_ids: list[str]
    sent_at: str | None
    headers: dict[str, str]


@dataclass
class Fault:
    status: int
    times: int | None = None  # None: while ``active`` says so
    active: Callable[[], bool] | None = None
    retry_after: str | None = None
    body: dict[str, Any] = field(default_factory=dict)

    def applies(self) -> bool:
        if self.active is not None:
            return self.active()
        return bool(self.times)


class Gate:
    """Requests wait at the gate until it is released; ``arrived`` is set by the first."""

    def __init__(self, write_key: str | None, times: int | None) -> None:
        self.write_key = write_key
        self.times = times  # None: every request until released
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.held = 0

    def release(self) -> None:
        self.released.set()


class SegmentServer:
    def __init__(self, write_keys: Iterable[str] = ()) -> None:
        self.write_keys = set(write_keys)
        self.requests: list[Received] = []
        self.accepted_ids: list[str] = []
        self.accepted_messages: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._poisoned: dict[str, str] = {}
        self._gates: list[Gate] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SegmentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for gate in list(self._gates):
            gate.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def __enter__(self) -> SegmentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------

    def fail(self, status: int = 503, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status``."""
        with self._lock:
            self._faults.append(Fault(status, times=times, retry_after=retry_after))

    def fail_while(
        self, active: Callable[[], bool], status: int = 503, *, retry_after: str | None = None
    ) -> None:
        """Answer with ``status`` whenever ``active()`` is true."""
        with self._lock:
            self._faults.append(Fault(status, active=active, retry_after=retry_after))

    def poison(self, message_id: str, message: str = "Invalid message") -> None:
        """Refuse (400) any request that carries ``message_id``."""
        with self._lock:
            self._poisoned[message_id] = message

    def hold(self, *, write_key: str | None = None, times: int | None = 1) -> Gate:
        """Make requests (of ``write_key``, or any) wait until ``gate.release()``."""
        gate = Gate(write_key, times)
        with self._lock:
            self._gates.append(gate)
        return gate

    # -- what was received ---------------------------------------------------------------

    def duplicates(self) -> dict[str, int]:
        return {mid: n for mid, n in Counter(self.accepted_ids).items() if n > 1}

    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    # -- handling ------------------------------------------------------------------------

    def _gate_for(self, write_key: str | None) -> Gate | None:
        with self._lock:
            for gate in self._gates:
                if gate.released.is_set() or gate.times == 0:
                    continue
                if gate.write_key is None or gate.write_key == write_key:
                    if gate.times is not None:
                        gate.times -= 1
                    return gate
        return None

    def _fault(self) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.applies():
                    if fault.times:
                        fault.times -= 1
                    return fault
        return None

    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, JSON answer and extra headers for one request."""
        write_key = _basic_auth_user(headers.get("authorization", ""))
        gate = self._gate_for(write_key)
        if gate is not None:
            gate.held += 1
            gate.arrived.set()
            gate.released.wait(HOLD_SAFETY_SECONDS)
        fault = self._fault()
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            answer = fault.body or {"code": "unavailable", "message": "Injected fault"}
            self._record(fault.status, write_key, headers, raw, None)
            return fault.status, answer, extra
        try:
            body = self._validate(path, headers, write_key, raw)
        except Refusal as refusal:
            self._record(refusal.status, write_key, headers, raw, None)
            return refusal.status, {"code": refusal.code, "message": refusal.message}, {}
        self._record(200, write_key, headers, raw, body)
        return 200, {"success": True}, {}

    def _validate(
        self, path: str, headers: dict[str, str], write_key: str | None, raw: bytes
    ) -> dict[str, Any]:
        if path != "/v1/batch":
            raise Refusal(404, "not_found", f"No such endpoint: {path}")
        if write_key is None or write_key not in self.write_keys:
            raise Refusal(401, "unauthorized", "Invalid write key")
        data = _decompress(headers, raw)
        if len(data) > MAX_REQUEST_BYTES:
            raise Refusal(400, "request_too_large", f"Request is {len(data)} bytes")
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise Refusal(400, "invalid_json", str(exc)) from exc
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, list) or not batch:
            raise Refusal(400, "invalid_request", "batch must be a non-empty list")
        if len(batch) > MAX_MESSAGES:
            raise Refusal(400, "too_many_messages", f"{len(batch)} messages in one batch")
        for message in batch:
            _validate_message(message)
            if message["messageId"] in self._poisoned:
                raise Refusal(400, "invalid_request", self._poisoned[message["messageId"]])
        return body

    def _record(
        self,
        status: int,
        write_key: str | None,
        headers: dict[str, str],
        raw: bytes,
        body: dict[str, Any] | None,
    ) -> None:
        batch = body["batch"] if body else []
        try:
            size = len(_decompress(headers, raw))
        except Refusal:
            size = -1
        received = Received(
            status=status,
            write_key=write_key,
            gzip=headers.get("content-encoding") == "gzip",
            body_bytes=size,
            message_ids=[m["messageId"] for m in batch],
            sent_at=body.get("sentAt") if body else None,
            headers=headers,
        )
        with self._lock:
            self.requests.append(received)
            self.accepted_ids += received.message_ids
            self.accepted_messages += batch


def _validate_message(message: Any) -> None:
    if not isinstance(message, dict):
        raise Refusal(400, "invalid_request", "every message must be an object")
    size = len(json.dumps(message).encode())
    if size > MAX_MESSAGE_BYTES:
        raise Refusal(400, "message_too_large", f"A message is {size} bytes")
    if not message.get("userId") and not message.get("anonymousId"):
        raise Refusal(400, "no_user_anon_id", "userId or anonymousId is required")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
        raise Refusal(400, "invalid_message_id", "messageId must be 1 to 100 characters")


def _basic_auth_user(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, _password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user


def _decompress(headers: dict[str, str], raw: bytes) -> bytes:
    if headers.get("content-encoding") != "gzip":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise Refusal(400, "invalid_gzip", str(exc)) from exc


def _handler(server: SegmentServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle's algorithm on, the body waits
        # for the client's delayed ACK, 40 ms per request on Linux.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer, extra = server.handle(self.path, headers, raw)
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client went away (killed while we held its request)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def refused_url() -> str:
    """A loopback URL where nothing listens: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
