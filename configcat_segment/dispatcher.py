"""Moving due events from the outbox to Segment, one connection at a time.

One call of :meth:`Dispatcher.deliver` is one round for one connection:

1. **Claim** up to ``BATCH_SIZE`` due events in a short transaction (``SELECT … FOR UPDATE
   SKIP LOCKED`` where the database has it; SQLite serialises writers instead). Claiming
   counts an attempt and moves ``next_attempt_at`` to the end of a lease: a worker that
   dies holding events loses them to the next worker once the lease runs out.
2. **Send** them outside any transaction, in as few ``/v1/batch`` requests as Segment's
   limits allow. A request Segment refuses (400) is split in halves until the refused
   messages stand alone; the rest are delivered.
3. **Settle** the outcome in one transaction, one ``UPDATE`` per outcome. Each ``UPDATE``
   matches only rows still carrying this round's lease, so a worker whose lease expired
   (and whose events someone else claimed since) changes nothing.

Signals (``event_delivered`` per request Segment accepted, ``event_dead`` per group) are
sent after the settling transaction commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from django.db import connections, router, transaction
from django.db.models import F, Max, Min
from django.dispatch import Signal
from django.utils import timezone

from . import transport
from .batching import plan_batches
from .conf import AppSettings, get_settings
from .messages import isoformat
from .models import Event, SegmentConnection
from .retry import (
    Verdict,
    backoff_seconds,
    classify,
    give_up_reason,
    parse_retry_after,
    probe_seconds,
)
from .signals import event_dead, event_delivered

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

WAITING = (Event.Status.PENDING, Event.Status.FAILED)
OVERSIZED_ERROR = (
    "Over Segment's limit of 32 KB per message (or 500 KB per request); it was never sent."
)


class Sender(Protocol):
    def __call__(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        endpoint: str,
        write_key: str,
        sent_at: str,
        gzip: bool,
        timeout: float,
    ) -> transport.Answer: ...


@dataclass
class Report:
    """What one or more rounds did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0  # failed, will be tried again
    dead: int = 0
    waiting: int = 0  # held back because the connection is unhealthy
    lost: int = 0  # settled too late: another worker had claimed them since
    requests: int = 0
    more: bool = False  # a full batch was claimed: more may be due

    def add(self, other: Report) -> None:
        for f in fields(self):
            if f.name != "more":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "more"}


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed event: just what sending and settling it needs."""

    pk: int
    payload: dict[str, Any]
    attempts: int  # this one included
    queued_at: dt.datetime


@dataclass
class _Result:
    """Events that shared one outcome."""

    events: list[Claimed]
    verdict: Verdict
    error: str = ""
    retry_after: float | None = None


@dataclass
class _Settling:
    """Settling one round: its connection, time and lease, what it did, and what the
    signals will carry once the transaction commits."""

    connection: SegmentConnection
    now: dt.datetime
    lease_until: dt.datetime
    report: Report = field(default_factory=Report)
    delivered: list[list[Event]] = field(default_factory=list)
    dead: list[Event] = field(default_factory=list)


class Dispatcher:
    """Delivers due events. Safe to run in any number of threads and processes at once.

    ``clock``, ``random`` and ``send`` are there for tests (a fake clock drives an outage
    without waiting for it); ``settings`` defaults to the project's.
    """

    def __init__(
        self,
        *,
        clock: Clock = timezone.now,
        random: Callable[[], float] = random.random,
        send: Sender = transport.send,
        settings: AppSettings | None = None,
    ) -> None:
        self.clock = clock
        self.random = random
        self.send = send
        self.settings = settings or get_settings()
        self.db = router.db_for_write(Event)

    # -- public --------------------------------------------------------------------------

    def due_connections(self) -> list[uuid.UUID]:
        """Connections that have events due now."""
        due = Event.objects.using(self.db).due(self.clock()).order_by()
        return list(due.values_list("connection_id", flat=True).distinct())

    def deliver(self, connection_id: uuid.UUID) -> Report:
        """One round for one connection: claim, send, settle."""
        connection = SegmentConnection.objects.using(self.db).filter(pk=connection_id).first()
        if connection is None:
            return Report()
        now = self.clock()
        if not connection.is_healthy and (held := self._wait_for_probe(connection, now)):
            return Report(waiting=held)
        lease_until = now + dt.timedelta(seconds=self.settings.LEASE_SECONDS)
        events = self._claim(connection, now, lease_until)
        if not events:
            return Report()
        results, requests = self._send_all(connection, events, now)
        report = self._settle(connection, results, now, lease_until)
        report.claimed, report.requests = len(events), requests
        report.more = len(events) >= self.settings.BATCH_SIZE
        return report

    def deliver_due(self) -> Report:
        """Deliver everything due now, connection after connection, until nothing is."""
        total = Report()
        while connection_ids := self.due_connections():
            before = total.claimed + total.waiting
            for connection_id in connection_ids:
                total.add(self.deliver(connection_id))
            if total.claimed + total.waiting == before:  # due, yet claimed by others
                break
        return total

    # -- claim ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction for the dispatcher's own bookkeeping.

        Nothing it writes needs to survive a database crash: a lost claim is a lease that
        never was, a lost "delivered" an event sent again with the same messageId (which
        Segment dedupes). So on PostgreSQL it does not wait for the WAL to reach the disk,
        which would otherwise cost two disk flushes per batch. (Writing events, in the
        outbox, stays fully durable.)
        """
        with transaction.atomic(using=self.db):
            if connections[self.db].vendor == "postgresql":
                with connections[self.db].cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield

    def _claim(
        self, connection: SegmentConnection, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Claimed]:
        with self._transaction():
            due = (
                Event.objects.using(self.db)
                .due(now)
                .filter(connection=connection)
                # The partial "due" index gives this order; a tie-break would mean a sort.
                .order_by("next_attempt_at")
            )
            if connections[self.db].features.has_select_for_update_skip_locked:
                due = due.select_for_update(skip_locked=True)
            rows = list(
                due.values_list("pk", "payload", "attempts", "queued_at")[
                    : self.settings.BATCH_SIZE
                ]
            )
            if rows:
                Event.objects.using(self.db).filter(pk__in=[row[0] for row in rows]).update(
                    next_attempt_at=lease_until, attempts=F("attempts") + 1
                )
        return [
            Claimed(pk, payload, attempts + 1, queued) for pk, payload, attempts, queued in rows
        ]

    def _wait_for_probe(self, connection: SegmentConnection, now: dt.datetime) -> int:
        """Hold new events of an unhealthy connection until its next probe, if one is set.

        The time of the next probe lives on the events that wait for it (their
        ``next_attempt_at``), so events written meanwhile join them instead of probing.
        Returns how many events were held back; 0 means: probe now.
        """
        probe_at = (
            Event.objects.using(self.db)
            .filter(connection=connection, status__in=WAITING, next_attempt_at__gt=now)
            .aggregate(at=Min("next_attempt_at"))["at"]
        )
        if probe_at is None:
            return 0
        due = Event.objects.using(self.db).due(now).filter(connection=connection)
        return due.update(next_attempt_at=probe_at) or 0

    # -- send ----------------------------------------------------------------------------

    def _send_all(
        self, connection: SegmentConnection, events: list[Claimed], now: dt.datetime
    ) -> tuple[list[_Result], int]:
        """Send ``events`` in as few requests as the limits allow; the outcome of each."""
        sent_at = isoformat(now)
        plan = plan_batches(
            events, lambda e: e.payload, sent_at=sent_at, write_key=connection.write_key
        )
        results = [_Result(plan.oversized, Verdict.REJECTED, OVERSIZED_ERROR)]
        requests = 0
        stopped: _Result | None = None
        for batch in plan.batches:
            if stopped:  # the endpoint is down or refuses us: the rest shares that outcome
                stopped.events += batch
                continue
            batch_results, sent, stopped = self._send_bisecting(connection, batch, sent_at, now)
            results += batch_results
            requests += sent
        return results, requests

    def _send_bisecting(
        self,
        connection: SegmentConnection,
        batch: list[Claimed],
        sent_at: str,
        now: dt.datetime,
    ) -> tuple[list[_Result], int, _Result | None]:
        """Send one request; when Segment refuses it, split it until the culprits are alone.

        Returns the results, how many requests were made, and the result that stopped
        sending (a retryable error or an unhealthy connection), if one did.
        """
        results: list[_Result] = []
        groups = [batch]
        requests = 0
        while groups:
            group = groups.pop()
            answer = self.send(
                [e.payload for e in group],
                endpoint=connection.endpoint,
                write_key=connection.write_key,
                sent_at=sent_at,
                gzip=self.settings.GZIP,
                timeout=self.settings.HTTP_TIMEOUT_SECONDS,
            )
            requests += 1
            verdict = classify(answer.status)
            if verdict is Verdict.REJECTED and len(group) > 1:
                middle = len(group) // 2
                groups += [group[middle:], group[:middle]]
                continue
            retry_after = parse_retry_after(answer.retry_after, now)
            result = _Result(group, verdict, answer.error, retry_after)
            results.append(result)
            if verdict in (Verdict.RETRY, Verdict.UNHEALTHY):
                result.events = [e for g in [group, *reversed(groups)] for e in g]
                return results, requests, result
        return results, requests, None

    # -- settle --------------------------------------------------------------------------

    def _settle(
        self,
        connection: SegmentConnection,
        results: Iterable[_Result],
        now: dt.datetime,
        lease_until: dt.datetime,
    ) -> Report:
        settling = _Settling(connection, now, lease_until)
        with self._transaction():
            for result in results:
                if not result.events:
                    continue
                if result.verdict is Verdict.DELIVERED:
                    self._delivered(settling, result)
                elif result.verdict is Verdict.REJECTED:
                    self._dead(settling, result.events, result.error)
                elif result.verdict is Verdict.RETRY:
                    self._retry(settling, result)
                else:
                    self._unhealthy(settling, result)
            if settling.report.delivered and not connection.is_healthy:
                connection.mark_healthy()
                logger.info("configcat_segment: %s is healthy again", connection)
            self._signal_after_commit(settling)
        return settling.report

    def _update(self, settling: _Settling, events: Sequence[Claimed], **values: Any) -> int:
        """Update events that still carry this round's lease; count the ones that do not."""
        count: int = (
            Event.objects.using(self.db)
            .filter(pk__in=[e.pk for e in events], next_attempt_at=settling.lease_until)
            .update(**values)
        )
        if count < len(events):
            settling.report.lost += len(events) - count
            logger.warning(
                "configcat_segment: %d events were claimed by another worker after this "
                "one's lease ran out; their outcome here is discarded",
                len(events) - count,
            )
        return count

    def _mark(
        self, settling: _Settling, events: Sequence[Claimed], signal: Signal, **values: Any
    ) -> tuple[int, list[Event]]:
        """Settle events as ``values``: how many were still ours, and for ``signal``'s
        receivers (if it has any) those rows, whole, as settled (one query)."""
        count = self._update(settling, events, **values)
        if not count or not signal.has_listeners(Event):
            return count, []
        rows = Event.objects.using(self.db).filter(pk__in=[e.pk for e in events], **values)
        return count, list(rows.order_by("pk"))

    def _delivered(self, settling: _Settling, result: _Result) -> None:
        count, rows = self._mark(
            settling,
            result.events,
            event_delivered,
            status=Event.Status.DELIVERED,
            delivered_at=settling.now,
            last_error="",
        )
        settling.report.delivered += count
        if rows:
            settling.delivered.append(rows)

    def _dead(self, settling: _Settling, events: Sequence[Claimed], error: str) -> None:
        count, rows = self._mark(
            settling, events, event_dead, status=Event.Status.DEAD, last_error=error
        )
        settling.report.dead += count
        settling.dead += rows
        logger.warning("configcat_segment: %d events are dead: %s", count, error)

    def _retry(self, settling: _Settling, result: _Result) -> None:
        """Segment is unavailable: retry later, the connection's whole backlog together.

        The wait grows with the connection's failure streak (the most attempts any of its
        failed events has had), not with each event's own count, so the backlog stays one
        group that retries with one request per backoff step.
        """
        s = self.settings
        give_up: dict[str, list[Claimed]] = defaultdict(list)
        retrying: list[Claimed] = []
        for event in result.events:
            reason = give_up_reason(
                attempts=event.attempts,
                queued_at=event.queued_at,
                now=settling.now,
                max_attempts=s.MAX_ATTEMPTS,
                max_age_seconds=s.MAX_AGE_SECONDS,
            )
            if reason:
                give_up[f"{reason}. Last error: {result.error}"].append(event)
            else:
                retrying.append(event)
        for error, events in give_up.items():
            self._dead(settling, events, error)
        if not retrying:
            return
        failed = Event.objects.using(self.db).filter(
            connection=settling.connection, status=Event.Status.FAILED
        )
        streak = max(
            max(e.attempts for e in retrying),
            failed.aggregate(most=Max("attempts"))["most"] or 0,
        )
        delay = backoff_seconds(
            streak,
            base=s.RETRY_BASE_SECONDS,
            cap=s.RETRY_MAX_SECONDS,
            random=self.random,
            retry_after=result.retry_after,
        )
        retry_at = settling.now + dt.timedelta(seconds=delay)
        settling.report.retrying += self._update(
            settling,
            retrying,
            status=Event.Status.FAILED,
            next_attempt_at=retry_at,
            last_error=result.error,
        )
        self._hold_backlog(settling, retry_at)
        logger.warning(
            "configcat_segment: %d events will be retried in %.0f s: %s",
            len(retrying),
            delay,
            result.error,
        )

    def _unhealthy(self, settling: _Settling, result: _Result) -> None:
        """The connection, not the events, is at fault: they wait, attempts untouched."""
        connection, now = settling.connection, settling.now
        if connection.is_healthy:
            logger.error("configcat_segment: %s is unhealthy: %s", connection, result.error)
        connection.mark_unhealthy(result.error)
        since = connection.unhealthy_since or now
        delay = probe_seconds(
            max(0.0, (now - since).total_seconds()),
            base=self.settings.RETRY_BASE_SECONDS,
            cap=self.settings.RETRY_MAX_SECONDS,
            random=self.random,
        )
        probe_at = now + dt.timedelta(seconds=delay)
        settling.report.waiting += self._update(
            settling,
            result.events,
            status=Event.Status.FAILED,
            attempts=F("attempts") - 1,
            next_attempt_at=probe_at,
            last_error=result.error,
        )
        self._hold_backlog(settling, probe_at)

    def _hold_backlog(self, settling: _Settling, until: dt.datetime) -> None:
        """Make the connection's other due events wait too (not claimed: attempts untouched).

        While Segment is down, rate-limits us or refuses the connection, sending the rest of
        the backlog would only add failures: it waits behind the events that failed, so an
        outage costs one request per backoff step rather than one per batch.
        """
        due = Event.objects.using(self.db).due(settling.now).filter(connection=settling.connection)
        due.update(next_attempt_at=until)

    def _signal_after_commit(self, settling: _Settling) -> None:
        def send() -> None:
            for events in settling.delivered:
                event_delivered.send(sender=Event, events=events)
            if settling.dead:
                event_dead.send(sender=Event, events=settling.dead)

        if settling.delivered or settling.dead:
            transaction.on_commit(send, using=self.db)
