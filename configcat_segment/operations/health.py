"""Is forwarding working? Each connected connection's state, from one indexed query.

A connection is healthy when Segment takes its write key (``unhealthy_since`` is empty:
the dispatcher sets it on 401/403 and clears it on the next success) and its
longest-waiting event has waited less than ``HEALTH_MAX_LAG_SECONDS``. Waiting means
``pending`` or ``failed`` (in the queue, whether due now or retrying later), and the wait
counts from ``queued_at``, when the event last entered the queue: so workers that are not
running, a Segment outage and a refused write key all show up as lag.

The longest-waiting event is found as the one with the lowest id in each waiting status,
one probe of the ``(status, connection, -id)`` index each, whatever the backlog: ids grow
with time, so it is the oldest but for an older event requeued since (whose wait starts
again, and which is then found in its place as soon as it waits too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ..conf import get_settings
from ..models import Event, SegmentConnection

UNHEALTHY = "unhealthy"
LAGGING = "lagging"


@dataclass(frozen=True)
class ConnectionState:
    """What the health, the checks and the metrics need to know about one connection."""

    id: uuid.UUID
    name: str
    connected: bool
    unhealthy_since: dt.datetime | None
    paused_until: dt.datetime | None
    waiting_since: dt.datetime | None  # queued_at of the longest-waiting event, if any

    @property
    def healthy(self) -> bool:
        return self.unhealthy_since is None

    def lag_seconds(self, now: dt.datetime) -> float:
        """How long the longest-waiting event has waited; 0 when none waits."""
        if self.waiting_since is None:
            return 0.0
        return max(0.0, (now - self.waiting_since).total_seconds())

    def paused(self, now: dt.datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


@dataclass(frozen=True)
class Problem:
    code: str  # UNHEALTHY or LAGGING
    message: str


def connection_states(*, connected_only: bool = True) -> list[ConnectionState]:
    """Every (connected) connection's state, by name. One query."""

    def oldest(status: str) -> Subquery:
        waiting = Event.objects.filter(connection=OuterRef("pk"), status=status)
        return Subquery(waiting.order_by("pk").values("queued_at")[:1])

    connections = SegmentConnection.objects.all()
    if connected_only:
        connections = connections.filter(connected=True)
    # One probe per due status (pending, failed): each reads its own index range in order.
    since = {f"since_{status}": oldest(status) for status in Event.DUE}
    rows = (
        connections.annotate(**since)
        .order_by("name")
        .values_list("pk", "name", "connected", "unhealthy_since", "delivery_paused_until", *since)
    )
    return [
        ConnectionState(pk, name, connected, unhealthy, paused, _earliest(*waiting))
        for pk, name, connected, unhealthy, paused, *waiting in rows
    ]


def _earliest(*moments: dt.datetime | None) -> dt.datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def problems(state: ConnectionState, now: dt.datetime, max_lag_seconds: float) -> list[Problem]:
    """What is wrong with a connection, in words fit for a monitoring page. Pure."""
    found = []
    if state.unhealthy_since is not None:
        found.append(
            Problem(
                UNHEALTHY,
                f"Segment has refused its write key or endpoint since "
                f"{_iso(state.unhealthy_since)}; its events wait until that is fixed "
                "(the event log shows Segment's answer).",
            )
        )
    lag = state.lag_seconds(now)
    if lag > max_lag_seconds:
        found.append(
            Problem(
                LAGGING,
                f"Its longest-waiting event has waited {lag:,.0f} s, more than "
                f"{max_lag_seconds:,.0f} s"
                + (
                    f"; delivery is paused until {_iso(state.paused_until)} (Segment "
                    "unavailable or refusing)."
                    if state.paused_until is not None and state.paused(now)
                    else ": is anything delivering (a worker, the thread runner, Celery)?"
                ),
            )
        )
    return found


@dataclass(frozen=True)
class HealthReport:
    checked_at: dt.datetime
    max_lag_seconds: float
    connections: list[tuple[ConnectionState, list[Problem]]]

    @property
    def ok(self) -> bool:
        return not any(found for _, found in self.connections)

    def as_json(self) -> dict[str, Any]:
        """No secrets and no event contents: names, ids, times and fixed-form reasons."""
        now = self.checked_at
        return {
            "status": "ok" if self.ok else "unhealthy",
            "checked_at": _iso(now),
            "max_lag_seconds": self.max_lag_seconds,
            "connections": [
                {
                    "id": str(state.id),
                    "name": state.name,
                    "status": found[0].code if found else "ok",
                    "healthy": state.healthy,
                    "unhealthy_since": _iso(state.unhealthy_since),
                    "delivery_paused_until": _iso(state.paused_until)
                    if state.paused(now)
                    else None,
                    "oldest_waiting_seconds": round(state.lag_seconds(now), 3),
                    "problems": [{"code": p.code, "message": p.message} for p in found],
                }
                for state, found in self.connections
            ],
        }


def report(
    states: Iterable[ConnectionState] | None = None,
    *,
    now: dt.datetime | None = None,
    max_lag_seconds: float | None = None,
) -> HealthReport:
    """The health of every connected connection (one query unless ``states`` is given)."""
    now = now or timezone.now()
    lag = get_settings().HEALTH_MAX_LAG_SECONDS if max_lag_seconds is None else max_lag_seconds
    if states is None:
        states = connection_states()
    return HealthReport(now, lag, [(s, problems(s, now, lag)) for s in states if s.connected])


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
