"""Repairing what failed: retry and replay, each recorded in the admin's history.

Both put events back in the outbox through
:func:`configcat_segment.delivery.outbox.requeue`, so they are sent again with the same
``messageId``. The event log page and the ``Event`` admin call these; permissions are
checked by the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..constants import UPDATE_CHUNK
from ..delivery import outbox
from ..models import Event, EventClaim

RETRIED: Final = "Retried: queued again with the same messageId."
REPLAYED: Final = "Replayed: queued again with the same messageId."

# What an entry's text (``str(event)``) needs.
LOGGED_FIELDS: Final = ("pk", "type", "event_name", "flag_key", "status")

# Rows updated and logged per statement (tests make it smaller).
CHUNK: Final = UPDATE_CHUNK


def retry(queryset: QuerySet[Event], user: Any) -> int:
    """Queue the failed and dead events of ``queryset`` again. Returns how many."""
    return _requeue(queryset, Event.RETRYABLE, RETRIED, user)


def replay(queryset: QuerySet[Event], user: Any) -> int:
    """Queue the delivered events of ``queryset`` again, to be sent once more. Returns how many."""
    return _requeue(queryset, Event.REPLAYABLE, REPLAYED, user)


def _requeue(queryset: QuerySet[Event], statuses: Sequence[str], message: str, user: Any) -> int:
    count = 0
    with transaction.atomic():
        # Locked, so the dispatcher cannot change them between choosing and updating
        # (a failed event it delivers meanwhile must not be replayed by a retry).
        # Not those being sent right now (a live claim): requeue leaves them alone, so
        # the log must not say they were retried.
        chosen = list(
            queryset.filter(status__in=statuses)
            .exclude(EventClaim.holds(timezone.now()))
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(chosen), CHUNK):
            events = Event.objects.filter(pk__in=chosen[start : start + CHUNK])
            # Logged first, so each entry names the status the event was retried from.
            LogEntry.objects.log_actions(user.pk, events.only(*LOGGED_FIELDS), CHANGE, message)
            count += outbox.requeue(events)
    return count
