"""The event log's overview: is forwarding working, per connection and hour by hour?

A fixed, small number of queries whatever the size of the table, each answered from an
index: the counts read only the entries of events that are not delivered (a few, when all
is well), the last delivery is one index probe per connection, and the chart counts the
last 24 hours hour by hour.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Max, OuterRef, Subquery, Value
from django.utils import timezone

from ..models import Event, SegmentConnection

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
    last_delivery = (
        Event.objects.filter(connection=OuterRef("pk"), delivered_at__isnull=False)
        .order_by("-delivered_at")
        .values("delivered_at")[:1]
    )
    connections = list(
        SegmentConnection.objects.annotate(last_delivery=Subquery(last_delivery)).order_by("name")
    )
    counts: dict[object, dict[str, int]] = defaultdict(dict)
    newest_failure: dict[object, int] = {}
    rows = (
        Event.objects.filter(status__in=Event.WAITING)
        .values_list("connection_id", "status")
        .annotate(n=Count("pk"), newest=Max("pk"))
        .order_by()
    )
    for connection_id, status, n, newest in rows:
        counts[connection_id][status] = n
        if status != Event.Status.PENDING:
            newest_failure[connection_id] = max(newest, newest_failure.get(connection_id, 0))
    errors = {
        connection_id: (pk, error)
        for pk, connection_id, error in Event.objects.filter(
            pk__in=newest_failure.values()
        ).values_list("pk", "connection_id", "last_error")
    }
    return [
        ConnectionHealth(
            connection=connection,
            last_delivery=connection.last_delivery,  # type: ignore[attr-defined]
            pending=counts[connection.pk].get(Event.Status.PENDING, 0),
            failed=counts[connection.pk].get(Event.Status.FAILED, 0),
            dead=counts[connection.pk].get(Event.Status.DEAD, 0),
            last_error=errors.get(connection.pk, (None, ""))[1],
            last_error_event_id=errors.get(connection.pk, (None, ""))[0],
        )
        for connection in connections
    ]


def events_per_hour(now: dt.datetime | None = None, hours: int = 24) -> list[HourlyCounts]:
    """Events created in each of the last ``hours`` hours (the current one included), by status.

    Hours are those of the current time zone; hours without events are there, empty.
    """
    local_now = timezone.localtime(now or timezone.now())
    # Arithmetic in UTC: adding hours to a local time is wall-clock arithmetic across DST.
    this_hour = local_now.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    starts = [this_hour - dt.timedelta(hours=hours - 1 - n) for n in range(hours)]
    buckets = [HourlyCounts(timezone.localtime(start)) for start in starts]
    # One range count per hour, joined into a single query: each part reads its hour from
    # the (created_at, status) index, and no database has to compute an hour per row.
    by_status = Event.objects.order_by().values_list("status")
    per_hour = [
        by_status.filter(created_at__gte=start, created_at__lt=start + HOUR).annotate(
            hour=Value(n), n=Count("*")
        )
        for n, start in enumerate(starts)
    ]
    # Ordered by a selected column: a combined query cannot use the model's default order.
    for status, hour, n in per_hour[0].union(*per_hour[1:], all=True).order_by("hour"):
        buckets[hour].counts[status] = n
    return buckets
