"""``configcat_segment_status --check``: one line and an exit code, for cron and monitoring.

Exit codes as Nagios-style plugins use them: 0 OK, 1 WARNING, 2 CRITICAL. Critical: a
connected connection that Segment refuses (unhealthy), a longest-waiting event older than
the critical lag, dead events at or above the critical count. Warning: the same at the
warning thresholds. Dead events are counted among those created within the last
``dead_window`` seconds (test events from the admin left out), so that history does not
keep the check red for ever; the event log lists them all.

:func:`evaluate` is pure; :func:`run` reads the database (two queries) and calls it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count
from django.utils import timezone

from ..models import Event
from . import health
from .probe import TEST_USER_ID

OK, WARNING, CRITICAL = 0, 1, 2
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


@dataclass(frozen=True)
class Thresholds:
    lag_warning: float
    lag_critical: float
    dead_warning: int
    dead_critical: int
    dead_window: float  # seconds


def evaluate(
    states: list[health.ConnectionState],
    dead: dict[str, int],
    thresholds: Thresholds,
    now: dt.datetime,
) -> tuple[int, str]:
    """The exit code and the line to print. ``dead`` counts dead events by connection name."""
    t = thresholds
    code, findings = OK, []
    connected = [state for state in states if state.connected]
    for state in connected:
        if not state.healthy:
            code = CRITICAL
            findings.append(f"{state.name}: Segment refuses its write key or endpoint")
        lag = state.lag_seconds(now)
        level = CRITICAL if lag > t.lag_critical else WARNING if lag > t.lag_warning else OK
        if level:
            code = max(code, level)
            limit = t.lag_critical if level == CRITICAL else t.lag_warning
            findings.append(f"{state.name}: oldest waiting event {lag:,.0f} s (> {limit:,.0f} s)")
    dead_total = sum(dead.values())
    hours = f"{t.dead_window / 3600:g} h"
    if dead_total >= t.dead_warning:
        code = max(code, CRITICAL if dead_total >= t.dead_critical else WARNING)
        where = ", ".join(f"{name} {n}" for name, n in sorted(dead.items()))
        findings.append(f"{dead_total} dead events in {hours} ({where})")
    max_lag = max((state.lag_seconds(now) for state in connected), default=0.0)
    if not findings:
        findings.append(
            f"{len(connected)} connected connection{'s' if len(connected) != 1 else ''} "
            f"healthy, oldest waiting event {max_lag:,.0f} s, {dead_total} dead events in {hours}"
        )
    perfdata = (
        f"lag={max_lag:.0f}s;{t.lag_warning:g};{t.lag_critical:g} "
        f"dead={dead_total};{t.dead_warning};{t.dead_critical} "
        f"unhealthy={sum(not state.healthy for state in connected)}"
    )
    return code, f"{LABELS[code]}: {'; '.join(findings)} | {perfdata}"


def dead_by_connection(since: dt.datetime) -> dict[str, int]:
    """Dead events created since ``since``, by connection name, test events left out."""
    rows = (
        Event.objects.filter(created_at__gte=since, status=Event.Status.DEAD)
        .exclude(user_id=TEST_USER_ID)
        .order_by()
        .values_list("connection__name")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def run(thresholds: Thresholds, now: dt.datetime | None = None) -> tuple[int, str]:
    now = now or timezone.now()
    states = health.connection_states()
    dead = dead_by_connection(now - dt.timedelta(seconds=thresholds.dead_window))
    return evaluate(states, dead, thresholds, now)
