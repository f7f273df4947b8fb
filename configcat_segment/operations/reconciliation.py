"""Reconciliation's metrics, read from the database at scrape time.

A source for :func:`.metrics.add_source`, so that, like every metric of the
app, they are the same whichever process answers the scrape. Connections reconciliation
does not apply to (no credential, disconnected) are left out, and with none the
families are left out too: one query then, two otherwise.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.utils import timezone

from ..conf import get_settings
from ..constants import FLAG_CHANGED
from ..models import Event
from ..reconcile.forward import SOURCE
from ..reconcile.run import reconcilable
from .metrics import PREFIX, Family

HEALTHY = f"{PREFIX}_reconciliation_healthy"
RECONCILED_UNTIL = f"{PREFIX}_reconciled_until_timestamp_seconds"
FORWARDED = f"{PREFIX}_reconciliation_forwarded"


def families(now: dt.datetime | None = None) -> list[Family]:
    rows = list(
        reconcilable()
        .order_by("name")
        .values_list("pk", "name", "reconcile_failing_since", "reconciled_until")
    )
    if not rows:
        return []
    labels = ("connection",)
    healthy = Family(
        HEALTHY,
        "gauge",
        "0 while reading ConfigCat's audit log fails (a refused credential, a wrong product "
        "id, an unavailable or unreadable API); 1 otherwise.",
        labels,
    )
    until = Family(
        RECONCILED_UNTIL,
        "gauge",
        "The reconciled point (Unix time): changes before it were compared with the audit "
        "log. Absent until the first reading succeeds.",
        labels,
    )
    forwarded = Family(
        FORWARDED,
        "gauge",
        "Changes forwarded from the audit log, which no webhook delivered, within the "
        "metrics window.",
        labels,
    )
    now = now or timezone.now()
    since = now - dt.timedelta(seconds=get_settings().METRICS_WINDOW_SECONDS)
    counts = dict(
        Event.objects.filter(
            connection_id__in=[pk for pk, *_ in rows],
            created_at__gte=since,
            event_name=FLAG_CHANGED,
            receipt__isnull=True,
            payload__properties__source=SOURCE,
        )
        .order_by()
        .values_list("connection_id")
        .annotate(n=Count("pk"))
    )
    for pk, name, failing_since, reconciled_until in rows:
        healthy.samples.append(((name,), float(failing_since is None)))
        if reconciled_until is not None:
            until.samples.append(((name,), reconciled_until.timestamp()))
        forwarded.samples.append(((name,), float(counts.get(pk, 0))))
    return [healthy, until, forwarded]
