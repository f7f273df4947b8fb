"""What the metrics say, read from the database at scrape time.

Every number here is read from the tables at the moment Prometheus asks, so it is the same
whichever gunicorn process, worker or machine answers: nothing is kept in a process's
memory, and a process that restarts loses nothing. That rules out counting in memory what
only a process sees (each request to Segment); those few counters are in
:mod:`.prometheus`, for prometheus-client's multiprocess mode.

Five queries of its own, whatever the number of connections, each answered from an index:

- the connections and each one's longest-waiting event (:func:`.health.connection_states`);
- events ``pending``, ``failed`` and ``dead`` per connection (the entries of events that
  are not delivered: few, when all is well). Delivered events are not counted in full,
  which would read a table that only grows at every scrape: the latency histogram counts
  those delivered within the window instead;
- delivery latency, queued → delivered, of the events delivered within
  ``METRICS_WINDOW_SECONDS``, as a gauge histogram per connection;
- webhook receipts per connection and outcome within the window;
- the evaluation counters (``EvaluationCounter``, summed over all processes already).

The module needs no ``prometheus-client``: it returns :class:`Family` objects that
:mod:`.prometheus` turns into Prometheus metrics, and other parts of the app (or a project)
can add their own with :func:`add_source`: reconciliation with ConfigCat's audit log does
(:mod:`.reconciliation`, one or two queries more).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from ..conf import get_settings
from ..models import EvaluationCounter, Event, WebhookReceipt
from .health import ConnectionState, connection_states
from .probe import TEST_USER_ID

PREFIX = "configcat_segment"
COUNTED_STATUSES = Event.WAITING  # pending, failed, dead: not delivered (yet)
# Upper bounds of the latency buckets, in seconds (+Inf is added).
LATENCY_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600)
EVALUATION_REASONS = (
    EvaluationCounter.DROPPED,
    EvaluationCounter.FAILED,
    EvaluationCounter.UNWRITABLE,
)


@dataclass
class Family:
    """One metric and its samples, independent of any metrics library.

    ``kind`` is ``"gauge"``, ``"counter"`` (``name`` without ``_total``) or
    ``"gaugehistogram"``, whose ``histograms`` hold, per label values, the cumulative
    count at each upper bound (the last one ``inf``) and the sum.
    """

    name: str
    kind: str
    documentation: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)
    histograms: list[tuple[tuple[str, ...], list[tuple[float, int]], float]] = field(
        default_factory=list
    )


Source = Callable[[], Iterable[Family]]
_sources: list[Source] = []


def add_source(source: Source) -> None:
    """Report ``source()``'s families with every scrape. Adding one twice is a no-op.

    It runs at scrape time in the scraped process: read what it reports from the database
    (as everything here does) so every process gives the same answer.
    """
    if source not in _sources:
        _sources.append(source)


def remove_source(source: Source) -> None:
    if source in _sources:
        _sources.remove(source)


def collect(now: dt.datetime | None = None) -> list[Family]:
    """Every family, read now: the app's own, then those of :func:`add_source`."""
    now = now or timezone.now()
    window = get_settings().METRICS_WINDOW_SECONDS
    since = now - dt.timedelta(seconds=window)
    states = connection_states(connected_only=False)
    names = {state.id: state.name for state in states}
    families = [
        *_connection_families(states, now),
        _event_counts(names),
        _latency(names, since),
        _receipts(names, since),
        _evaluations(),
        Family(
            f"{PREFIX}_metrics_window_seconds",
            "gauge",
            "The window of the delivery latency and webhook receipt metrics.",
            samples=[((), float(window))],
        ),
    ]
    for source in list(_sources):
        families.extend(source())
    return families


def _connection_families(states: list[ConnectionState], now: dt.datetime) -> list[Family]:
    labels = ("connection",)
    connected = Family(
        f"{PREFIX}_connection_connected",
        "gauge",
        "1 when the connection forwards events, 0 when it is disconnected.",
        labels,
    )
    healthy = Family(
        f"{PREFIX}_connection_healthy",
        "gauge",
        "0 while Segment refuses the connection's write key or endpoint (401, 403, ...).",
        labels,
    )
    paused = Family(
        f"{PREFIX}_connection_paused",
        "gauge",
        "1 while delivery waits out a backoff, Retry-After or probe after a failure.",
        labels,
    )
    oldest = Family(
        f"{PREFIX}_oldest_waiting_event_age_seconds",
        "gauge",
        "How long the connection's longest-waiting (pending or failed) event has waited.",
        labels,
    )
    for state in states:
        key = (state.name,)
        connected.samples.append((key, float(state.connected)))
        healthy.samples.append((key, float(state.healthy)))
        paused.samples.append((key, float(state.paused(now))))
        oldest.samples.append((key, state.lag_seconds(now)))
    return [connected, healthy, paused, oldest]


def _event_counts(names: Mapping[uuid.UUID, str]) -> Family:
    family = Family(
        f"{PREFIX}_events",
        "gauge",
        "Events waiting (pending), retrying (failed) or given up (dead, test events from "
        "the admin left out), per connection.",
        ("connection", "status"),
    )
    rows = (
        Event.objects.filter(status__in=COUNTED_STATUSES)
        .exclude(status=Event.Status.DEAD, user_id=TEST_USER_ID)  # failed admin tests
        .order_by()
        .values_list("connection_id", "status")
        .annotate(n=Count("pk"))
    )
    return _per_connection(family, names, COUNTED_STATUSES, rows)


def _latency(names: Mapping[uuid.UUID, str], since: dt.datetime) -> Family:
    family = Family(
        f"{PREFIX}_delivery_latency_seconds",
        "gaugehistogram",
        "Time from entering the queue to delivery, of the events delivered within the "
        "metrics window.",
        ("connection",),
    )
    waited = ExpressionWrapper(F("delivered_at") - F("queued_at"), output_field=DurationField())
    buckets = {
        f"le_{n}": Count("pk", filter=Q(delivered_at__lte=F("queued_at") + _seconds(bound)))
        for n, bound in enumerate(LATENCY_BUCKETS)
    }
    rows = (
        Event.objects.filter(connection_id__in=list(names), delivered_at__gte=since)
        .order_by()
        .values("connection_id")
        .annotate(count=Count("pk"), total=Sum(waited), **buckets)
    )
    found = {row["connection_id"]: row for row in rows}
    for connection_id, name in names.items():
        row = found.get(connection_id)
        cumulative = [
            (bound, row[f"le_{n}"] if row else 0) for n, bound in enumerate(LATENCY_BUCKETS)
        ]
        cumulative.append((float("inf"), row["count"] if row else 0))
        total = row["total"] if row and row["total"] is not None else dt.timedelta()
        family.histograms.append(((name,), cumulative, max(0.0, total.total_seconds())))
    return family


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)


def _receipts(names: Mapping[uuid.UUID, str], since: dt.datetime) -> Family:
    family = Family(
        f"{PREFIX}_webhook_receipts",
        "gauge",
        "Signed webhooks received within the metrics window, by outcome.",
        ("connection", "outcome"),
    )
    rows = (
        WebhookReceipt.objects.filter(connection_id__in=list(names), received_at__gte=since)
        .order_by()
        .values_list("connection_id", "outcome")
        .annotate(n=Count("pk"))
    )
    return _per_connection(family, names, WebhookReceipt.Outcome.values, rows)


def _per_connection(
    family: Family,
    names: Mapping[uuid.UUID, str],
    values: Sequence[str],
    rows: Iterable[tuple[uuid.UUID, str, int]],
) -> Family:
    """``family`` with a sample per connection and value: the count ``rows`` has for the
    pair, or 0 (a series that is missing is not a zero to Prometheus)."""
    counts = {(connection_id, value): n for connection_id, value, n in rows}
    for connection_id, name in names.items():
        for value in values:
            family.samples.append(((name, value), float(counts.get((connection_id, value), 0))))
    return family


def _evaluations() -> Family:
    totals = EvaluationCounter.objects.totals()
    family = Family(
        f"{PREFIX}_evaluations_not_forwarded",
        "counter",
        "Evaluations not forwarded, over all processes: dropped (buffer full), failed (the "
        "SDK could not evaluate), unwritable (the database refused them).",
        ("reason",),
    )
    for reason in EVALUATION_REASONS:
        family.samples.append(((reason,), float(totals.get(reason, 0))))
    return family
