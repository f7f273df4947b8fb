"""The outbox: writing events before they are sent, and putting them back in the queue.

The ``Event`` table is both the outbox and the log. Everything that produces events
(webhooks, evaluations) writes them through :func:`build_event` and :func:`enqueue`;
whatever delivers them (a thread, workers, Celery) registers with :func:`on_enqueued` to be
woken after the writing transaction commits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import Event, EventClaim, SegmentConnection, WebhookReceipt
from ..segment.payloads import MessageTooLarge, fit
from ..signals import event_dead, flag_changed
from ..text import clean
from .rows import Row, insert_rows

logger = logging.getLogger(__name__)

_listeners: list[Callable[[], None]] = []


def on_enqueued(callback: Callable[[], None]) -> None:
    """Call ``callback`` (no arguments) whenever events become due. Registering twice is a no-op.

    It runs after the writing transaction commits, in the writing thread: keep it cheap
    (set an event, send a task).
    """
    if callback not in _listeners:
        _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def notify() -> None:
    """Wake whatever delivers events. Listener errors are logged, never raised."""
    for callback in list(_listeners):
        try:
            callback()
        except Exception:
            logger.exception("configcat_segment: an outbox listener failed")


def announce_changes(connection: SegmentConnection, events: Sequence[Event]) -> None:
    """Send ``flag_changed`` for each of ``events`` once the current transaction commits."""
    if events:
        transaction.on_commit(functools.partial(_announce, connection, list(events)))


def _announce(connection: SegmentConnection, events: list[Event]) -> None:
    for event in events:
        flag_changed.send_robust(sender=SegmentConnection, connection=connection, event=event)


def build_event(
    connection: SegmentConnection,
    message: Mapping[str, Any],
    *,
    flag_key: str = "",
    receipt: WebhookReceipt | None = None,
    now: Any = None,
) -> Event:
    """An unsaved ``Event`` for ``message``, shrunk to fit Segment's per-message limit.

    A message that cannot be made to fit is kept, as ``dead`` with the reason, so it is
    never lost and never poisons a batch.
    """
    now = now or timezone.now()
    try:
        payload, status, error = fit(message), Event.Status.PENDING, ""
    except MessageTooLarge as exc:
        payload, status, error = dict(message), Event.Status.DEAD, str(exc)
    user = payload.get("userId") or payload.get("anonymousId") or ""
    return Event(
        connection=connection,
        type=payload["type"],
        event_name=payload.get("event", ""),
        flag_key=clean(flag_key)[:255],
        user_id=clean(str(user))[:255],
        message_id=payload["messageId"],
        payload=payload,
        status=status,
        last_error=error,
        receipt=receipt,
        created_at=now,
        queued_at=now,
        next_attempt_at=now,
    )


def enqueue(events: Sequence[Event], *, ignore_conflicts: bool = False) -> list[Event]:
    """Write ``events``; wake the deliverers once the transaction commits.

    With ``ignore_conflicts``, an event whose ``message_id`` is already stored is skipped:
    the database, not a lookup, decides what is a duplicate. (The returned pending events
    then have no primary keys.) ``event_dead`` is sent after commit for the events that
    were written dead (too large to send), and only for those really written.
    """
    sendable = [e for e in events if e.status != Event.Status.DEAD]
    created = Event.objects.bulk_create(sendable, ignore_conflicts=ignore_conflicts)
    dead = _write_dead([e for e in events if e.status == Event.Status.DEAD], ignore_conflicts)
    if dead:
        for event in dead:
            logger.warning(
                "configcat_segment: event %s is dead on arrival: %s",
                event.message_id,
                event.last_error,
            )
        transaction.on_commit(functools.partial(event_dead.send_robust, sender=Event, events=dead))
    if created:
        transaction.on_commit(notify)
    return created + dead


def enqueue_rows(rows: Sequence[Row]) -> int:
    """Write ``rows`` (:func:`~.rows.build_row`), skipping those whose ``message_id`` is
    stored already, with one statement for the sendable ones; wake the deliverers once the
    transaction commits. How many were written.

    ``event_dead`` is sent after commit for the rows written dead (too large to send),
    only for those really written: they are rare, and written one by one.
    """
    now = timezone.now()
    written = insert_rows([row for row in rows if row.status != Event.Status.DEAD], now=now)
    dead_ids = [
        r.message_id for r in rows if r.status == Event.Status.DEAD and insert_rows([r], now=now)
    ]
    if dead_ids:
        dead = list(Event.objects.filter(message_id__in=dead_ids))
        for event in dead:
            logger.warning(
                "configcat_segment: event %s is dead on arrival: %s",
                event.message_id,
                event.last_error,
            )
        transaction.on_commit(functools.partial(event_dead.send_robust, sender=Event, events=dead))
    if written:
        transaction.on_commit(notify)
    return written + len(dead_ids)


def _write_dead(events: list[Event], ignore_conflicts: bool) -> list[Event]:
    """Write dead-on-arrival events (rare), one by one when duplicates are to be skipped,
    so that exactly the ones written are known."""
    if not ignore_conflicts:
        return Event.objects.bulk_create(events)
    written = []
    for event in events:
        try:
            with transaction.atomic():
                event.save(force_insert=True)
        except IntegrityError:
            continue
        written.append(event)
    return written


def requeue(events: QuerySet[Event] | Iterable[Event]) -> int:
    """Put events back in the queue, to be sent now with the same ``messageId``.

    Failed and dead events are retried; delivered ones are replayed (Segment dedupes a
    replay it already has within about a day). Attempts start again from zero and the
    maximum age counts from now. Pending events are left alone, and so are events a
    dispatcher is sending right now (a live claim): the claim would keep them from being
    claimed again anyway, and its outcome is the one to record. "Now" means now: a pause
    of their connections' delivery (backoff, ``Retry-After``, a probe) is lifted. Returns
    how many changed.
    """
    queryset = (
        events
        if isinstance(events, QuerySet)
        else Event.objects.filter(pk__in=[e.pk for e in events])
    )
    now = timezone.now()
    requeued = queryset.exclude(status=Event.Status.PENDING).exclude(EventClaim.holds(now))
    # Claims of a round that never settled count as attempts; a requeue starts from zero.
    # (The lease is tested on the claim row itself, so one taken meanwhile stays.)
    EventClaim.objects.filter(event_id__in=requeued.values("pk"), lease_until__lte=now).delete()
    SegmentConnection.objects.filter(
        pk__in=requeued.values("connection_id"), delivery_paused_until__gt=now
    ).update(delivery_paused_until=None)
    count = requeued.update(
        status=Event.Status.PENDING,
        attempts=0,
        next_attempt_at=now,
        queued_at=now,
        delivered_at=None,
    )
    if count:
        transaction.on_commit(notify)
    return count
