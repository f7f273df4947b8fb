"""Fixtures for reconciliation: ConfigCat's audit log on loopback, a connection that reads
it, and webhooks sent as ConfigCat sends them (at the fixed time NOW)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings

from configcat_segment.conf import get_settings
from configcat_segment.models import SegmentConnection
from configcat_segment.reconcile.client import AuditLogClient
from configcat_segment.webhooks.views import WebhookView
from tests.configcat_api_server import ConfigCatAPIServer
from tests.webhooks.conftest import (
    CONFIG_ID,
    ENVIRONMENT_ID,
    NOW,
    PRODUCT_ID,
    configcat_body,
    headers_for,
)

API_USER = "pubapi-user-0123"
API_PASSWORD = "pubapi-SECRET-password-4567"
NOW_DT = dt.datetime.fromtimestamp(NOW, dt.UTC)
# When reconciliation runs in these tests: an hour after the webhooks, so the change is
# older than the tolerance (10 minutes) and read.
LATER = NOW_DT + dt.timedelta(hours=1)
OTHER_ENVIRONMENT_ID = "08d86d63-2731-4b3c-8d41-5a3a7ce1d0ee"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The webhook view's clock stands still at NOW; no test waits for a Retry-After."""
    monkeypatch.setattr(WebhookView, "clock", staticmethod(lambda: float(NOW)))
    slept: list[float] = []
    monkeypatch.setattr(AuditLogClient, "sleep", staticmethod(slept.append))
    return slept


@pytest.fixture
def audit_log() -> Iterator[ConfigCatAPIServer]:
    credentials = {(API_USER, API_PASSWORD): {PRODUCT_ID}}
    with ConfigCatAPIServer(credentials=credentials, now=lambda: LATER) as server:
        yield server


@pytest.fixture
def api_settings(audit_log: ConfigCatAPIServer) -> Iterator[Callable[..., None]]:
    """The app reads ``audit_log``; ``api_settings(KEY=value)`` overrides more settings."""
    overrides: list[Any] = []

    def apply(**values: Any) -> None:
        merged = {**get_settings().__dict__, "CONFIGCAT_API_BASE_URL": audit_log.url, **values}
        override = override_settings(CONFIGCAT_SEGMENT=merged)
        override.enable()
        overrides.append(override)

    apply()
    yield apply
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def reconciling(
    make_connection: Callable[..., SegmentConnection], api_settings: Any
) -> SegmentConnection:
    """A connection with the product and a Public API credential, made a month ago."""
    return make_connection(
        name="Production",
        product_id=PRODUCT_ID,
        product_name="Shop",
        configcat_api_user=API_USER,
        configcat_api_password=API_PASSWORD,
        created_at=NOW_DT - dt.timedelta(days=30),
    )


@pytest.fixture
def send_webhook(client: Any) -> Callable[..., Any]:
    """POST a signed webhook body (the template's, by default) to a connection."""

    def send(connection: SegmentConnection, body: bytes | None = None, **kwargs: Any) -> Any:
        body = configcat_body(**kwargs) if body is None else body
        response = client.post(
            connection.webhook_path,
            data=body,
            content_type="application/json",
            headers=headers_for(body),
        )
        assert response.status_code == 200, response.content
        return response

    return send


def audit_entry(server: ConfigCatAPIServer, **fields: Any) -> dict[str, Any]:
    """An entry in the product, config and environment of the tests' webhooks, made two
    seconds before the webhook was sent (as a change is saved, then announced)."""
    values: dict[str, Any] = {
        "product_id": PRODUCT_ID,
        "config_id": CONFIG_ID,
        "environment_id": ENVIRONMENT_ID,
        "at": NOW_DT - dt.timedelta(seconds=2),
        "setting_key": "isAwesomeFeatureEnabled",
        "details": "isAwesomeFeatureEnabled: false ➔ true",
        "why": "Launch day",
    }
    values.update(fields)
    return server.add(**values)
