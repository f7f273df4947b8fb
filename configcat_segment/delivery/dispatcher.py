"""Moving due events from the outbox to Segment, one connection at a time.

One call of :meth:`Dispatcher.deliver` is one round for one connection:

1. **Claim** up to ``BATCH_SIZE`` due events in a short transaction (``SELECT … FOR UPDATE
   SKIP LOCKED`` where the database has it; SQLite serialises writers instead). Claiming
   counts an attempt and moves ``next_attempt_at`` to the end of a lease: a worker that
   dies holding events loses them to the next worker once the lease runs out. An event
   claimed more than ``MAX_ATTEMPTS`` times goes ``dead`` instead of being sent again, so
   a message that keeps killing its worker cannot loop forever.
2. **Send** them outside any transaction, in as few ``/v1/batch`` requests as Segment's
   limits allow, and **settle** each request's outcome as soon as it is known, in its own
   short transaction. Settling matches only rows still carrying this round's lease, so a
   worker whose lease expired (and whose events someone else claimed since) changes
   nothing. No request starts unless it can finish (``HTTP_TIMEOUT_SECONDS``) before the
   lease runs out; what is left then goes back to the queue, attempts untouched.
3. A request Segment refuses (400) is split in halves until the refused messages stand
   alone (at most ``MAX_SPLIT_REQUESTS`` extra requests per round); they go ``dead`` if
   anything else got through in the round. If nothing did, Segment refuses the request
   rather than the messages (a proxy, say): they are retried with backoff instead, and the
   connection is marked unhealthy when more than one was refused.
4. When Segment is unavailable (5xx, 429, no answer) or refuses the connection (401,
   403, …), the connection's ``delivery_paused_until`` is set: no request is made for it
   before then, however many events are written meanwhile.

Signals (``event_delivered`` per request Segment accepted, ``event_dead`` per group) are
sent robustly after the settling transaction commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from django.db import connections, router, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, TextField, Value
from django.db.models.functions import Cast, Coalesce, Greatest
from django.dispatch import Signal
from django.utils import timezone

from ..conf import AppSettings, get_settings
from ..models import Event, SegmentConnection
from ..segment import transport
from ..segment.batching import plan_batches
from ..segment.payloads import isoformat
from ..segment.retry import (
    Verdict,
    backoff_seconds,
    give_up_reason,
    parse_retry_after,
    probe_seconds,
)
from ..segment.wire import Messages
from ..signals import event_dead, event_delivered
from .credentials import CREDENTIAL_FIELDS

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

OVERSIZED_ERROR = (
    "Over Segment's limit of 32 KB per message (or 500 KB per request); it was never sent."
)
# Finding k refused messages among n takes about 2·k·log2(n / k) requests: 64 find a few
# among thousands, and bound what a gateway refusing everything costs per round.
MAX_SPLIT_REQUESTS = 64


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
    released: int = 0  # claimed but not sent: back in the queue, attempts untouched
    lost: int = 0  # settled too late: another worker had claimed them since
    requests: int = 0
    more: bool = False  # more may be due for this connection now

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
    text: str  # the message, as stored: sent as it is
    attempts: int  # this one included
    queued_at: dt.datetime


def _text_size(event: Claimed) -> int:
    text = event.text
    return len(text) if text.isascii() else len(text.encode())


@dataclass
class _Signals:
    """What ``event_delivered`` and ``event_dead`` will carry once a settlement commits."""

    delivered: list[list[Event]] = field(default_factory=list)
    dead: list[Event] = field(default_factory=list)

    def send(self) -> None:
        for events in self.delivered:
            event_delivered.send_robust(sender=Event, events=events)
        if self.dead:
            event_dead.send_robust(sender=Event, events=self.dead)


@dataclass
class _Round:
    """One round for one connection: its time and lease, and what it did so far."""

    connection: SegmentConnection
    now: dt.datetime
    lease_until: dt.datetime
    send_until: dt.datetime  # no request starts later: it could outlast the lease
    report: Report = field(default_factory=Report)
    refused: list[tuple[Claimed, str]] = field(default_factory=list)  # alone, with the error
    signals: _Signals = field(default_factory=_Signals)


@dataclass
class _Request:
    """Events to send together, and Segment's refusal of the request they were split
    from, if they were."""

    events: list[Claimed]
    refusal: str | None = None


class Dispatcher:
    """Delivers due events. Safe to run in any number of threads and processes at once.

    ``clock``, ``random`` and ``send`` are there for tests (a fake clock drives an outage
    without waiting for it); ``settings`` defaults to the project's. ``should_stop`` is
    asked between requests: once it says yes, a round sends nothing more and puts what it
    did not send back in the queue.
    """

    def __init__(
        self,
        *,
        clock: Clock = timezone.now,
        random: Callable[[], float] = random.random,
        send: Sender = transport.send,
        settings: AppSettings | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.clock = clock
        self.random = random
        self.send = send
        self.settings = settings or get_settings()
        self.should_stop = should_stop
        self.db = router.db_for_write(Event)

    # -- public --------------------------------------------------------------------------

    def due_connections(self) -> list[uuid.UUID]:
        """Connected connections that have events due now and whose delivery is not paused.

        A disconnected connection forwards nothing: its queued events wait for it to be
        reconnected.

        One probe of the due index per connection, however long the backlog is.
        """
        now = self.clock()
        due = Event.objects.using(self.db).due(now).filter(connection=OuterRef("pk"))
        ready = SegmentConnection.objects.using(self.db).filter(
            Q(delivery_paused_until__isnull=True) | Q(delivery_paused_until__lte=now),
            Exists(due),
            connected=True,
        )
        return list(ready.order_by().values_list("pk", flat=True))

    def deliver(self, connection_id: uuid.UUID) -> Report:
        """One round for one connection: claim, then send and settle request by request."""
        connection = SegmentConnection.objects.using(self.db).filter(pk=connection_id).first()
        now = self.clock()
        if connection is None or not connection.connected or connection.is_paused(now):
            return Report()
        s = self.settings
        lease_until = now + dt.timedelta(seconds=s.LEASE_SECONDS)
        send_until = lease_until - dt.timedelta(seconds=s.HTTP_TIMEOUT_SECONDS + 1)
        events = self._claim(connection, now, lease_until)
        if not events:
            return Report()
        rnd = _Round(connection, now, lease_until, send_until)
        rnd.report.claimed = len(events)
        sendable = [e for e in events if e.attempts <= s.MAX_ATTEMPTS]
        if len(sendable) < len(events):
            with self._settling(rnd):
                self._dead(
                    rnd,
                    [e for e in events if e.attempts > s.MAX_ATTEMPTS],
                    f"Claimed more than {s.MAX_ATTEMPTS} times without an outcome: "
                    "whatever was sending it stopped (crashed, was killed, or outlasted "
                    "LEASE_SECONDS) every time",
                )
        self._send_all(rnd, sendable)
        rnd.report.more = len(events) >= s.BATCH_SIZE or rnd.report.released > 0
        return rnd.report

    def deliver_due(self) -> Report:
        """Deliver everything due now, connection after connection, until nothing is."""
        total = Report()
        while connection_ids := self.due_connections():
            before = total.claimed
            for connection_id in connection_ids:
                total.add(self.deliver(connection_id))
            if total.claimed == before:  # due, yet claimed by others
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
            # The stored text, not a decoded dict: it is sent as it is.
            rows = list(
                due.annotate(text=Cast("payload", TextField())).values_list(
                    "pk", "text", "attempts", "queued_at", "status"
                )[: self.settings.BATCH_SIZE]
            )
            # A claimed event is pending (a failed one being retried becomes pending
            # again): a pending event due later than now is one being sent, which
            # requeueing (failed and dead events only) and fixing the connection's
            # credentials (failed events only) leave alone, so neither can make it due
            # again, and sent twice, while this round sends it.
            claim = {"next_attempt_at": lease_until, "attempts": F("attempts") + 1}
            events = Event.objects.using(self.db)
            pending = [row[0] for row in rows if row[4] != Event.Status.FAILED]
            failed = [row[0] for row in rows if row[4] == Event.Status.FAILED]
            if pending:
                events.filter(pk__in=pending).update(**claim)
            if failed:
                events.filter(pk__in=failed).update(**claim, status=Event.Status.PENDING)
        return [Claimed(pk, text, attempts + 1, queued) for pk, text, attempts, queued, _ in rows]

    # -- send ----------------------------------------------------------------------------

    def _send_all(self, rnd: _Round, events: list[Claimed]) -> None:
        """Send ``events`` in as few requests as the limits allow, settling each outcome."""
        connection = rnd.connection
        plan = plan_batches(
            events,
            sent_at=isoformat(rnd.now),
            write_key=connection.write_key,
            text_size=_text_size,
        )
        if plan.oversized:
            with self._settling(rnd):
                self._dead(rnd, plan.oversized, OVERSIZED_ERROR)
        requests = deque(_Request(batch) for batch in plan.batches)
        max_requests = len(plan.batches) + MAX_SPLIT_REQUESTS
        while requests and rnd.report.requests < max_requests:
            if rnd.report.requests and not self._may_send_more(rnd):
                break
            request = requests.popleft()
            answer = self.send(
                Messages([e.text for e in request.events]),
                endpoint=connection.endpoint,
                write_key=connection.write_key,
                sent_at=isoformat(self.clock()),  # the same length as the plan's
                gzip=self.settings.GZIP,
                timeout=self.settings.HTTP_TIMEOUT_SECONDS,
            )
            rnd.report.requests += 1
            verdict = answer.verdict
            group = request.events
            if verdict is Verdict.REJECTED:
                if len(group) > 1:
                    middle = len(group) // 2
                    halves = [group[:middle], group[middle:]]
                    requests.extendleft(_Request(half, answer.error) for half in reversed(halves))
                else:
                    rnd.refused.append((group[0], answer.error))
                continue
            with self._settling(rnd):
                if verdict is Verdict.DELIVERED:
                    self._delivered(rnd, group)
                    continue
                # Segment is unavailable or refuses the connection: stop, and let the
                # messages it refused this round share that fate rather than die for it.
                group = group + [event for event, _ in rnd.refused]
                rnd.refused = []
                if verdict is Verdict.RETRY:
                    self._retry(rnd, group, answer.error, answer.retry_after)
                else:
                    self._unhealthy(rnd, group, answer.error)
            break
        with self._settling(rnd):
            if rnd.refused:
                self._refused(rnd)
            # Refused, but not narrowed down in time: tried, so retried with backoff (put
            # back as untried, the next round would only start the same search over). Each
            # part comes back on its own, a step after the one before, so the next rounds
            # search smaller batches and the search goes deeper each time.
            unresolved = [(r.events, r.refusal) for r in requests if r.refusal is not None]
            for step, (group, refusal) in enumerate(unresolved):
                self._retry(rnd, group, refusal, retry_after=None, pause=False, step=step)
            untried = [e for r in requests if r.refusal is None for e in r.events]
            if untried:
                self._release(rnd, untried)

    def _may_send_more(self, rnd: _Round) -> bool:
        """Whether the round may start another request: not if it could outlast the lease,
        if the runner is stopping, or if another dispatcher paused the connection since."""
        if self.clock() >= rnd.send_until or self.should_stop():
            return False
        rnd.connection.delivery_paused_until = (
            SegmentConnection.objects.using(self.db)
            .filter(pk=rnd.connection.pk)
            .values_list("delivery_paused_until", flat=True)
            .first()
        )
        return not rnd.connection.is_paused(self.clock())

    # -- settle --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _settling(self, rnd: _Round) -> Iterator[None]:
        """A transaction settling outcomes; their signals are sent once it commits."""
        rnd.signals = _Signals()
        with self._transaction():
            yield
            if rnd.signals.delivered or rnd.signals.dead:
                transaction.on_commit(rnd.signals.send, using=self.db)

    def _update(self, rnd: _Round, events: Sequence[Claimed], **values: Any) -> int:
        """Update events that still carry this round's lease; count the ones that do not."""
        count: int = (
            Event.objects.using(self.db)
            .filter(pk__in=[e.pk for e in events], next_attempt_at=rnd.lease_until)
            .update(**values)
        )
        if count < len(events):
            rnd.report.lost += len(events) - count
            logger.warning(
                "configcat_segment: %d events were claimed again (this round's lease ran "
                "out) or put back in the queue (requeued, or their connection fixed) while "
                "this round sent them; its outcome for them is discarded",
                len(events) - count,
            )
        return count

    def _mark(
        self, rnd: _Round, events: Sequence[Claimed], signal: Signal, **values: Any
    ) -> tuple[int, list[Event]]:
        """Settle events as ``values``: how many were still ours, and for ``signal``'s
        receivers (if it has any) those rows, whole, as settled (one query)."""
        count = self._update(rnd, events, **values)
        if not count or not signal.has_listeners(Event):
            return count, []
        rows = Event.objects.using(self.db).filter(pk__in=[e.pk for e in events], **values)
        return count, list(rows.order_by("pk"))

    def _delivered(self, rnd: _Round, events: Sequence[Claimed]) -> None:
        count, rows = self._mark(
            rnd,
            events,
            event_delivered,
            status=Event.Status.DELIVERED,
            delivered_at=self.clock(),
            last_error="",
        )
        rnd.report.delivered += count
        if rows:
            rnd.signals.delivered.append(rows)
        if count and not rnd.connection.is_healthy:
            rnd.connection.mark_healthy()
            logger.info("configcat_segment: %s is healthy again", rnd.connection)

    def _dead(self, rnd: _Round, events: Sequence[Claimed], error: str) -> None:
        count, rows = self._mark(
            rnd, events, event_dead, status=Event.Status.DEAD, last_error=error
        )
        rnd.report.dead += count
        rnd.signals.dead += rows
        logger.warning("configcat_segment: %d events are dead: %s", count, error)

    def _refused(self, rnd: _Round) -> None:
        """Messages Segment refused even alone: dead, unless it refused everything.

        When nothing got through in the round, the refusal may be of the request rather
        than of these messages (a gateway answering 400 to everything): they are retried
        with backoff instead, and die only as any retried event does.
        """
        refused, rnd.refused = rnd.refused, []
        by_error: dict[str, list[Claimed]] = {}
        for event, error in refused:
            by_error.setdefault(error, []).append(event)
        if rnd.report.delivered:
            for error, events in by_error.items():
                self._dead(rnd, events, error)
            return
        error = refused[-1][1]
        if len(refused) > 1:
            error = f"Segment refused every message it was sent, even one at a time: {error}"
        events = [event for event, _ in refused]
        self._retry(rnd, events, error, retry_after=None, unhealthy=len(refused) > 1)

    def _verdict_holds(self, rnd: _Round) -> bool:
        """Whether what Segment said of the connection in this round still applies to it.

        Locks the connection's row first (as saving it in the admin does, before that
        touches its events, so the two never deadlock), and says no if its write key or
        endpoint changed since the round began: an answer to the old credentials says
        nothing about the new ones.
        """
        rows = SegmentConnection.objects.using(self.db).select_for_update()
        current = rows.filter(pk=rnd.connection.pk).values_list(*CREDENTIAL_FIELDS).first()
        return current == tuple(getattr(rnd.connection, name) for name in CREDENTIAL_FIELDS)

    def _retry(
        self,
        rnd: _Round,
        events: Sequence[Claimed],
        error: str,
        retry_after: str | None,
        *,
        unhealthy: bool = False,
        pause: bool = True,
        step: int = 0,
    ) -> None:
        """Retry these events after a backoff; Segment being unavailable, ``pause`` the
        connection until then.

        The wait grows with the connection's failure streak (the most attempts any of its
        failed events has had), not with each event's own count, so the backlog stays one
        group that retries with one request per backoff step. It counts from now, when the
        answer came, not from the start of the round; ``step`` adds that many
        ``RETRY_BASE_SECONDS``.
        """
        if not self._verdict_holds(rnd):
            self._release(rnd, events)
            return
        s, now = self.settings, self.clock()
        give_up: dict[str, list[Claimed]] = {}
        retrying: list[Claimed] = []
        for event in events:
            reason = give_up_reason(
                attempts=event.attempts,
                queued_at=event.queued_at,
                now=now,
                max_attempts=s.MAX_ATTEMPTS,
                max_age_seconds=s.MAX_AGE_SECONDS,
            )
            if reason:
                give_up.setdefault(f"{reason}. Last error: {error}", []).append(event)
            else:
                retrying.append(event)
        for reason, dying in give_up.items():
            self._dead(rnd, dying, reason)
        if not retrying:
            return
        failed = Event.objects.using(self.db).filter(
            connection=rnd.connection, status=Event.Status.FAILED
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
            retry_after=parse_retry_after(retry_after, now),
        )
        retry_at = now + dt.timedelta(seconds=delay + step * s.RETRY_BASE_SECONDS)
        count = self._update(
            rnd,
            retrying,
            status=Event.Status.FAILED,
            next_attempt_at=retry_at,
            last_error=error,
        )
        rnd.report.retrying += count
        if not count:  # all claimed by another worker since: its verdict, not ours
            return
        if unhealthy:
            self._mark_unhealthy(rnd, error)
        if pause:
            self._pause(rnd, retry_at)
        logger.warning(
            "configcat_segment: %d events will be retried in %.0f s: %s", count, delay, error
        )

    def _unhealthy(self, rnd: _Round, events: Sequence[Claimed], error: str) -> None:
        """The connection, not the events, is at fault: they wait, attempts untouched."""
        if not self._verdict_holds(rnd):
            self._release(rnd, events)
            return
        connection, now = rnd.connection, self.clock()
        since = connection.unhealthy_since or now
        delay = probe_seconds(
            max(0.0, (now - since).total_seconds()),
            base=self.settings.RETRY_BASE_SECONDS,
            cap=self.settings.RETRY_MAX_SECONDS,
            random=self.random,
        )
        probe_at = now + dt.timedelta(seconds=delay)
        count = self._update(
            rnd,
            events,
            status=Event.Status.FAILED,
            attempts=F("attempts") - 1,
            next_attempt_at=probe_at,
            last_error=error,
        )
        rnd.report.waiting += count
        if count:
            self._mark_unhealthy(rnd, error)
            self._pause(rnd, probe_at)

    def _mark_unhealthy(self, rnd: _Round, error: str) -> None:
        if rnd.connection.is_healthy:
            logger.error("configcat_segment: %s is unhealthy: %s", rnd.connection, error)
        rnd.connection.mark_unhealthy(error)

    def _release(self, rnd: _Round, events: Sequence[Claimed]) -> None:
        """Claimed but not sent: back in the queue as they were, due now (or when the
        connection's pause ends)."""
        rnd.report.released += self._update(
            rnd, events, attempts=F("attempts") - 1, next_attempt_at=self.clock()
        )

    def _pause(self, rnd: _Round, until: dt.datetime) -> None:
        """No request for this connection before ``until`` (or a later pause already set):
        while Segment is down, rate limits us or refuses the connection, more requests
        would only add failures."""
        paused = Greatest(Coalesce(F("delivery_paused_until"), Value(until)), Value(until))
        SegmentConnection.objects.using(self.db).filter(pk=rnd.connection.pk).update(
            delivery_paused_until=paused
        )
