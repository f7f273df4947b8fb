"""What runs the dispatcher: a loop with one lane per connection, and where it lives.

:class:`Runner` is the loop shared by every way of delivering: it looks for connections
with due events and gives each its own *lane* (a thread that delivers that connection's
events until none are due), so a slow or failing connection never holds up another.

- ``DELIVERY = "thread"``: :func:`wake_thread_runner` is registered with the outbox; the
  first event starts a :class:`Runner` in a daemon thread of the web process. It is
  restarted in a ``fork()``ed child (gunicorn ``--preload``, uWSGI) and, at exit, given
  ``SHUTDOWN_FLUSH_SECONDS`` to deliver what is due.
- ``DELIVERY = "worker"``: ``manage.py configcat_segment_worker`` runs a :class:`Runner`
  in its main thread; nothing runs in the web process.
- ``DELIVERY = "celery"``: each commit that writes events sends the
  ``configcat_segment.deliver`` task (see :mod:`configcat_segment.tasks`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from django.db import close_old_connections, connections

from . import outbox, transport
from .conf import get_settings
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
    ) -> None:
        settings = get_settings()
        self.fork_guard = fork_guard or ForkGuard()
        self.dispatcher = dispatcher or Dispatcher()
        self.threads = threads or settings.WORKER_THREADS
        self.poll_seconds = poll_seconds or settings.WORKER_POLL_SECONDS
        self.report = Report()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._deadline: float | None = None  # monotonic; set by finish()
        self._lanes: dict[uuid.UUID, threading.Thread] = {}
        self._broken: dict[uuid.UUID, float] = {}  # connection -> monotonic time to retry
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Look for due events now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the batches in hand; :meth:`run` returns once they are settled."""
        self._stopping.set()
        self._wake.set()

    def finish(self, timeout: float) -> None:
        """Deliver what is due, for at most ``timeout`` seconds more, then stop."""
        self._deadline = time.monotonic() + timeout
        self._wake.set()

    @property
    def stopping(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return self._stopping.is_set()

    def run(self, *, until_idle: bool = False) -> Report:
        """Deliver in this thread, lanes in others. Returns what was done."""
        try:
            while not self.stopping:
                self._wake.clear()
                # Read before looking for events: finish() called after the look wakes us.
                finishing = until_idle or self._deadline is not None
                due = self._due_connections(skip_broken_for_good=until_idle)
                self._start_lanes(due)
                with self._lock:
                    idle = not self._lanes
                if finishing and idle and not due:
                    break
                self._wake.wait(self.poll_seconds)
        finally:
            self._stopping.set()
            self._join_lanes()
            with self.fork_guard.database():
                connections.close_all()
        return self.report

    def _due_connections(self, *, skip_broken_for_good: bool) -> list[uuid.UUID]:
        try:
            with self.fork_guard.database():
                close_old_connections()
                due = self.dispatcher.due_connections()
        except Exception:
            logger.exception("configcat_segment: could not look for due events")
            with self.fork_guard.database():
                connections.close_all()
            return []
        now = time.monotonic()
        with self._lock:
            if not skip_broken_for_good:
                self._broken = {c: t for c, t in self._broken.items() if t > now}
            return [c for c in due if c not in self._broken]

    def _start_lanes(self, connection_ids: list[uuid.UUID]) -> None:
        inline = []
        with self._lock:
            for connection_id in connection_ids:
                if connection_id in self._lanes or len(self._lanes) >= self.threads:
                    continue
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
        for connection_id in inline:  # the exit flush, on Python 3.12 and later
            self._lane(connection_id)

    def _lane(self, connection_id: uuid.UUID) -> None:
        """Deliver one connection's due events, batch after batch, until none are left."""
        try:
            while not self.stopping:
                with self.fork_guard.database():
                    report = self.dispatcher.deliver(connection_id)
                with self._lock:
                    self.report.add(report)
                if not report.more:
                    break
        except Exception:
            logger.exception("configcat_segment: delivering to %s failed", connection_id)
            with self._lock:  # not again before the next poll: no hot loop on a broken database
                self._broken[connection_id] = time.monotonic() + self.poll_seconds
        finally:
            with self.fork_guard.database():
                connections.close_all()  # this thread's connections only
            with self._lock:
                del self._lanes[connection_id]
            self._wake.set()

    def _join_lanes(self) -> None:
        while True:
            with self._lock:
                lanes = list(self._lanes.values())
            if not lanes:
                return
            for lane in lanes:
                lane.join()


# -- the "thread" runner: in the web process -------------------------------------------


class _Background:
    """The process's background runner, started lazily, restarted after ``fork()``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fork_guard = ForkGuard()
        self.runner: Runner | None = None
        self.thread: threading.Thread | None = None

    def ensure_started(self) -> Runner:
        with self.lock:
            if self.runner is None or self.thread is None or not self.thread.is_alive():
                self.runner = Runner(fork_guard=self.fork_guard)
                self.thread = threading.Thread(
                    target=self.runner.run, name="configcat-segment-runner", daemon=True
                )
                self.thread.start()
            return self.runner

    def shutdown(self, timeout: float) -> None:
        """Deliver what is due within ``timeout`` seconds, then stop (at exit)."""
        with self.lock:
            runner, thread = self.runner, self.thread
            self.runner = self.thread = None
        if runner is None or thread is None:
            return
        runner.finish(timeout)
        thread.join(timeout)

    def before_fork(self) -> None:
        if self.runner is not None:  # a batch in hand may be waiting for Segment
            self.fork_guard.before_fork(get_settings().HTTP_TIMEOUT_SECONDS + 1)

    def after_fork_in_parent(self) -> None:
        self.fork_guard.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        was_running = self.thread is not None and self.runner is not None
        # The parent's threads do not exist here; its locks may be held by one of them.
        self.lock = threading.Lock()
        self.fork_guard = ForkGuard()
        self.runner = self.thread = None
        transport.after_fork()
        if was_running:
            self.ensure_started()


_background = _Background()


def wake_thread_runner() -> None:
    """The outbox listener for ``DELIVERY = "thread"``: start the runner if needed, wake it."""
    _background.ensure_started().wake()


def background_runner() -> Runner | None:
    """The background runner of this process, if it has started."""
    return _background.runner


def stop_thread_runner(timeout: float | None = None) -> None:
    """Deliver what is due (at most ``timeout`` s, default ``SHUTDOWN_FLUSH_SECONDS``), stop."""
    _background.shutdown(get_settings().SHUTDOWN_FLUSH_SECONDS if timeout is None else timeout)


def wake_celery() -> None:
    """The outbox listener for ``DELIVERY = "celery"``: queue a delivery task."""
    from .tasks import deliver

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
        atexit.register(stop_thread_runner)
        os.register_at_fork(
            before=_background.before_fork,
            after_in_parent=_background.after_fork_in_parent,
            after_in_child=_background.after_fork_in_child,
        )
