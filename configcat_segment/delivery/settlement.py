"""One delivery round, and recording what Segment said of its events.

A :class:`Round` is one connection's claimed events and their lease. The dispatcher sends
them; the round settles each outcome (delivered, retried after a backoff, waiting for the
connection to be fixed, dead, or put back in the queue untried) on the events whose
claim rows still carry its lease, in short transactions, and sends ``event_delivered``
and ``event_dead`` once each commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from ..conf import AppSettings
from ..models import Event, SegmentConnection
from ..segment.retry import backoff_seconds, give_up_reason, parse_retry_after, probe_seconds
from ..signals import event_dead, event_delivered
from . import claims, connection_state
from .claims import Claimed
from .report import Report
from .settler import Settler

logger = logging.getLogger(__name__)

# What settling a delivery may change on the connection (``mark_healthy``).
HEALTH_FIELDS = ("unhealthy_since", "unhealthy_reason")


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
class Round:
    """One round for one connection: its lease, and what it did so far (:attr:`report`).

    ``clock``, ``random`` and ``settings`` are the dispatcher's. With a ``settler``,
    deliveries are settled in the background (:meth:`settle_delivered`); every other
    settlement waits for the one in hand first.
    """

    using: str
    connection: SegmentConnection
    now: dt.datetime
    lease_until: dt.datetime
    settings: AppSettings
    clock: Callable[[], dt.datetime]
    random: Callable[[], float]
    report: Report = field(default_factory=Report)
    settler: Settler | None = None
    _signals: _Signals = field(default_factory=_Signals, init=False, repr=False)

    @property
    def send_until(self) -> dt.datetime:
        """No request starts later: it could outlast the lease."""
        return self.lease_until - dt.timedelta(seconds=self.settings.HTTP_TIMEOUT_SECONDS + 1)

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """A transaction settling outcomes, once the settlement in hand (if any) is done;
        their signals are sent once it commits."""
        failed: Exception | None = None
        if self.settler is not None:
            try:
                if self.settler.wait():
                    # What it settled may have changed the connection's health since
                    # this round read it.
                    self.connection.refresh_from_db(using=self.using, fields=HEALTH_FIELDS)
            except Exception as error:  # raised once this outcome is recorded too
                failed = error
        with self._transaction():
            yield
        if failed is not None:
            raise failed

    def settle_delivered(self, events: Sequence[Claimed]) -> None:
        """Settle ``events`` as delivered: in the background with a settler, else now."""
        if self.settler is None:
            with self.settling():
                self.delivered(events)
            return

        def settle() -> None:
            with self._transaction():
                self.delivered(events)

        self.settler.submit(settle)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._signals = signals = _Signals()
        with claims.bookkeeping(self.using):
            yield
            if signals.delivered or signals.dead:
                transaction.on_commit(signals.send, using=self.using)

    # -- outcomes: call them inside settling() ------------------------------------------

    def delivered(self, events: Sequence[Claimed]) -> None:
        count, rows = self._mark(
            events,
            event_delivered,
            status=Event.Status.DELIVERED,
            delivered_at=self.clock(),
            last_error="",
        )
        self.report.delivered += count
        if rows:
            self._signals.delivered.append(rows)
        if count:
            connection_state.mark_healthy(self.connection)

    def dead(self, events: Sequence[Claimed], error: str) -> None:
        count, rows = self._mark(events, event_dead, status=Event.Status.DEAD, last_error=error)
        self.report.dead += count
        self._signals.dead += rows
        logger.warning("configcat_segment: %d events are dead: %s", count, error)

    def refused(self, refused: list[tuple[Claimed, str]]) -> None:
        """Messages Segment refused even alone: dead, unless it refused everything.

        When nothing got through in the round, the refusal may be of the request rather
        than of these messages (a gateway answering 400 to everything): they are retried
        with backoff instead, and die only as any retried event does.
        """
        by_error: dict[str, list[Claimed]] = {}
        for event, error in refused:
            by_error.setdefault(error, []).append(event)
        if self.report.delivered:
            for error, events in by_error.items():
                self.dead(events, error)
            return
        error = refused[-1][1]
        if len(refused) > 1:
            error = f"Segment refused every message it was sent, even one at a time: {error}"
        events = [event for event, _ in refused]
        self.retry(events, error, retry_after=None, unhealthy=len(refused) > 1)

    def retry(
        self,
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
        if not connection_state.unchanged(self.using, self.connection):
            self.release(events)  # said of the old credentials, not of the new ones
            return
        settings, now = self.settings, self.clock()
        give_up: dict[str, list[Claimed]] = {}
        retrying: list[Claimed] = []
        queued_at = claims.queued_at(self.using, events)
        for event in events:
            reason = give_up_reason(
                attempts=event.attempts,
                queued_at=queued_at.get(event.pk, now),
                now=now,
                max_attempts=settings.MAX_ATTEMPTS,
                max_age_seconds=settings.MAX_AGE_SECONDS,
            )
            if reason:
                give_up.setdefault(f"{reason}. Last error: {error}", []).append(event)
            else:
                retrying.append(event)
        for reason, dying in give_up.items():
            self.dead(dying, reason)
        if not retrying:
            return
        streak = max(
            max(e.attempts for e in retrying),
            claims.failure_streak(self.using, self.connection),
        )
        delay = backoff_seconds(
            streak,
            base=settings.RETRY_BASE_SECONDS,
            cap=settings.RETRY_MAX_SECONDS,
            random=self.random,
            retry_after=parse_retry_after(retry_after, now),
        )
        retry_at = now + dt.timedelta(seconds=delay + step * settings.RETRY_BASE_SECONDS)
        count = self._update(
            retrying, status=Event.Status.FAILED, next_attempt_at=retry_at, last_error=error
        )
        self.report.retrying += count
        if not count:  # all claimed by another worker since: its verdict, not ours
            return
        if unhealthy:
            connection_state.mark_unhealthy(self.connection, error)
        if pause:
            connection_state.pause(self.using, self.connection, retry_at)
        logger.warning(
            "configcat_segment: %d events will be retried in %.0f s: %s", count, delay, error
        )

    def unhealthy(self, events: Sequence[Claimed], error: str) -> None:
        """The connection, not the events, is at fault: they wait, attempts untouched."""
        if not connection_state.unchanged(self.using, self.connection):
            self.release(events)
            return
        connection, now = self.connection, self.clock()
        since = connection.unhealthy_since or now
        delay = probe_seconds(
            max(0.0, (now - since).total_seconds()),
            base=self.settings.RETRY_BASE_SECONDS,
            cap=self.settings.RETRY_MAX_SECONDS,
            random=self.random,
        )
        probe_at = now + dt.timedelta(seconds=delay)
        count = self._update(
            events,
            uncounted=1,
            status=Event.Status.FAILED,
            next_attempt_at=probe_at,
            last_error=error,
        )
        self.report.waiting += count
        if count:
            connection_state.mark_unhealthy(connection, error)
            connection_state.pause(self.using, connection, probe_at)

    def release(self, events: Sequence[Claimed]) -> None:
        """Claimed but not sent: back in the queue as they were, due now (or when the
        connection's pause ends), this claim not counted as an attempt."""
        self.report.released += self._update(events, uncounted=1, next_attempt_at=self.clock())

    # -- rows -----------------------------------------------------------------------------

    def _update(self, events: Sequence[Claimed], uncounted: int = 0, **values: Any) -> int:
        """Settle events that still carry this round's lease; count the ones that do not."""
        count = claims.settle(self.using, events, self.lease_until, uncounted, **values)
        if count < len(events):
            self.report.lost += len(events) - count
            logger.warning(
                "configcat_segment: %d events were claimed again (this round's lease ran "
                "out) or put back in the queue (requeued, or their connection fixed) while "
                "this round sent them; its outcome for them is discarded",
                len(events) - count,
            )
        return count

    def _mark(
        self, events: Sequence[Claimed], signal: Signal, **values: Any
    ) -> tuple[int, list[Event]]:
        """Settle events as ``values``: how many were still ours, and for ``signal``'s
        receivers (if it has any) those rows, whole, as settled (one query)."""
        count = self._update(events, **values)
        if not count or not signal.has_listeners(Event):
            return count, []
        return count, claims.settled_rows(self.using, events, **values)
