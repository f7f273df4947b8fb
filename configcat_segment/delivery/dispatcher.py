"""Moving due events from the outbox to Segment, one connection at a time.

One call of :meth:`Dispatcher.deliver` is one round for one connection:

1. **Claim** up to ``BATCH_SIZE`` due events with a lease (:mod:`.claims`). An event
   claimed more than ``MAX_ATTEMPTS`` times goes ``dead`` instead of being sent again, so
   a message that keeps killing its worker cannot loop forever.
2. **Send** them outside any transaction, in as few ``/v1/batch`` requests as Segment's
   limits allow, and **settle** each request's outcome as soon as it is known, in its own
   short transaction, only where the lease is still this round's. No request starts
   unless it can finish (``HTTP_TIMEOUT_SECONDS``) before the lease runs out; what is left
   then goes back to the queue, attempts untouched.
3. A request Segment refuses (400) is split in halves until the refused messages stand
   alone (:mod:`.halving`; at most ``MAX_SPLIT_REQUESTS`` extra requests per round); they
   go ``dead`` if anything else got through in the round. If nothing did, Segment refuses
   the request rather than the messages (a proxy, say): they are retried with backoff
   instead, and the connection is marked unhealthy when more than one was refused.
4. When Segment is unavailable (5xx, 429, no answer) or refuses the connection (401,
   403, …), the connection is paused (:mod:`.connection_state`): no request is made for
   it before then, however many events are written meanwhile.

Signals (``event_delivered`` per request Segment accepted, ``event_dead`` per group) are
sent robustly after the settling transaction commits.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from django.db import connections, router
from django.utils import timezone

from ..conf import AppSettings, get_settings
from ..models import Event, SegmentConnection
from ..segment import transport
from ..segment.batching import plan_batches
from ..segment.payloads import isoformat
from ..segment.retry import Verdict
from ..segment.wire import Messages
from . import claims, connection_state
from .claims import Claimed
from .halving import Halving
from .report import Report
from .settlement import Round
from .settler import Settler

__all__ = ["MAX_SPLIT_REQUESTS", "OVERSIZED_ERROR", "Dispatcher", "Report", "Sender"]

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


class Dispatcher:
    """Delivers due events. Safe to run in any number of threads and processes at once.

    ``clock``, ``random`` and ``send`` are there for tests (a fake clock drives an outage
    without waiting for it) and for the ``locmem`` backend (which sends to a list);
    ``settings`` defaults to the project's. ``should_stop`` is asked between requests:
    once it says yes, a round sends nothing more and puts what it did not send back in
    the queue.
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

    @property
    def settles_in_background(self) -> bool:
        """Whether a runner's lanes settle deliveries while the next batch is sent
        (:mod:`.settler`): not on SQLite, which runs one writer at a time, so a settlement
        there only makes the next claim wait for it (measured: four SQLite workers fell
        from 2.4x to 0.95x the Client's rate)."""
        return connections[self.db].vendor != "sqlite"

    def due_connections(self) -> list[uuid.UUID]:
        """Connected connections that have events due now and whose delivery is not paused.

        A disconnected connection forwards nothing: its queued events wait for it to be
        reconnected.
        """
        return claims.due_connection_ids(self.db, self.clock())

    def deliver(self, connection_id: uuid.UUID, settler: Settler | None = None) -> Report:
        """One round for one connection: claim, then send and settle request by request.

        With a ``settler`` (:mod:`.settler`), what Segment accepted may still be being
        settled when this returns, and the report's ``delivered`` count grows once it is:
        wait for the settler before reading it.
        """
        connection = SegmentConnection.objects.using(self.db).filter(pk=connection_id).first()
        now = self.clock()
        if connection is None or not connection.connected or connection.is_paused(now):
            return Report()
        settings = self.settings
        lease_until = now + dt.timedelta(seconds=settings.LEASE_SECONDS)
        events = claims.claim(self.db, connection, now, lease_until, settings.BATCH_SIZE)
        if not events:
            return Report()
        round_ = Round(
            self.db,
            connection,
            now,
            lease_until,
            settings,
            self.clock,
            self.random,
            settler=settler,
        )
        round_.report.claimed = len(events)
        sendable = [e for e in events if e.attempts <= settings.MAX_ATTEMPTS]
        if len(sendable) < len(events):
            with round_.settling():
                round_.dead(
                    [e for e in events if e.attempts > settings.MAX_ATTEMPTS],
                    f"Claimed more than {settings.MAX_ATTEMPTS} times without an outcome: "
                    "whatever was sending it stopped (crashed, was killed, or outlasted "
                    "LEASE_SECONDS) every time",
                )
        self._send_all(round_, sendable)
        round_.report.more = len(events) >= settings.BATCH_SIZE or round_.report.released > 0
        return round_.report

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

    # -- send ----------------------------------------------------------------------------

    def _send_all(self, round_: Round, events: list[Claimed]) -> None:
        """Send ``events`` in as few requests as the limits allow, settling each outcome."""
        connection = round_.connection
        plan = plan_batches(
            events,
            sent_at=isoformat(round_.now),
            write_key=connection.write_key,
            text_size=claims.text_size,
        )
        if plan.oversized:
            with round_.settling():
                round_.dead(plan.oversized, OVERSIZED_ERROR)
        search: Halving[Claimed, str] = Halving(plan.batches)
        max_requests = len(plan.batches) + MAX_SPLIT_REQUESTS
        while search and round_.report.requests < max_requests:
            if round_.report.requests and not self._may_send_more(round_):
                break
            part = search.next_part()
            answer = self.send(
                Messages([e.text for e in part.items]),
                endpoint=connection.endpoint,
                write_key=connection.write_key,
                sent_at=isoformat(self.clock()),  # the same length as the plan's
                gzip=self.settings.GZIP,
                timeout=self.settings.HTTP_TIMEOUT_SECONDS,
            )
            round_.report.requests += 1
            verdict = answer.verdict
            if verdict is Verdict.REJECTED:
                search.refused(part, answer.error)
                continue
            if verdict is Verdict.DELIVERED:
                round_.settle_delivered(part.items)
                continue
            with round_.settling():
                # Segment is unavailable or refuses the connection: stop, and let the
                # messages it refused this round share that fate rather than die for it.
                group = part.items + [event for event, _ in search.take_alone()]
                if verdict is Verdict.RETRY:
                    round_.retry(group, answer.error, answer.retry_after)
                else:
                    round_.unhealthy(group, answer.error)
            break
        refused, remaining = search.take_alone(), search.remaining()
        if not (refused or remaining):
            return  # all settled (or being settled in the background)
        with round_.settling():
            if refused:
                round_.refused(refused)
            # Refused, but not narrowed down in time: tried, so retried with backoff (put
            # back as untried, the next round would only start the same search over). Each
            # part comes back on its own, a step after the one before, so the next rounds
            # search smaller batches and the search goes deeper each time.
            unresolved = [(p.items, p.refusal) for p in remaining if p.refusal is not None]
            for step, (group, refusal) in enumerate(unresolved):
                round_.retry(group, refusal, retry_after=None, pause=False, step=step)
            untried = [e for p in remaining if p.refusal is None for e in p.items]
            if untried:
                round_.release(untried)

    def _may_send_more(self, round_: Round) -> bool:
        """Whether the round may start another request: not if it could outlast the lease,
        if the runner is stopping, or if another dispatcher paused the connection since."""
        if self.clock() >= round_.send_until or self.should_stop():
            return False
        return not connection_state.paused(self.db, round_.connection, self.clock())
