"""Fixtures for the operations tests: the delivery tests' Segment server, and monitoring."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from configcat_segment.delivery import outbox
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.segment import payloads

from ..delivery.conftest import (  # noqa: F401 - fixtures
    clock,
    connect_to,
    delivery_settings,
    segment_server,
)

TOKEN = "monitoring-token-0123456789abcdefghij"


@pytest.fixture
def monitoring(delivery_settings: Callable[..., None]) -> Callable[..., None]:  # noqa: F811
    """Settings with the monitoring token; more through keyword arguments."""

    def apply(**values: Any) -> None:
        delivery_settings(MONITORING_TOKEN=TOKEN, **values)

    apply()
    return apply


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def add_event() -> Callable[..., Event]:
    """Write one event for ``connection`` with the given status and times."""
    counter = iter(range(1, 1_000_000))

    def add(
        connection: SegmentConnection,
        status: str = "pending",
        *,
        age: float = 0.0,
        delivered_after: float | None = None,
        user_id: str = "alice",
        **fields: Any,
    ) -> Event:
        n = next(counter)
        created = timezone.now() - dt.timedelta(seconds=age)
        message = payloads.track(
            event="Feature Flag Changed",
            properties={"feature_flag_key": "flag"},
            user_id=user_id,
            timestamp=created,
            message_id=f"ops-{connection.pk.hex[:8]}-{n}",
        )
        event = outbox.build_event(connection, message, now=created)
        event.status = status
        if delivered_after is not None:
            event.delivered_at = created + dt.timedelta(seconds=delivered_after)
        for name, value in fields.items():
            setattr(event, name, value)
        event.save()
        return event

    return add
