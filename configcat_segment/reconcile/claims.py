"""A connection's claim by the process reconciling it, and the health it leaves behind.

A claim is one conditional ``UPDATE`` of the connection's ``reconcile_locked_until``: of
processes claiming at once, the database lets one win, whatever the database. It is a
lease, not a lock held open: nothing waits on it, and the dispatcher's own updates of the
connection row never block behind a reading of ConfigCat's API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q

from ..conf import get_settings
from ..models import SegmentConnection


def claim(
    connection: SegmentConnection,
    now: dt.datetime,
    lease: dt.timedelta,
    due_before: dt.datetime | None,
) -> bool:
    """Take the connection for ``lease``, unless another process holds it (or, with
    ``due_before``, it was read since then). One ``UPDATE``: one process wins."""
    claim = SegmentConnection.objects.filter(pk=connection.pk).filter(
        Q(reconcile_locked_until__isnull=True) | Q(reconcile_locked_until__lte=now)
    )
    if due_before is not None:
        claim = claim.filter(
            Q(reconcile_checked_at__isnull=True) | Q(reconcile_checked_at__lte=due_before)
        )
    return claim.update(reconcile_locked_until=now + lease) == 1


def renew(connection: SegmentConnection, until: dt.datetime) -> None:
    SegmentConnection.objects.filter(pk=connection.pk).update(reconcile_locked_until=until)


def finish(
    connection: SegmentConnection,
    error: str,
    now: dt.datetime,
    retry_after: float | None,
) -> None:
    """Release the claim; keep the outcome as the connection's reconciliation health."""
    checked = now
    if retry_after:  # not before ConfigCat said so, however short the interval
        interval = get_settings().RECONCILE_INTERVAL_SECONDS
        checked = now + dt.timedelta(seconds=max(0.0, retry_after - interval))
    fields: dict[str, Any] = {
        "reconcile_locked_until": None,
        "reconcile_checked_at": checked,
        "reconcile_error": error,
    }
    rows = SegmentConnection.objects.filter(pk=connection.pk)
    if error:
        rows.filter(reconcile_failing_since__isnull=True).update(reconcile_failing_since=now)
    else:
        fields["reconcile_failing_since"] = None
    rows.update(**fields)
    connection.refresh_from_db(
        fields=[
            "reconciled_until",
            "reconcile_checked_at",
            "reconcile_error",
            "reconcile_failing_since",
            "reconcile_locked_until",
        ]
    )
