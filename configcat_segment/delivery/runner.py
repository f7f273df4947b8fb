"""The delivery loop: one lane per connection, shared by every way of delivering.

:class:`Runner` looks for connections with due events and gives each its own *lane* (a
thread that delivers that connection's events until none are due), so a slow or failing
connection never holds up another. When more connections are due than there are lanes, a
lane gives way after each round and the connection served longest ago goes next, so none
waits for another's whole backlog.

Where a runner runs is the delivery backend's business (:mod:`.backends`):
``manage.py configcat_segment_worker`` runs one in its main thread, the ``thread``
backend in a daemon thread of the web process, the ``celery`` backend in a task.
:class:`ForkGuard` keeps ``fork()`` from happening while a lane is inside the database
driver.

A runner also pokes the *periodic jobs* registered with :func:`add_periodic_job` on each
turn of its loop while it runs for good (reconciliation with ConfigCat's audit log is one:
:mod:`configcat_segment.lifecycle` registers it). The delivery layer knows nothing of
what those jobs do, so nothing here imports the layers above it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from django.db import connections

from ..conf import get_settings
from ..database.connections import close_broken_connections
from .dispatcher import Dispatcher
from .forkguard import ForkGuard
from .report import Report
from .settler import Settler

logger = logging.getLogger(__name__)


class PeriodicJob(Protocol):
    """Work a runner starts now and then on a thread of its own (see :func:`add_periodic_job`)."""

    def poke(self) -> None:
        """Start the work if it is due and not running; return at once."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the work in hand to end."""


class PeriodicJobFactory(Protocol):
    def __call__(
        self,
        *,
        database: Callable[[], AbstractContextManager[None]],
        should_stop: Callable[[], bool],
    ) -> PeriodicJob: ...


# name -> factory, in the order registered; every runner that runs for good makes one of each.
_periodic_jobs: dict[str, PeriodicJobFactory] = {}


def add_periodic_job(name: str, factory: PeriodicJobFactory) -> None:
    """Have every runner that runs for good poke a job made by ``factory`` on each turn.

    ``factory`` is called with ``database`` (a context manager to hold while the job uses
    the database: fork safety) and ``should_stop`` (true once the runner stops). Adding a
    name again replaces its factory.
    """
    _periodic_jobs[name] = factory


class Runner:
    """Delivers due events until stopped (or, with ``until_idle``, until none are due)."""

    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        *,
        threads: int | None = None,
        poll_seconds: float | None = None,
        fork_guard: ForkGuard | None = None,
        periodic: bool = True,
    ) -> None:
        settings = get_settings()
        self.fork_guard = fork_guard or ForkGuard()
        self.dispatcher = dispatcher or Dispatcher()
        # A round ends after the request in hand once the runner stops (SIGTERM, exit).
        self.dispatcher.should_stop = lambda: self.stopping
        self.threads = threads or settings.WORKER_THREADS
        self.poll_seconds = poll_seconds or settings.WORKER_POLL_SECONDS
        self.report = Report()
        # Failures to look for due events or to deliver to a connection (each is logged).
        self.errors = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_signalled = False  # by stop_from_signal(): a plain flag, no lock
        self._deadline: float | None = None  # monotonic; set by finish()
        self._lanes: dict[uuid.UUID, threading.Thread] = {}
        # Connections not to look at again before a monotonic time: their lane failed, or
        # found nothing it could claim (rows locked by another transaction, say).
        self._resting: dict[uuid.UUID, float] = {}
        self._turns = itertools.count()
        self._served: dict[uuid.UUID, int] = {}  # connection -> turn its last lane started
        self._lanes_wanted = False  # due connections are waiting for a lane
        self._lock = threading.Lock()
        # The periodic jobs (reconciliation with ConfigCat's audit log), each on a thread
        # of its own, while the runner runs for good (not for a --once, a Celery task or
        # the exit flush).
        self.periodic: dict[str, PeriodicJob] = (
            {
                name: factory(database=self.fork_guard.database, should_stop=lambda: self.stopping)
                for name, factory in _periodic_jobs.items()
            }
            if periodic
            else {}
        )

    def wake(self) -> None:
        """Look for due events now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the batches in hand; :meth:`run` returns once they are settled."""
        self._stopping.set()
        self._wake.set()

    def stop_from_signal(self) -> None:
        """:meth:`stop`, for a signal handler: it takes no lock, since the interrupted
        thread may hold the one it would need (``Event.set()`` there can deadlock). The
        loop notices within ``WORKER_POLL_SECONDS``; lanes, before their next request."""
        self._stop_signalled = True

    def finish(self, timeout: float) -> None:
        """Deliver what is due, for at most ``timeout`` seconds more, then stop."""
        self._deadline = time.monotonic() + timeout
        self._wake.set()

    @property
    def stopping(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return self._stop_signalled or self._stopping.is_set()

    def run(self, *, until_idle: bool = False) -> Report:
        """Deliver in this thread, lanes in others. Returns what was done."""
        try:
            while not self.stopping:
                self._wake.clear()
                # Read before looking for events: finish() called after the look wakes us.
                finishing = until_idle or self._deadline is not None
                due = self._due_connections(rest_for_good=until_idle)
                self._start_lanes(due)
                if not finishing:
                    for job in self.periodic.values():
                        job.poke()
                with self._lock:
                    idle = not self._lanes
                if finishing and idle and not due:
                    break
                self._wake.wait(self.poll_seconds)
        finally:
            self._stopping.set()
            self._join_lanes()
            for job in self.periodic.values():
                job.join()
            with self.fork_guard.database():
                connections.close_all()
        return self.report

    def _due_connections(self, *, rest_for_good: bool) -> list[uuid.UUID]:
        try:
            with self.fork_guard.database():
                close_broken_connections()
                due = self.dispatcher.due_connections()
        except Exception:
            logger.exception("configcat_segment: could not look for due events")
            with self._lock:
                self.errors += 1
            with self.fork_guard.database():
                connections.close_all()
            return []
        now = time.monotonic()
        with self._lock:
            if not rest_for_good:
                self._resting = {c: t for c, t in self._resting.items() if t > now}
            return [c for c in due if c not in self._resting]

    def _start_lanes(self, connection_ids: list[uuid.UUID]) -> None:
        """A lane for each due connection that has none, least recently served first,
        as long as there are threads to spare."""
        inline = []
        with self._lock:
            waiting = [c for c in connection_ids if c not in self._lanes]
            waiting.sort(key=lambda c: self._served.get(c, -1))
            while waiting and len(self._lanes) < self.threads:
                connection_id = waiting.pop(0)
                self._served[connection_id] = next(self._turns)
                lane = threading.Thread(
                    target=self._lane,
                    args=(connection_id,),
                    name=f"configcat-segment-{connection_id}",
                    daemon=True,
                )
                self._lanes[connection_id] = lane
                try:
                    lane.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    inline.append(connection_id)
            self._lanes_wanted = bool(waiting)
        for connection_id in inline:  # the exit flush, on Python 3.12 and later
            self._lane(connection_id)

    def _lane(self, connection_id: uuid.UUID) -> None:
        """Deliver one connection's due events, batch after batch, until none are left or
        another due connection is waiting for a lane.

        On PostgreSQL, once a lane has a backlog (more than one batch), what Segment
        accepted is settled by the lane's :class:`.Settler` while the next batch is claimed
        and sent; a lane with one batch to send settles it itself and needs no second
        thread and connection. The lane's reports are complete once the settler is closed.
        """
        settler: Settler | None = None
        rounds: list[Report] = []
        try:
            try:
                while not self.stopping:
                    with self.fork_guard.database():
                        if settler is None:
                            report = self.dispatcher.deliver(connection_id)
                        else:
                            report = self.dispatcher.deliver(connection_id, settler=settler)
                    rounds.append(report)
                    with self._lock:
                        give_way = self._lanes_wanted
                    if not report.claimed:
                        # Due, yet nothing to claim: looking again at once would spin as
                        # long as whatever holds those rows does. Not before the next poll.
                        self._rest(connection_id)
                        break
                    if not report.more or give_way:
                        break
                    if settler is None and self.dispatcher.settles_in_background:
                        settler = Settler(self.fork_guard)
            finally:
                if settler is not None:
                    settler.close()  # raises what a settlement in the background raised
        except Exception:
            logger.exception("configcat_segment: delivering to %s failed", connection_id)
            with self._lock:
                self.errors += 1
            self._rest(connection_id)  # no hot loop on a broken database
        finally:
            with self.fork_guard.database():
                connections.close_all()  # this thread's connections only
            with self._lock:
                for report in rounds:
                    self.report.add(report)
                del self._lanes[connection_id]
            self._wake.set()

    def _rest(self, connection_id: uuid.UUID) -> None:
        """Leave ``connection_id`` alone until the next poll (with ``until_idle``: for good)."""
        with self._lock:
            self._resting[connection_id] = time.monotonic() + self.poll_seconds

    def _join_lanes(self) -> None:
        while True:
            with self._lock:
                lanes = list(self._lanes.values())
            if not lanes:
                return
            for lane in lanes:
                lane.join()
