"""Signing and sending webhooks as ConfigCat does, for the webhook tests."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections

from configcat_segment.models import SegmentConnection
from configcat_segment.webhooks import body
from configcat_segment.webhooks.rendering import render_body
from configcat_segment.webhooks.signing import signature_headers
from configcat_segment.webhooks.views import WebhookView

from ..conftest import SIGNING_KEY

NOW = 1_790_000_000  # the webhook view's clock in these tests (2026-09-21)

PRODUCT_ID = "08d86d63-2721-4da6-8c06-584521d516bc"
CONFIG_ID = "08d86d63-2726-47cd-8bfc-59608ecb91e2"
ENVIRONMENT_ID = "08d86d63-272c-4355-8027-4b52787bc1bd"
URL = f"https://app.configcat.com/{PRODUCT_ID}/{CONFIG_ID}/{ENVIRONMENT_ID}"

VARIABLES = {
    "ConfigId": CONFIG_ID,
    "ConfigName": "Main config",
    "EnvironmentId": ENVIRONMENT_ID,
    "EnvironmentName": "Production",
    "URL": URL,
    "ChangedBy": "Jane Doe (jane@example.com)",
    "ChangeNotes": "Launch day",
}
CHANGE_DETAILS = [
    {
        "settingKey": "isAwesomeFeatureEnabled",
        "event": "changed",
        "details": "\r\nisAwesomeFeatureEnabled: false ➔ true",
    },
    {
        "settingKey": "discountRate",
        "event": "changed",
        "details": "\r\ndiscountRate: 10 ➔ 20\r\nfor everyone",
    },
]


def configcat_body(
    variables: dict[str, str] | None = None, details: Sequence[Any] | None = None, **kwargs: Any
) -> bytes:
    """A body as ConfigCat makes it from our template (see ``render_body`` for kwargs)."""
    return render_body(
        {**VARIABLES, **(variables or {})},
        CHANGE_DETAILS if details is None else details,
        **kwargs,
    ).encode()


def headers_for(
    body: bytes,
    *,
    keys: Sequence[str] = (SIGNING_KEY,),
    webhook_id: str | None = None,
    timestamp: int | str = NOW,
) -> dict[str, str]:
    return signature_headers(
        keys, body, webhook_id=webhook_id or uuid.uuid4().hex, timestamp=str(timestamp)
    )


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The view's clock stands still at NOW, so timestamps are exact, not raced."""
    monkeypatch.setattr(WebhookView, "clock", staticmethod(lambda: float(NOW)))


@pytest.fixture
def send(client: Any) -> Callable[..., Any]:
    """POST a body to a connection's webhook URL; signs it unless headers are given."""

    def post(
        connection: SegmentConnection,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        method: str = "post",
        **sign: Any,
    ) -> Any:
        if headers is None:
            headers = headers_for(body, **sign)
        if method == "get":
            return client.get(connection.webhook_path, headers=headers)
        return client.post(
            connection.webhook_path, data=body, content_type="application/json", headers=headers
        )

    return post


def answer(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/json", response.content[:300]
    return json.loads(response.content)


@pytest.fixture
def broken_parser(monkeypatch):
    """``body.parse`` fails the first time it is called, as a bug would."""
    calls = []
    real = body.parse

    def parse(raw_body, **kwargs):
        calls.append(raw_body)
        if len(calls) == 1:
            raise RuntimeError("parser bug")
        return real(raw_body, **kwargs)

    monkeypatch.setattr(body, "parse", parse)
    return calls


@pytest.fixture(params=[False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def atomic_requests(request, monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", request.param)
    return request.param


@pytest.fixture
def live_server(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """pytest-django's live server, with every request thread finished when the test ends.

    Each request thread closes its database connection after sending its answer; on
    PostgreSQL one still open at the end of the session keeps the test database from
    being dropped.
    """
    finished = threading.Condition()
    running = 0
    serve = ThreadedWSGIServer.process_request_thread

    def counted(self: ThreadedWSGIServer, request: Any, client_address: Any) -> None:
        nonlocal running
        with finished:
            running += 1
        try:
            serve(self, request, client_address)
        finally:
            with finished:
                running -= 1
                finished.notify_all()

    monkeypatch.setattr(ThreadedWSGIServer, "process_request_thread", counted)
    yield live_server
    with finished:
        assert finished.wait_for(lambda: running == 0, timeout=60), "a request never ended"
