"""Reconciling a connection: read the audit log since its point, forward what no webhook did.

:func:`reconcile` reads the connection's product audit log from its reconciled point up
to ``RECONCILE_TOLERANCE_SECONDS`` ago (a webhook ConfigCat is still retrying may arrive
until then), in windows of ``RECONCILE_WINDOW_SECONDS``. For each window it asks for the
product's setting-value changes, then for those of each config + environment the
connection has received webhooks from; matches them against the changes the webhooks
delivered (:mod:`.matching`); and writes a "Feature Flag Changed" event for each change
no webhook delivered. The point advances with each window written whole, in the same
transaction; an error leaves it where it was, writes nothing for that window, and is
kept on the connection as its reconciliation health.

:func:`run_due` is the periodic run every delivery backend calls: it reconciles the
connections whose interval has passed. A process *claims* a connection before reading
(a conditional ``UPDATE``: one process wins, whatever the database), so two workers
reconcile it once; and should a claim run out mid-way, the unique ``messageId`` still
keeps each change in the events table once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import get_settings
from ..delivery import outbox
from ..models import Event, SegmentConnection
from . import claims, forward, received
from .answers import AuditLogError
from .client import AuditLogClient
from .matching import Scope, ScopedEntry, match

logger = logging.getLogger(__name__)

# A connection reconciled for the first time starts this long ago (or when it was made).
FIRST_LOOKBACK = dt.timedelta(days=1)

ALREADY_FORWARDED = "already_forwarded"
OTHER_SCOPE = "other_config_or_environment"


class Busy(Exception):
    """Another process is reconciling this connection now."""


@dataclasses.dataclass
class Outcome:
    """What one reconciliation of one connection did (or, in a dry run, would do)."""

    connection: SegmentConnection
    dry_run: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None  # the end of the last window read whole
    windows: int = 0
    requests: int = 0
    entries: int = 0
    matched: int = 0
    forwarded: int = 0
    truncated: int = 0
    complete: bool = True  # False: time ran out; the rest is read next time
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error: str = ""
    error_kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": {"id": str(self.connection.pk), "name": self.connection.name},
            "dry_run": self.dry_run,
            "since": self.since,
            "until": self.until,
            "windows": self.windows,
            "requests": self.requests,
            "entries": self.entries,
            "matched": self.matched,
            "forwarded": self.forwarded,
            "truncated": self.truncated,
            "skipped": dict(sorted(self.skipped.items())),
            "complete": self.complete,
            "changes": self.changes,
            "error": self.error,
            "error_kind": self.error_kind,
        }


def reconcilable() -> Any:
    """Connections reconciliation applies to: connected, forwarding changes, with a
    product id and a Public API credential."""
    return (
        SegmentConnection.objects.filter(connected=True, forward_changes=True)
        .exclude(product_id="")
        .exclude(configcat_api_user="")
        .exclude(configcat_api_password="")
    )


def default_start(connection: SegmentConnection, now: dt.datetime) -> dt.datetime:
    return max(connection.created_at, now - FIRST_LOOKBACK)


def run_due(
    now: dt.datetime | None = None, *, should_stop: Callable[[], bool] = lambda: False
) -> list[Outcome]:
    """Reconcile every connection whose ``RECONCILE_INTERVAL_SECONDS`` has passed.

    Safe to call from any number of processes at once; errors are recorded on their
    connections and logged, never raised. ``should_stop`` (a runner stopping) is asked
    between windows and connections.
    """
    fixed, now = now, now or timezone.now()
    due_before = now - dt.timedelta(seconds=get_settings().RECONCILE_INTERVAL_SECONDS)
    candidates = (
        reconcilable()
        .filter(
            Q(reconcile_checked_at__isnull=True) | Q(reconcile_checked_at__lte=due_before),
            Q(reconcile_locked_until__isnull=True) | Q(reconcile_locked_until__lte=now),
        )
        .order_by("name")
    )
    outcomes = []
    for connection in candidates:
        if should_stop():
            break
        # Each connection at the time it is reached (unless ``now`` was given): reading
        # the ones before may have taken minutes, and a claim dated from the start of the
        # run would have run out already.
        current = fixed or timezone.now()
        try:
            outcomes.append(
                reconcile(connection, now=current, due_before=due_before, should_stop=should_stop)
            )
        except Busy:
            continue  # another process took it meanwhile
        except Exception:
            logger.exception("configcat_segment: reconciling %s failed", connection.pk)
    return outcomes


def reconcile(
    connection: SegmentConnection,
    *,
    since: dt.datetime | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    due_before: dt.datetime | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Reconcile ``connection`` from ``since`` (default: its point). Raises :class:`Busy`
    when another process holds it; records any other failure on the connection."""
    settings = get_settings()
    now = now or timezone.now()
    started = time.monotonic()
    lease = dt.timedelta(seconds=settings.LEASE_SECONDS)
    tolerance = dt.timedelta(seconds=settings.RECONCILE_TOLERANCE_SECONDS)
    window = dt.timedelta(seconds=settings.RECONCILE_WINDOW_SECONDS)
    start = since or connection.reconciled_until or default_start(connection, now)
    outcome = Outcome(connection, dry_run=dry_run, since=start)
    held = None if dry_run else claims.claim(connection, now, lease, due_before)
    if not dry_run and held is None:
        raise Busy(connection.pk)

    def current() -> dt.datetime:
        return now + dt.timedelta(seconds=time.monotonic() - started)

    # No new window once half the claim has passed; no Retry-After wait past most of it.
    budget = settings.LEASE_SECONDS / 2
    client = AuditLogClient(
        get_settings().CONFIGCAT_API_BASE_URL,
        connection.configcat_api_user,
        connection.configcat_api_password,
        timeout=settings.HTTP_TIMEOUT_SECONDS,
        deadline=started + settings.LEASE_SECONDS - settings.HTTP_TIMEOUT_SECONDS - 1,
    )
    retry_after: float | None = None
    try:
        with client:
            scopes = _scopes(connection, start - tolerance, now, dry_run=dry_run)
            window_start, until = start, now - tolerance
            while window_start < until:
                if time.monotonic() - started > budget or should_stop():
                    outcome.complete = False
                    break
                if held is not None and not claims.renew(held, current() + lease):
                    outcome.complete = False  # it ran out, and another process took it
                    break
                window_end = min(window_start + window, until)
                _window(client, connection, scopes, window_start, window_end, tolerance, outcome)
                outcome.until = window_end
                window_start = window_end
    except AuditLogError as exc:
        outcome.error, outcome.error_kind, retry_after = exc.message, exc.kind, exc.retry_after
        logger.warning("configcat_segment: reconciling %s: %s", connection.name, exc.message)
    except Exception as exc:  # a bug, the database: never marked healthy for it
        outcome.error_kind = "internal"
        outcome.error = f"Reconciliation failed unexpectedly ({type(exc).__name__}); see the log."
        logger.exception("configcat_segment: reconciling %s failed", connection.name)
    finally:
        outcome.requests = client.requests
        if held is not None:
            claims.finish(connection, held, outcome.error, now, retry_after)
    return outcome


def _scopes(
    connection: SegmentConnection, since: dt.datetime, now: dt.datetime, *, dry_run: bool
) -> list[Scope]:
    """The scopes to ask about: those known, and those of the webhooks sent since
    ``since`` (of all webhooks, the first time). A dry run remembers nothing new."""
    known = {(s.config_id, s.environment_id): s for s in received.known_scopes(connection)}
    events = (
        received.webhook_events(connection, since, now + dt.timedelta(days=1))
        if known
        else received.webhook_events(connection)
    )
    found = received.scopes_of(events.iterator())
    if found and not dry_run:
        received.remember(connection, found.values(), now)
    return list({**known, **found}.values())


def _window(
    client: AuditLogClient,
    connection: SegmentConnection,
    scopes: list[Scope],
    start: dt.datetime,
    end: dt.datetime,
    tolerance: dt.timedelta,
    outcome: Outcome,
) -> None:
    """Read, match and (unless a dry run) write one window; the point moves with it."""
    product = connection.product_id
    everything = {e.audit_log_id for e in client.entries(product, start=start, end=end)}
    scoped: dict[int, ScopedEntry] = {}
    if everything:  # a quiet window needs no question per scope
        for scope in scopes:
            for entry in client.entries(
                product,
                start=start,
                end=end,
                config_id=scope.config_id,
                environment_id=scope.environment_id,
            ):
                scoped.setdefault(entry.audit_log_id, ScopedEntry(entry, scope))
    outcome.windows += 1
    outcome.entries += len(everything | set(scoped))
    outcome.skipped[OTHER_SCOPE] += len(everything - set(scoped))
    delivered = match(
        list(scoped.values()),
        received.received_changes(connection, start - tolerance, end + tolerance),
        tolerance,
    )
    missed = [s for s in scoped.values() if delivered[s.entry.audit_log_id] is None]
    outcome.matched += len(scoped) - len(missed)
    built = {s.entry.audit_log_id: forward.flag_changed_message(connection, s) for s in missed}
    ids = [item.message["messageId"] for item in built.values()]
    existing = set(Event.objects.filter(message_id__in=ids).values_list("message_id", flat=True))
    new = [s for s in missed if built[s.entry.audit_log_id].message["messageId"] not in existing]
    outcome.skipped[ALREADY_FORWARDED] += len(missed) - len(new)
    created: list[Event] = []
    with transaction.atomic():
        for scoped_entry in new:
            item = built[scoped_entry.entry.audit_log_id]
            if not outcome.dry_run:
                event = outbox.build_event(connection, item.message, flag_key=item.flag_key)
                try:
                    with transaction.atomic():
                        created += outbox.enqueue([event])
                except IntegrityError:  # written by another process since the lookup
                    outcome.skipped[ALREADY_FORWARDED] += 1
                    continue
            outcome.changes.append(forward.describe(scoped_entry, item.message))
        if not outcome.dry_run:
            SegmentConnection.objects.filter(pk=connection.pk).filter(
                Q(reconciled_until__isnull=True) | Q(reconciled_until__lt=end)
            ).update(reconciled_until=end)
            outbox.announce_changes(connection, created)
    outcome.forwarded = len(outcome.changes)
    outcome.truncated += sum(1 for s in new if s.entry.truncated)
    outcome.skipped = +outcome.skipped  # no zero counts
