"""How many events each connection has, per hour and status: what the event log's overview
and chart read instead of counting the events table.

Written only by the database: triggers on the events table keep these rows exact, whatever
writes or deletes events (see ``configcat_segment.database.counts``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from .connection import SegmentConnection
from .event import EventStatus


class EventCountQuerySet(models.QuerySet["EventCount"]):
    def by_connection(self, statuses: Iterable[str]) -> dict[uuid.UUID, dict[str, int]]:
        """``{connection id: {status: events}}`` for ``statuses``, all hours together."""
        totals: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        summed = self.summed(["connection_id", "status"], status__in=list(statuses))
        for (connection_id, status), n in summed.items():
            totals[connection_id][status] = n
        return totals

    def by_hour(self, since: dt.datetime, until: dt.datetime) -> dict[dt.datetime, dict[str, int]]:
        """``{hour: {status: events}}`` for the hours from ``since`` to before ``until``,
        every connection together; hours without events are left out."""
        hours: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
        for (hour, status), n in self.summed(
            ["hour", "status"], hour__gte=since, hour__lt=until
        ).items():
            hours[hour][status] = n
        return hours

    def summed(self, names: list[str], **filters: Any) -> dict[tuple[Any, ...], int]:
        """The counts grouped by ``names`` and filtered, with the changes not added in yet:
        one statement, so one snapshot, so exact. Zeros are left out."""
        counted = self.filter(**filters).values_list(*names).annotate(n=Sum("count"))
        changed = EventCountChange.objects.using(self.db).filter(**filters)
        changed = changed.values_list(*names).annotate(n=Sum("delta"))
        totals: dict[tuple[Any, ...], int] = defaultdict(int)
        for *key, n in counted.order_by().union(changed.order_by(), all=True):
            totals[tuple(key)] += n
        return {key: n for key, n in totals.items() if n}


class EventCount(models.Model):
    """How many events of ``connection`` created in ``hour`` (UTC) are in ``status``.

    Hours older than two days are folded together into the hour ``database.counts.FOLDED``
    (the epoch): those rows count every older event of the connection in the status.
    """

    connection = models.ForeignKey(
        SegmentConnection,
        on_delete=models.DO_NOTHING,  # zeroed by the triggers as its events go
        db_constraint=False,
        db_index=False,  # the unique constraint starts with it
        related_name="+",
    )
    hour = models.DateTimeField(_("hour"))
    status = models.CharField(max_length=10, choices=EventStatus.choices)
    count = models.BigIntegerField(default=0)

    objects = EventCountQuerySet.as_manager()

    class Meta:
        verbose_name = _("event count")
        verbose_name_plural = _("event counts")
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "hour", "status"], name="cs_eventcount_unique"
            ),
        ]
        indexes = [models.Index(fields=["hour"], name="cs_eventcount_hour")]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.hour:%Y-%m-%d %H}h {self.status}: {self.count}"


class EventCountChange(models.Model):
    """A change to an ``EventCount`` that is not added in yet (PostgreSQL only).

    Transactions that write events on PostgreSQL append their changes here rather than
    update a count: appending never waits for another transaction, and two transactions
    cannot deadlock on counters they update in different orders. The changes are added to
    the counts in bulk (``database.counts``); readers add up both tables in one statement.
    """

    connection = models.ForeignKey(
        SegmentConnection,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # only ever read whole
        related_name="+",
    )
    hour = models.DateTimeField(_("hour"))
    status = models.CharField(max_length=10, choices=EventStatus.choices)
    delta = models.BigIntegerField()

    class Meta:
        verbose_name = _("event count change")
        verbose_name_plural = _("event count changes")

    def __str__(self) -> str:
        return f"{self.connection_id} {self.hour:%Y-%m-%d %H}h {self.status}: {self.delta:+}"
