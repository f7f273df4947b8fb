"""Fixtures for the event log: events in every state, and users with each permission."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from configcat_segment.constants import FLAG_CHANGED, FLAG_EVALUATED
from configcat_segment.delivery import outbox
from configcat_segment.models import Event, SegmentConnection, WebhookReceipt
from configcat_segment.segment import payloads as messages

from ..conftest import CsrfClient

EVENTS_URL = "/configcat-segment/events/"
API_URL = "/configcat-segment/api/events/"


def event_url(event: Event) -> str:
    return f"{EVENTS_URL}{event.pk}/"


@pytest.fixture
def make_event(segment_connection: SegmentConnection) -> Callable[..., Event]:
    """An event as the outbox writes it, then put in the state a test needs."""
    counter = itertools.count(1)

    def make(
        connection: SegmentConnection | None = None,
        *,
        kind: str = "changed",
        status: str = Event.Status.PENDING,
        flag_key: str = "checkout_v2",
        user_id: str = "user-1",
        created_at: dt.datetime | None = None,
        receipt: WebhookReceipt | None = None,
        **fields: Any,
    ) -> Event:
        connection = connection or segment_connection
        n = next(counter)
        moment = created_at or timezone.now()
        message_id = messages.message_id(connection.message_id_salt, "test", n)
        if kind == "identify":
            message = messages.identify(
                traits={"Identifier": user_id},
                user_id=user_id,
                timestamp=moment,
                message_id=message_id,
            )
        else:
            message = messages.track(
                event=FLAG_CHANGED if kind == "changed" else FLAG_EVALUATED,
                properties={"feature_flag_key": flag_key, "value": True},
                user_id=user_id,
                timestamp=moment,
                message_id=message_id,
            )
        event = outbox.build_event(
            connection, message, flag_key=flag_key, receipt=receipt, now=moment
        )
        event.status = status
        if status in (Event.Status.FAILED, Event.Status.DEAD):
            event.attempts = fields.pop("attempts", 3)
            event.last_error = fields.pop(
                "last_error", "Segment answered 500 Internal Server Error"
            )
        if status == Event.Status.DELIVERED:
            event.attempts = fields.pop("attempts", 1)
            event.delivered_at = fields.pop("delivered_at", moment + dt.timedelta(seconds=1))
        for name, value in fields.items():
            setattr(event, name, value)
        event.save()
        return event

    return make


_usernames = itertools.count(1)


def user_with(*codenames: str, staff: bool = True) -> Any:
    """A user with exactly these permissions, named after them."""
    name = "-".join(codenames) or "plain"
    user = get_user_model().objects.create_user(
        f"{name}-{next(_usernames)}", password="pw-user-123", is_staff=staff
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def client_for(user: Any) -> CsrfClient:
    client = CsrfClient()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(db: None) -> CsrfClient:
    """Staff who may look at events, their receipts and connections, but not retry them."""
    return client_for(user_with("view_event", "view_webhookreceipt", "view_segmentconnection"))


@pytest.fixture
def changer_client(db: None) -> CsrfClient:
    """Staff who may look at events and retry them."""
    return client_for(user_with("view_event", "change_event"))
