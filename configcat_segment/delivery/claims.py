"""The dispatcher's SQL: claiming due events with a lease, and settling their outcome.

A claim takes up to ``BATCH_SIZE`` due events of one connection in a short transaction
(``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it; SQLite serialises writers
instead), counts an attempt and moves ``next_attempt_at`` to the end of a *lease*. The
lease is the claim's mark: settling an outcome updates only rows that still carry it, so
a dispatcher whose lease ran out (and whose events someone else claimed since) changes
nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, TextField
from django.db.models.functions import Cast

from ..models import Event, SegmentConnection


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed event: just what sending and settling it needs."""

    pk: int
    text: str  # the message, as stored: sent as it is
    attempts: int  # this one included
    queued_at: dt.datetime


@contextlib.contextmanager
def bookkeeping(using: str) -> Iterator[None]:
    """A transaction for the dispatcher's own bookkeeping.

    Nothing it writes needs to survive a database crash: a lost claim is a lease that
    never was, a lost "delivered" an event sent again with the same messageId (which
    Segment dedupes). So on PostgreSQL it does not wait for the WAL to reach the disk,
    which would otherwise cost two disk flushes per batch. (Writing events, in the
    outbox, stays fully durable.)
    """
    with transaction.atomic(using=using):
        if connections[using].vendor == "postgresql":
            with connections[using].cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def due_connection_ids(using: str, now: dt.datetime) -> list[uuid.UUID]:
    """Connected connections that have events due at ``now`` and whose delivery is not
    paused. One probe of the due index per connection, however long the backlog is."""
    due = Event.objects.using(using).due(now).filter(connection=OuterRef("pk"))
    ready = SegmentConnection.objects.using(using).filter(
        Q(delivery_paused_until__isnull=True) | Q(delivery_paused_until__lte=now),
        Exists(due),
        connected=True,
    )
    return list(ready.order_by().values_list("pk", flat=True))


def claim(
    using: str,
    connection: SegmentConnection,
    now: dt.datetime,
    lease_until: dt.datetime,
    limit: int,
) -> list[Claimed]:
    """Claim up to ``limit`` of ``connection``'s events due at ``now`` until ``lease_until``."""
    with bookkeeping(using):
        due = (
            Event.objects.using(using)
            .due(now)
            .filter(connection=connection)
            # The partial "due" index gives this order; a tie-break would mean a sort.
            .order_by("next_attempt_at")
        )
        if connections[using].features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        # The stored text, not a decoded dict: it is sent as it is.
        rows = list(
            due.annotate(text=Cast("payload", TextField())).values_list(
                "pk", "text", "attempts", "queued_at", "status"
            )[:limit]
        )
        # A claimed event is pending (a failed one being retried becomes pending again):
        # a pending event due later than now is one being sent, which requeueing (failed
        # and dead events only) and fixing the connection's credentials (failed events
        # only) leave alone, so neither can make it due again, and sent twice, while
        # this round sends it.
        lease = {"next_attempt_at": lease_until, "attempts": F("attempts") + 1}
        events = Event.objects.using(using)
        pending = [row[0] for row in rows if row[4] != Event.Status.FAILED]
        failed = [row[0] for row in rows if row[4] == Event.Status.FAILED]
        if pending:
            events.filter(pk__in=pending).update(**lease)
        if failed:
            events.filter(pk__in=failed).update(**lease, status=Event.Status.PENDING)
    return [Claimed(pk, text, attempts + 1, queued) for pk, text, attempts, queued, _ in rows]


def text_size(event: Claimed) -> int:
    """The size in bytes of ``event``'s message as sent."""
    text = event.text
    return len(text) if text.isascii() else len(text.encode())


def settle(using: str, events: Sequence[Claimed], lease_until: dt.datetime, **values: Any) -> int:
    """Update those of ``events`` that still carry the lease ``lease_until`` with ``values``;
    returns how many did."""
    count: int = (
        Event.objects.using(using)
        .filter(pk__in=[e.pk for e in events], next_attempt_at=lease_until)
        .update(**values)
    )
    return count


def settled_rows(using: str, events: Sequence[Claimed], **values: Any) -> list[Event]:
    """Those of ``events`` settled as ``values``, whole (for signal receivers), in order."""
    rows = Event.objects.using(using).filter(pk__in=[e.pk for e in events], **values)
    return list(rows.order_by("pk"))


def failure_streak(using: str, connection: SegmentConnection) -> int:
    """The most attempts any of the connection's failed events has had (0 if none)."""
    failed = Event.objects.using(using).filter(connection=connection, status=Event.Status.FAILED)
    most: int | None = failed.aggregate(most=Max("attempts"))["most"]
    return most or 0
