"""What the webhooks already delivered: the changes to match, and the scopes to ask about.

Both are read from the "Feature Flag Changed" events that came from a webhook receipt
of the connection, by the time ConfigCat sent the webhook (its signed timestamp), so
the few receipts of a period are found through the receipts, not the events table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from ..constants import FLAG_CHANGED
from ..models import Event, SegmentConnection, WebhookReceipt, WebhookScope
from .answers import parse_utc
from .matching import ReceivedChange, Scope


def _receipts(
    connection: SegmentConnection, start: dt.datetime, end: dt.datetime
) -> QuerySet[WebhookReceipt]:
    sent = Q(webhook_timestamp__gte=start, webhook_timestamp__lt=end)
    unsigned = Q(webhook_timestamp__isnull=True, received_at__gte=start, received_at__lt=end)
    return WebhookReceipt.objects.filter(connection=connection).filter(sent | unsigned)


def webhook_events(
    connection: SegmentConnection,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> QuerySet[Event]:
    """The connection's "Feature Flag Changed" events made from webhooks (sent in
    ``[start, end)`` when given)."""
    events = Event.objects.filter(
        connection=connection, event_name=FLAG_CHANGED, receipt__isnull=False
    )
    if start is not None and end is not None:
        events = events.filter(receipt__in=_receipts(connection, start, end).values("pk"))
    return events.only("id", "payload", "created_at").order_by()


def _properties(event: Event) -> dict[str, Any]:
    properties = event.payload.get("properties") if isinstance(event.payload, dict) else None
    return properties if isinstance(properties, dict) else {}


def _text(properties: dict[str, Any], name: str) -> str:
    value = properties.get(name)
    return value if isinstance(value, str) else ""


def received_changes(
    connection: SegmentConnection, start: dt.datetime, end: dt.datetime
) -> list[ReceivedChange]:
    """The setting changes webhooks sent in ``[start, end)``."""
    changes = []
    for event in webhook_events(connection, start, end):
        properties = _properties(event)
        at = parse_utc(event.payload.get("timestamp")) or event.created_at
        changes.append(
            ReceivedChange(
                event_id=event.pk,
                at=at,
                config_id=_text(properties, "config_id"),
                environment_id=_text(properties, "environment_id"),
                setting_key=_text(properties, "feature_flag_key"),
                user_email=_text(properties, "user_email"),
                user_name=_text(properties, "user_full_name"),
            )
        )
    return changes


def scopes_of(events: Iterable[Event]) -> dict[tuple[str, str], Scope]:
    """The configs and environments ``events`` came from, with their latest names."""
    found: dict[tuple[str, str], Scope] = {}
    for event in events:
        properties = _properties(event)
        config_id = _text(properties, "config_id")[:255]
        environment_id = _text(properties, "environment_id")[:255]
        if config_id and environment_id:  # else: nothing to ask the audit log about
            found[config_id, environment_id] = Scope(
                config_id,
                environment_id,
                _text(properties, "config_name")[:255],
                _text(properties, "environment_name")[:255],
            )
    return found


def remember(connection: SegmentConnection, scopes: Iterable[Scope], now: dt.datetime) -> None:
    """Store ``scopes`` as the connection's, or refresh their names and last sighting."""
    WebhookScope.objects.bulk_create(
        [
            WebhookScope(
                connection=connection,
                config_id=scope.config_id,
                environment_id=scope.environment_id,
                config_name=scope.config_name,
                environment_name=scope.environment_name,
                first_seen_at=now,
                last_seen_at=now,
            )
            for scope in scopes
        ],
        update_conflicts=True,
        unique_fields=["connection", "config_id", "environment_id"],
        update_fields=["config_name", "environment_name", "last_seen_at"],
    )


def known_scopes(connection: SegmentConnection) -> list[Scope]:
    return [
        Scope(s.config_id, s.environment_id, s.config_name, s.environment_name)
        for s in WebhookScope.objects.filter(connection=connection).order_by(
            "config_id", "environment_id"
        )
    ]
