"""What runs the dispatcher: a loop with one lane per connection, and where it lives.

:class:`Runner` is the loop shared by every way of delivering: it looks for connections
with due events and gives each its own *lane* (a thread that delivers that connection's
events until none are due), so a slow or failing connection never holds up another. When
more connections are due than there are lanes, a lane gives way after each round and the
connection served longest ago goes next, so none waits for another's whole backlog.

- ``DELIVERY = "thread"``: :func:`wake_thread_runner` is registered with the outbox and
  :func:`start_on_request` with ``request_started``; the first event or request starts a
  :class:`Runner` in a daemon thread of the web process, so a process that restarts with
  a backlog delivers it. A ``fork()``ed child (gunicorn ``--preload``, uWSGI) starts with
  no runner and starts its own the same way. At exit, the evaluations still buffered are
  written, then what is due is delivered for at most ``SHUTDOWN_FLUSH_SECONDS``, in the
  exiting thread if the runner never started (no thread can start at exit on Python 3.12+).
- ``DELIVERY = "worker"``: ``manage.py configcat_segment_worker`` runs a :class:`Runner`
  in its main thread; nothing runs in the web process.
- ``DELIVERY = "celery"``: each commit that writes events sends the
  ``configcat_segment.deliver`` task (see :mod:`configcat_segment.tasks`).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from django.core.signals import request_started
from django.db import close_old_connections, connections

from ..conf import get_settings
from ..evaluations import store as writer
from ..reconcile.schedule import Periodic
from ..segment import transport
from . import outbox
from .dispatcher import Dispatcher, Report

logger = logging.getLogger(__name__)


class ForkGuard:
    """Makes ``fork()`` wait until no runner thread is inside the database driver.

    A thread that holds a lock inside the driver (SQLite's, libpq's) when another thread
    forks leaves that lock held forever in the child, whose first query then hangs. Runner
    threads hold the guard, shared, while they use the database; a fork holds it alone
    (for at most ``timeout`` seconds of waiting) while it happens.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._users = 0
        self._forking = False

    @contextlib.contextmanager
    def database(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._forking)
            self._users += 1
        try:
            yield
        finally:
            with self._condition:
                self._users -= 1
                self._condition.notify_all()

    def before_fork(self, timeout: float) -> None:
        with self._condition:
            self._forking = True
            self._condition.wait_for(lambda: self._users == 0, timeout)

    def after_fork_in_parent(self) -> None:
        with self._condition:
            self._forking = False
            self._condition.notify_all()


class Runner:
    """Delivers due events until stopped (or, with ``until_idle``, until none are due)."""

    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        *,
        threads: int | None = None,
        poll_seconds: float | None = None,
        fork_guard: ForkGuard | None = None,
        reconcile: bool = True,
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
        # Reconciliation with ConfigCat's audit log, on a thread of its own, while the
        # runner runs for good (not for a --once, a Celery task or the exit flush).
        self.reconciler = (
            Periodic(database=self.fork_guard.database, should_stop=lambda: self.stopping)
            if reconcile
            else None
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
                if self.reconciler is not None and not finishing:
                    self.reconciler.poke()
                with self._lock:
                    idle = not self._lanes
                if finishing and idle and not due:
                    break
                self._wake.wait(self.poll_seconds)
        finally:
            self._stopping.set()
            self._join_lanes()
            if self.reconciler is not None:
                self.reconciler.join()
            with self.fork_guard.database():
                connections.close_all()
        return self.report

    def _due_connections(self, *, rest_for_good: bool) -> list[uuid.UUID]:
        try:
            with self.fork_guard.database():
                close_old_connections()
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
        another due connection is waiting for a lane."""
        try:
            while not self.stopping:
                with self.fork_guard.database():
                    report = self.dispatcher.deliver(connection_id)
                with self._lock:
                    self.report.add(report)
                    give_way = self._lanes_wanted
                if not report.claimed:
                    # Due, yet nothing to claim: looking again at once would spin as long
                    # as whatever holds those rows does. Not before the next poll.
                    self._rest(connection_id)
                    break
                if not report.more or give_way:
                    break
        except Exception:
            logger.exception("configcat_segment: delivering to %s failed", connection_id)
            with self._lock:
                self.errors += 1
            self._rest(connection_id)  # no hot loop on a broken database
        finally:
            with self.fork_guard.database():
                connections.close_all()  # this thread's connections only
            with self._lock:
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


# -- the "thread" runner: in the web process -------------------------------------------


def testing() -> bool:
    """Whether Django's test environment is set up (``manage.py test``, pytest-django).

    The thread runner stays off there. Started by a test's request or event, it would keep
    the test database open at its teardown and then, the settings restored, deliver the
    real database's events. Tests that want delivery run the dispatcher themselves.
    """
    test_utils = sys.modules.get("django.test.utils")  # never imported: not testing
    return test_utils is not None and hasattr(test_utils._TestState, "saved_data")


class _Background:
    """The process's background runner: started by its first event or request, never at
    import; a ``fork()``ed child has none until its own first event or request."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.fork_guard = ForkGuard()
        self.runner: Runner | None = None  # set while its thread runs
        self.thread: threading.Thread | None = None
        # Delivery was asked for (an event written, a request served): the exit flush has
        # work to do, even if the runner never started.
        self.wanted = False
        # The exit flush has begun: it delivers in the exiting thread, so no thread starts.
        self.exiting = False

    def ensure_started(self) -> Runner | None:
        """The running runner, started if need be; None if no thread can start, or while
        Django's test environment is set up (see :func:`testing`)."""
        if testing():
            return None
        with self.lock:
            self.wanted = True
            if self.thread is None or not self.thread.is_alive():
                self.runner = self.thread = None
                if not self.exiting:
                    self._start()
            return self.runner

    def _start(self) -> None:
        runner = Runner(fork_guard=self.fork_guard)
        thread = threading.Thread(
            target=self._run, args=(runner,), name="configcat-segment-runner", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as exc:
            logger.warning(
                "configcat_segment: could not start the delivery thread (%s); the next "
                "event or request tries again, and what is due is delivered at exit",
                exc,
            )
            return
        self.runner, self.thread = runner, thread

    def _run(self, runner: Runner) -> None:
        try:
            runner.run()
        finally:
            with self.lock:
                if self.runner is runner:  # it died: the next event or request restarts it
                    self.runner = self.thread = None

    def shutdown(self, timeout: float) -> None:
        """Deliver what is due within ``timeout`` seconds, then stop: in the runner's thread,
        or in this one if delivery was asked for but the runner never started."""
        with self.lock:
            runner, thread, wanted = self.runner, self.thread, self.wanted
            self.runner = self.thread = None
            self.wanted = False
        if runner is not None and thread is not None:
            runner.finish(timeout)
            thread.join(timeout)
        elif wanted:
            # A request in Segment's hands when the time is up is still waited for (at
            # most HTTP_TIMEOUT_SECONDS); no other starts.
            runner = Runner(fork_guard=self.fork_guard)
            runner.finish(timeout)
            runner.run()

    def before_fork(self) -> None:
        if self.runner is not None:  # a batch in hand may be waiting for Segment
            self.fork_guard.before_fork(get_settings().HTTP_TIMEOUT_SECONDS + 1)

    def after_fork_in_parent(self) -> None:
        self.fork_guard.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        # The parent's threads do not exist here; its locks may be held by one of them. The
        # child may fork again or never serve: its first event or request starts its runner.
        self._reset()
        transport.after_fork()


_background = _Background()


def wake_thread_runner() -> None:
    """The outbox listener for ``DELIVERY = "thread"``: start the runner if needed, wake it."""
    runner = _background.ensure_started()
    if runner is not None:
        runner.wake()


def start_on_request(**kwargs: object) -> None:
    """The ``request_started`` receiver for ``DELIVERY = "thread"``: a web process that
    restarts with events due delivers them from its first request, not its first event."""
    if _background.runner is None:  # once running, no lock on the request path
        _background.ensure_started()


def background_runner() -> Runner | None:
    """The background runner of this process, if it is running."""
    return _background.runner


def stop_thread_runner(timeout: float | None = None) -> None:
    """Deliver what is due (at most ``timeout`` s, default ``SHUTDOWN_FLUSH_SECONDS``), stop."""
    _background.shutdown(get_settings().SHUTDOWN_FLUSH_SECONDS if timeout is None else timeout)


def deliver_at_exit() -> None:
    """The exit hook for ``DELIVERY = "thread"``, in place of the writer's: write the
    evaluations still buffered, then deliver what is due, that written at exit included."""
    _background.exiting = True  # a thread started now would be abandoned, or cannot start
    writer.flush_at_exit()
    stop_thread_runner()


def wake_celery() -> None:
    """The outbox listener for ``DELIVERY = "celery"``: queue a delivery task."""
    from ..tasks import deliver

    deliver.delay()


LISTENERS: dict[str, Callable[[], None]] = {
    "thread": wake_thread_runner,
    "celery": wake_celery,
}


def install(delivery: str) -> None:
    """Wire the runner chosen by ``DELIVERY`` (called from ``AppConfig.ready``)."""
    listener = LISTENERS.get(delivery)
    if listener is not None:
        outbox.on_enqueued(listener)
    if delivery == "thread":
        request_started.connect(start_on_request, dispatch_uid="configcat_segment.start_on_request")
        atexit.unregister(writer.flush_at_exit)  # deliver_at_exit calls it, first
        atexit.register(deliver_at_exit)
        os.register_at_fork(
            before=_background.before_fork,
            after_in_parent=_background.after_fork_in_parent,
            after_in_child=_background.after_fork_in_child,
        )
