"""The event log's overview: is forwarding working, per connection and hour by hour?

Two queries, whose cost does not grow with the events table: the counts (per connection
and status, and per hour for the chart) are read from ``EventCount``, which the database
keeps exact (a few rows per connection and hour for the last two days, one per connection
and status for every hour before), and each connection's last delivery and last error are
index probes (newest delivered, newest failed, newest dead).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from ..database.folding import HOURS_CHARTED
from ..models import EvaluationCounter, Event, EventCount, SegmentConnection

HOUR = dt.timedelta(hours=1)
# Bottom to top in the chart.
CHART_STATUSES = (
    Event.Status.DELIVERED,
    Event.Status.PENDING,
    Event.Status.FAILED,
    Event.Status.DEAD,
)


@dataclass(frozen=True)
class ConnectionHealth:
    connection: SegmentConnection
    last_delivery: dt.datetime | None
    pending: int = 0
    failed: int = 0
    dead: int = 0
    last_error: str = ""
    last_error_event_id: int | None = None


@dataclass(frozen=True)
class HourlyCounts:
    start: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(hours=1)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def connection_health() -> list[ConnectionHealth]:
    """Every connection with its waiting events, last delivery and last error (3 queries)."""

    def newest(events: QuerySet[Event], field: str) -> Subquery:
        return Subquery(
            events.filter(connection=OuterRef("pk")).order_by(f"-{field}").values(field)[:1]
        )

    connections = list(
        SegmentConnection.objects.annotate(
            last_delivery=newest(Event.objects.filter(delivered_at__isnull=False), "delivered_at"),
            # One probe per status: "failed or dead" would read them all to find the newest.
            last_failed=newest(Event.objects.filter(status=Event.Status.FAILED), "pk"),
            last_dead=newest(Event.objects.filter(status=Event.Status.DEAD), "pk"),
        ).order_by("name")
    )
    newest_failure = {
        c.pk: max(c.last_failed or 0, c.last_dead or 0)  # type: ignore[attr-defined]
        for c in connections
    }
    errors = dict(
        Event.objects.filter(pk__in=[pk for pk in newest_failure.values() if pk]).values_list(
            "pk", "last_error"
        )
    )
    counts = EventCount.objects.by_connection(Event.WAITING)
    return [
        ConnectionHealth(
            connection=connection,
            last_delivery=connection.last_delivery,  # type: ignore[attr-defined]
            pending=counts[connection.pk].get(Event.Status.PENDING, 0),
            failed=counts[connection.pk].get(Event.Status.FAILED, 0),
            dead=counts[connection.pk].get(Event.Status.DEAD, 0),
            last_error=errors.get(newest_failure[connection.pk], ""),
            last_error_event_id=newest_failure[connection.pk] or None,
        )
        for connection in connections
    ]


def evaluation_counters() -> dict[str, int]:
    """Evaluations not forwarded (``dropped``, ``failed``, ``unwritable``) and the random
    anonymous ids sent (``random_anonymous_ids``), over every process (1 query)."""
    return {
        EvaluationCounter.RANDOM_ANONYMOUS_IDS: 0,
        EvaluationCounter.DROPPED: 0,
        EvaluationCounter.FAILED: 0,
        EvaluationCounter.UNWRITABLE: 0,
        **EvaluationCounter.objects.totals(),
    }


def events_per_hour(
    now: dt.datetime | None = None, hours: int = HOURS_CHARTED
) -> list[HourlyCounts]:
    """Events created in each of the last ``hours`` hours (the current one included), by status.

    The hours are UTC hours (what the counts are kept by), shown in the current time zone:
    its own hours wherever it is a whole number of hours from UTC. Hours without events
    are there, empty. At most :data:`~configcat_segment.database.HOURS_CHARTED`:
    older hours are folded together.
    """
    if not 1 <= hours <= HOURS_CHARTED:
        raise ValueError(f"hours must be from 1 to {HOURS_CHARTED}, not {hours}")
    moment = (now or timezone.now()).astimezone(dt.UTC)
    this_hour = moment.replace(minute=0, second=0, microsecond=0)
    starts = [this_hour - dt.timedelta(hours=hours - 1 - n) for n in range(hours)]
    counted = EventCount.objects.by_hour(starts[0], this_hour + HOUR)
    return [
        HourlyCounts(timezone.localtime(start), dict(counted.get(start, {}))) for start in starts
    ]
