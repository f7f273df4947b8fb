"""Recount the event log's counts from the events table.

They are kept exact by triggers, so this is for repairs: after restoring the events table
from a backup without its counts, or after triggers were disabled. It does not stop writers
on PostgreSQL (see ``configcat_segment.database.counts``).
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS

from ...database import counts
from ...models import EventCount
from ..base import JSONCommand


class Command(JSONCommand):
    help = (
        "Recount the event log's counts (events per connection, hour and status) from the "
        "events table. Safe while events are written and delivered."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="The database to recount in."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = options["database"]
        counts.rebuild(using)
        counts.add_all_changes(using)
        by_status = {
            status: n
            for (status,), n in sorted(EventCount.objects.using(using).summed(["status"]).items())
        }
        self.emit(
            {
                "counts": EventCount.objects.using(using).count(),
                "events": by_status,
                "total": sum(by_status.values()),
            }
        )
