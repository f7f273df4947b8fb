"""The periodic run inside a delivery loop: :func:`.run.run_due` on a thread of its own.

A runner (the worker's, the web process's background thread) calls :meth:`Periodic.poke`
on each turn of its loop; at most every ``min(RECONCILE_INTERVAL_SECONDS, 60)`` seconds
that starts one thread that reconciles the connections that are due, so reading
ConfigCat's API never holds up delivery. Which process does the work is decided in the
database (see :mod:`.run`), so every process may poke.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from django.db import close_old_connections, connections

from ..conf import get_settings

logger = logging.getLogger(__name__)

MAX_POLL_SECONDS = 60.0


class Periodic:
    def __init__(
        self,
        *,
        database: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.database = database  # held while the thread uses the database (fork safety)
        self.should_stop = should_stop
        self.runs = 0
        self.errors = 0
        self._next = 0.0  # monotonic
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Start a reconciliation thread if one is due and none is running."""
        now = time.monotonic()
        with self._lock:
            if now < self._next or (self._thread is not None and self._thread.is_alive()):
                return
            self._next = now + min(
                float(get_settings().RECONCILE_INTERVAL_SECONDS), MAX_POLL_SECONDS
            )
            thread = threading.Thread(
                target=self._run, name="configcat-segment-reconcile", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # interpreter shutdown: not now
                return
            self._thread = thread

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        from .run import run_due

        try:
            with self.database():
                close_old_connections()
                run_due(should_stop=self.should_stop)
            self.runs += 1
        except Exception:
            self.errors += 1
            logger.exception("configcat_segment: the periodic reconciliation failed")
        finally:
            with self.database():
                connections.close_all()  # this thread's connections only
