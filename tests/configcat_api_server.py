"""ConfigCat's Public Management API audit log, on loopback, for tests.

Built from ConfigCat's published reference (the OpenAPI-generated clients'
``AuditLogsApi`` / ``AuditLogItemModel`` / ``AuditLogItemModelPagedList`` and the API's
documentation): ``GET /v1/products/{productId}/auditlogs`` with the optional query
parameters ``configId``, ``environmentId``, ``auditLogType``, ``fromUtcDateTime`` and
``toUtcDateTime``; HTTP Basic auth with a Public API credential (401 without a valid one,
403 for a product the credential may not see, 404 for an unknown product); 400 for
an unreadable date, an unknown ``auditLogType`` or more than 30 days between the two
dates; the last 7 days when neither date is given. Items carry ``auditLogId`` (int64),
``auditLogDateTime`` (UTC, seven fractional digits as .NET writes them),
``auditLogType`` and ``auditLogTypeEnum``, ``changeSetId``, ``truncated``,
``userEmail``, ``userName``, ``where``, ``why``, ``actionTarget`` and ``details``,
newest first. Every answer has ``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset``.

With ``page_size`` it answers as newer versions do: ``{"paging": {...}, "data": [...]}``
(``pageNumber`` / ``pageSize`` ≤ 100). Faults: :meth:`fail` (a status, e.g. 429 with
``Retry-After``), :meth:`rate_limit` (429 after a number of requests), :meth:`cut`
(an answer that stops before its declared length), :meth:`answer_raw` (any body with
200) and :meth:`hold` (a request that waits until released: a timeout, or a slow API).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_DAYS = 30
DEFAULT_DAYS = 7
MAX_PAGE_SIZE = 100
HOLD_SAFETY_SECONDS = 60
TYPES = frozenset(
    {
        "settingCreated",
        "settingChanged",
        "settingDeleted",
        "settingValueChanged",
        "configCreated",
        "configChanged",
        "environmentCreated",
        "segmentChanged",
        "webHookChanged",
    }
)


@dataclass
class Stored:
    product_id: str
    config_id: str
    environment_id: str
    item: dict[str, Any]
    at: dt.datetime


@dataclass
class Request:
    path: str
    params: dict[str, str]
    user: str | None
    status: int = 0


@dataclass
class Fault:
    status: int
    times: int
    retry_after: str | None = None
    raw: bytes | None = None  # with status 200: this body instead of the real answer
    cut: bool = False  # send half the real answer, declared whole, then hang up


@dataclass
class Gate:
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


def dotnet_time(moment: dt.datetime) -> str:
    """UTC with seven fractional digits and a Z, as ConfigCat's .NET API writes it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class ConfigCatAPIServer:
    def __init__(
        self,
        *,
        credentials: dict[tuple[str, str], set[str]],
        now: Callable[[], dt.datetime],
        page_size: int | None = None,
    ) -> None:
        self.credentials = credentials  # (username, password) -> product ids it may read
        self.now = now
        self.page_size = page_size
        self.products: set[str] = set().union(*credentials.values())
        self.stored: list[Stored] = []
        self.requests: list[Request] = []
        self._ids = itertools.count(7_000_000_001)
        self._faults: list[Fault] = []
        self._gates: list[Gate] = []
        self._limit: tuple[int, str] | None = None  # (requests allowed, Retry-After)
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

    def __enter__(self) -> ConfigCatAPIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for gate in self._gates:
            gate.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    # -- the audit log's content -------------------------------------------------------------

    def add(
        self,
        *,
        product_id: str,
        config_id: str,
        environment_id: str,
        at: dt.datetime,
        setting_key: str,
        user_email: str | None = "jane@example.com",
        user_name: str | None = "Jane Doe",
        details: str | None = None,
        why: str | None = None,
        type: str = "settingValueChanged",
        truncated: bool = False,
        where: str | None = None,
    ) -> dict[str, Any]:
        item = {
            "auditLogId": next(self._ids),
            "auditLogDateTime": dotnet_time(at),
            "auditLogTypeEnum": type,
            "changeSetId": str(uuid.uuid4()),
            "truncated": truncated,
            "auditLogType": type,
            "userEmail": user_email,
            "userName": user_name,
            "where": where or f"Main config / {environment_id}",
            "why": why,
            "actionTarget": setting_key,
            "details": details if details is not None else f"{setting_key}: false ➔ true",
        }
        with self._lock:
            self.stored.append(Stored(product_id, config_id, environment_id, item, at))
        return item

    # -- faults ------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        with self._lock:
            self._faults.append(Fault(status, times, retry_after=retry_after))

    def answer_raw(self, raw: bytes, *, times: int = 1) -> None:
        with self._lock:
            self._faults.append(Fault(200, times, raw=raw))

    def cut(self, *, times: int = 1) -> None:
        with self._lock:
            self._faults.append(Fault(200, times, cut=True))

    def rate_limit(self, allowed: int, *, retry_after: str = "30") -> None:
        """From now on, 429 once ``allowed`` more requests were answered."""
        with self._lock:
            self._limit = (len(self.requests) + allowed, retry_after)

    def hold(self) -> Gate:
        gate = Gate()
        with self._lock:
            self._gates.append(gate)
        return gate

    # -- handling ----------------------------------------------------------------------------

    def handle(
        self, target: str, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str], bool]:
        """Status, body, headers, and whether to cut the body short."""
        parts = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        credential = _basic_auth(headers.get("authorization", ""))
        request = Request(parts.path, params, credential[0] if credential else None)
        with self._lock:
            self.requests.append(request)
            gate = next((g for g in self._gates if not g.arrived.is_set()), None)
            if gate is not None:
                gate.arrived.set()
        if gate is not None:
            gate.released.wait(HOLD_SAFETY_SECONDS)
        status, body, extra, cut = self._answer(request, credential)
        request.status = status
        with self._lock:
            used = len(self.requests)
        reset = self.now() + dt.timedelta(seconds=60)
        remaining = max(0, self._limit[0] - used) if self._limit else 1000 - used
        extra = {
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": dotnet_time(reset),
            **extra,
        }
        return status, body, extra, cut

    def _fault(self) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _answer(
        self, request: Request, credential: tuple[str, str] | None
    ) -> tuple[int, bytes, dict[str, str], bool]:
        with self._lock:
            limited = self._limit is not None and len(self.requests) > self._limit[0]
        if limited and self._limit is not None:
            return 429, b"", {"Retry-After": self._limit[1]}, False
        fault = self._fault()
        if fault is not None and fault.status != 200:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, b"", headers, False
        if fault is not None and fault.raw is not None:
            return 200, fault.raw, {}, False
        if credential is None or credential not in self.credentials:
            return 401, b"", {"WWW-Authenticate": 'Basic realm="ConfigCat"'}, False
        segments = [unquote(s) for s in request.path.strip("/").split("/")]
        if len(segments) != 4 or segments[:2] != ["v1", "products"] or segments[3] != "auditlogs":
            return 404, b"", {}, False
        product_id = segments[2]
        if product_id not in self.products:
            return 404, _error("Product not found."), {}, False
        if product_id not in self.credentials[credential]:
            return 403, _error("Forbidden."), {}, False
        try:
            data = self._list(product_id, request.params)
        except ValueError as exc:
            return 400, _error(str(exc)), {}, False
        return 200, json.dumps(data).encode(), {}, bool(fault and fault.cut)

    def _list(self, product_id: str, params: dict[str, str]) -> Any:
        start, end = _parse(params.get("fromUtcDateTime")), _parse(params.get("toUtcDateTime"))
        if start is None and end is None:
            end = self.now()
        if end is None:
            end = self.now()
        if start is None:
            start = end - dt.timedelta(days=DEFAULT_DAYS)
        if end - start > dt.timedelta(days=MAX_DAYS):
            raise ValueError(
                "The distance between fromUtcDateTime and toUtcDateTime cannot exceed 30 days."
            )
        kind = params.get("auditLogType")
        if kind is not None and kind not in TYPES:
            raise ValueError(f"The value '{kind}' is not valid for auditLogType.")
        with self._lock:
            found = [
                s
                for s in self.stored
                if s.product_id == product_id
                and start <= s.at <= end  # both ends included
                and params.get("configId", s.config_id) == s.config_id
                and params.get("environmentId", s.environment_id) == s.environment_id
                and kind in (None, s.item["auditLogType"])
            ]
        items = [s.item for s in sorted(found, key=lambda s: s.at, reverse=True)]
        if self.page_size is None:
            return items
        return _paged(items, params, self.page_size)


def _paged(items: list[Any], params: dict[str, str], default_size: int) -> dict[str, Any]:
    try:
        number = int(params.get("pageNumber", "1"))
        size = int(params.get("pageSize", str(default_size)))
    except ValueError:
        raise ValueError("pageNumber and pageSize must be numbers.") from None
    if number < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError("pageNumber must be at least 1 and pageSize from 1 to 100.")
    pages = max(1, -(-len(items) // size))
    return {
        "paging": {
            "currentPage": number,
            "totalPages": pages,
            "pageSize": size,
            "totalCount": len(items),
            "hasPrevious": number > 1,
            "hasNext": number < pages,
        },
        "data": items[(number - 1) * size : number * size],
    }


def _parse(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"The value '{value}' is not a valid date-time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _error(message: str) -> bytes:
    return json.dumps({"code": 0, "message": message}).encode()


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _handler(server: ConfigCatAPIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra, cut = server.handle(self.path, headers)
            try:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.close_connection = True
            except OSError:
                pass  # the client went away (a timeout while we held it)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
