"""What the dispatcher knows and records about a connection: paused, healthy, unchanged.

- **Paused**: while Segment is unavailable, rate limits us or refuses the connection,
  ``delivery_paused_until`` says when the next request may be made; until then more
  requests would only add failures, however many events are written meanwhile.
- **Unhealthy**: Segment refuses the connection itself (its write key, its endpoint), so
  its events wait for probes instead of using up their attempts.
- **Unchanged**: what Segment said of a connection holds only for the credentials it was
  said of; a write key or endpoint changed since (in the admin, say) voids it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from ..models import SegmentConnection
from .credentials import CREDENTIAL_FIELDS

logger = logging.getLogger(__name__)


def paused(using: str, connection: SegmentConnection, now: dt.datetime) -> bool:
    """Whether delivery to ``connection`` is paused at ``now``, as the database says now
    (another dispatcher may have paused it since ``connection`` was read)."""
    connection.delivery_paused_until = (
        SegmentConnection.objects.using(using)
        .filter(pk=connection.pk)
        .values_list("delivery_paused_until", flat=True)
        .first()
    )
    return connection.is_paused(now)


def pause(using: str, connection: SegmentConnection, until: dt.datetime) -> None:
    """No request for ``connection`` before ``until`` (or a later pause already set)."""
    later = Greatest(Coalesce(F("delivery_paused_until"), Value(until)), Value(until))
    SegmentConnection.objects.using(using).filter(pk=connection.pk).update(
        delivery_paused_until=later
    )


def unchanged(using: str, connection: SegmentConnection) -> bool:
    """Whether ``connection``'s write key and endpoint are still those it was read with.

    Locks the connection's row first (as saving it in the admin does, before that touches
    its events, so the two never deadlock): call it in the settling transaction.
    """
    rows = SegmentConnection.objects.using(using).select_for_update()
    current = rows.filter(pk=connection.pk).values_list(*CREDENTIAL_FIELDS).first()
    return current == tuple(getattr(connection, name) for name in CREDENTIAL_FIELDS)


def mark_unhealthy(connection: SegmentConnection, error: str) -> None:
    """Record ``error``; logged once, by whichever round turned the connection unhealthy."""
    if connection.mark_unhealthy(error):
        logger.error("configcat_segment: %s is unhealthy: %s", connection, error)


def mark_healthy(connection: SegmentConnection) -> None:
    """Logged once, by whichever round found the connection healthy again."""
    if not connection.is_healthy and connection.mark_healthy():
        logger.info("configcat_segment: %s is healthy again", connection)
