"""Retention: delete old delivered events in bounded batches.

Each batch of ``CHUNK`` events is one short transaction (select their ids, then delete them),
so pruning millions of events holds no long lock, runs no transaction that grows with the
work, and lets writers and workers go on between batches. Batches follow the primary key
from where the last one stopped, so no batch reads again what an earlier one deleted. The
event counts follow through their triggers; counts that fell to zero are removed at the end,
and so are the dispatcher's claim rows left behind by a worker that died (``claims.sweep``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import CommandParser
from django.db import router
from django.db.models import QuerySet
from django.utils import timezone

from ...conf import get_settings
from ...constants import PRUNE_CHUNK
from ...database import counts
from ...delivery import claims
from ...models import Event, EventClaim
from ...segment.payloads import isoformat
from ...settings_validators import MAX_RETENTION_DAYS
from ..base import JSONCommand, whole_number

CHUNK = PRUNE_CHUNK  # rows per DELETE (tests make it smaller)


def next_chunk(old: QuerySet[Event]) -> list[int]:
    """The primary keys of the next ``CHUNK`` events to delete."""
    return list(old.order_by("pk").values_list("pk", flat=True)[:CHUNK])


class Command(JSONCommand):
    help = (
        "Delete delivered events older than RETENTION_DAYS (or --days). Pending, failed "
        "and dead events are never pruned."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=whole_number(1, MAX_RETENTION_DAYS),
            help="Keep delivered events this many days. Default: the RETENTION_DAYS setting.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the events; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keep_days = options["days"]
        if keep_days is None:
            keep_days = get_settings().RETENTION_DAYS
        before = timezone.now() - dt.timedelta(days=keep_days)
        old = Event.objects.filter(status=Event.Status.DELIVERED, delivered_at__lt=before)
        result: dict[str, Any] = {"delivered_before": isoformat(before)}
        if options["dry_run"]:
            self.emit({**result, "would_delete": old.count(), "dry_run": True})
            return
        deleted = batches = last = 0
        while ids := next_chunk(old.filter(pk__gt=last)):
            # Filtered again, not by primary key alone: an event requeued since stays.
            _, per_model = old.filter(pk__in=ids).delete()
            deleted += per_model.get(Event._meta.label, 0)
            batches, last = batches + 1, ids[-1]
        counts.add_changes()
        counts.remove_empty()
        swept = claims.sweep(router.db_for_write(EventClaim), timezone.now())
        self.emit({**result, "deleted": deleted, "batches": batches, "stale_claims": swept})
