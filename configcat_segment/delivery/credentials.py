"""Giving an unhealthy connection a fresh start when its credentials or endpoint change.

The dispatcher marks a connection unhealthy when Segment refuses its write key (401/403)
or its endpoint is not a Tracking API; its events then wait for probes spaced out with
backoff. Whoever fixes the write key, region or endpoint (in the admin, a command or
code calling ``save()``) should not have to wait for the next probe: saving a change to
any of them resets the health, lifts the pause on its delivery and makes its waiting
events due at once, waking whatever delivers them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from ..models import Event, SegmentConnection
from . import outbox

CREDENTIAL_FIELDS = ("write_key", "region", "custom_endpoint")
_CHANGED = "_configcat_segment_credentials_changed"


def release(connection: SegmentConnection) -> int:
    """Mark ``connection`` healthy, unpause it and make its waiting events due now.

    Returns how many events became due; the deliverers are woken once the transaction
    commits.
    """
    connection.refresh_from_db(fields=["unhealthy_since", "unhealthy_reason"])
    connection.mark_healthy()
    SegmentConnection.objects.filter(pk=connection.pk).update(delivery_paused_until=None)
    connection.delivery_paused_until = None
    # Failed events wait; pending ones are due already. One being sent right now may be
    # made due too: its live claim (EventClaim) keeps any other round from taking it, and
    # its own round's outcome replaces this.
    waiting = Event.objects.filter(connection=connection, status=Event.Status.FAILED)
    count: int = waiting.update(next_attempt_at=timezone.now())
    if count:
        transaction.on_commit(outbox.notify)
    return count


def _remember_change(
    sender: type[SegmentConnection],
    instance: SegmentConnection,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    if raw or instance._state.adding:
        return
    if update_fields is not None and not set(update_fields) & set(CREDENTIAL_FIELDS):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list(*CREDENTIAL_FIELDS)
    before = stored.first()
    now = tuple(getattr(instance, name) for name in CREDENTIAL_FIELDS)
    setattr(instance, _CHANGED, before is not None and tuple(before) != now)


def _release_after_change(
    sender: type[SegmentConnection], instance: SegmentConnection, **kwargs: Any
) -> None:
    if instance.__dict__.pop(_CHANGED, False):
        release(instance)


def connect_signals() -> None:
    uid = "configcat_segment.delivery.credentials"
    pre_save.connect(_remember_change, sender=SegmentConnection, dispatch_uid=uid)
    post_save.connect(_release_after_change, sender=SegmentConnection, dispatch_uid=uid)
