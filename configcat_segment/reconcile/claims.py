"""A connection's claim by the process reconciling it, and the health it leaves behind.

A claim is one conditional ``UPDATE`` of the connection's ``reconcile_locked_until``: of
processes claiming at once, the database lets one win, whatever the database. It is a
lease, not a lock held open: nothing waits on it, and the dispatcher's own updates of the
connection row never block behind a reading of ConfigCat's API.

The value a process writes is its own (a later claim can only be made once it has passed,
and writes a later one), so it is also the proof that the claim is still held: a process
whose lease ran out, and was taken by another, can neither renew nor release the other's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, Q, QuerySet, When

from ..conf import get_settings
from ..models import SegmentConnection


@dataclass
class Claim:
    """A process's hold on a connection until ``until`` (its ``reconcile_locked_until``)."""

    connection_id: uuid.UUID
    until: dt.datetime

    def _held(self) -> QuerySet[SegmentConnection]:
        return SegmentConnection.objects.filter(
            pk=self.connection_id, reconcile_locked_until=self.until
        )


def claim(
    connection: SegmentConnection,
    now: dt.datetime,
    lease: dt.timedelta,
    due_before: dt.datetime | None,
) -> Claim | None:
    """Take the connection for ``lease``, unless another process holds it (or, with
    ``due_before``, it was read since then). One ``UPDATE``: one process wins."""
    rows = SegmentConnection.objects.filter(pk=connection.pk).filter(
        Q(reconcile_locked_until__isnull=True) | Q(reconcile_locked_until__lte=now)
    )
    if due_before is not None:
        rows = rows.filter(
            Q(reconcile_checked_at__isnull=True) | Q(reconcile_checked_at__lte=due_before)
        )
    until = now + lease
    if rows.update(reconcile_locked_until=until) != 1:
        return None
    return Claim(connection.pk, until)


def renew(held: Claim, until: dt.datetime) -> bool:
    """Hold on until ``until``; False when the claim ran out and another process took it."""
    if held._held().update(reconcile_locked_until=until) != 1:
        return False
    held.until = until
    return True


def finish(
    connection: SegmentConnection,
    held: Claim,
    error: str,
    now: dt.datetime,
    retry_after: float | None,
) -> None:
    """Release the claim, if still held; keep the outcome as the connection's
    reconciliation health."""
    checked = now
    if retry_after:  # not before ConfigCat said so, however short the interval
        interval = get_settings().RECONCILE_INTERVAL_SECONDS
        checked = now + dt.timedelta(seconds=max(0.0, retry_after - interval))
    fields: dict[str, Any] = {
        # Released only if it is still this process's claim: one UPDATE either way.
        "reconcile_locked_until": Case(
            When(reconcile_locked_until=held.until, then=None),
            default=F("reconcile_locked_until"),
        ),
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
