"""``DELIVERY = "thread"`` (the embedded default): a runner in a thread of the web process.

The first event a process writes, or the first request it serves, starts a
:class:`~configcat_segment.delivery.runner.Runner` in a daemon thread, so a process that
restarts with a backlog delivers it; every commit that writes events wakes it. Nothing
starts at import or in ``AppConfig.ready()``. A ``fork()``ed child (gunicorn
``--preload``, uWSGI) starts with no runner and starts its own the same way. At exit, what
is due (the evaluations written at exit included) is delivered for at most
``SHUTDOWN_FLUSH_SECONDS``, in the exiting thread if the runner never started (no thread
can start at exit on Python 3.12 and later).

While Django's test environment is set up, the runner never starts: started by a test's
request or event, it would keep the test database open at its teardown and then, the
settings restored, deliver the real database's events. Test settings should choose the
``locmem`` backend instead.
"""

from __future__ import annotations

import logging
import sys
import threading

from ...conf import get_settings
from ..forkguard import ForkGuard
from ..runner import Runner
from .base import DeliveryBackend

logger = logging.getLogger(__name__)


def in_test_environment() -> bool:
    """Whether Django's test environment is set up (``manage.py test``, pytest-django).

    ``django.test.utils.setup_test_environment()`` creates the test email outbox,
    ``django.core.mail.outbox``, and ``teardown_test_environment()`` removes it (both
    documented), so the outbox is there exactly while tests run.
    """
    mail = sys.modules.get("django.core.mail")  # never imported: not testing
    return mail is not None and hasattr(mail, "outbox")


class ThreadBackend(DeliveryBackend):
    """The process's background runner: started by its first event or request, never at
    import; a ``fork()``ed child has none until its own first event or request."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.fork_guard = ForkGuard()
        self.runner: Runner | None = None  # set while its thread runs
        self.thread: threading.Thread | None = None
        # Delivery was asked for (an event written, a request served): the exit flush has
        # work to do, even if the runner never started.
        self.wanted = False
        # The exit flush has begun: it delivers in the exiting thread, so no thread starts.
        self.exiting = False
        self.closed = False

    # -- the hooks -------------------------------------------------------------------------

    def on_enqueued(self) -> None:
        """Start the runner if need be, and wake it."""
        runner = self.ensure_started()
        if runner is not None:
            runner.wake()

    def on_request_started(self) -> None:
        """A web process that restarts with events due delivers them from its first
        request, not its first event."""
        if self.runner is None:  # once running, no lock on the request path
            self.ensure_started()

    def prepare_exit(self) -> None:
        self.exiting = True  # a thread started now would be abandoned, or cannot start

    def deliver_at_exit(self) -> None:
        self.shutdown(get_settings().SHUTDOWN_FLUSH_SECONDS)

    def before_fork(self) -> None:
        if self.runner is not None:  # a batch in hand may be waiting for Segment
            self.fork_guard.before_fork(get_settings().HTTP_TIMEOUT_SECONDS + 1)

    def after_fork_in_parent(self) -> None:
        self.fork_guard.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        # The parent's threads do not exist here; its locks may be held by one of them. The
        # child may fork again or never serve: its first event or request starts its runner.
        self._reset()

    def close(self) -> None:
        """Stop the runner after the batches in hand; nothing starts any more."""
        with self._lock:
            self.closed = True
            runner, thread = self.runner, self.thread
        if runner is not None and thread is not None:
            runner.stop()
            thread.join(get_settings().HTTP_TIMEOUT_SECONDS + 1)

    # -- the runner ------------------------------------------------------------------------

    def ensure_started(self) -> Runner | None:
        """The running runner, started if need be; None if no thread can start, or while
        Django's test environment is set up (see :func:`in_test_environment`)."""
        if in_test_environment():
            return None
        with self._lock:
            self.wanted = True
            if self.thread is None or not self.thread.is_alive():
                self.runner = self.thread = None
                if not self.exiting and not self.closed:
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
            with self._lock:
                if self.runner is runner:  # it died: the next event or request restarts it
                    self.runner = self.thread = None

    def shutdown(self, timeout: float) -> None:
        """Deliver what is due within ``timeout`` seconds, then stop: in the runner's thread,
        or in this one if delivery was asked for but the runner never started."""
        with self._lock:
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
