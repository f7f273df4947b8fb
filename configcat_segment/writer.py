"""Writing recorded evaluations to the outbox, off the request thread.

Evaluations wait in a bounded in-memory buffer. A background thread (``EVALUATION_WRITER``
``"thread"``) writes them every ``EVALUATION_FLUSH_SECONDS``, or sooner when the buffer is
half full: it resolves the connections that forward evaluations with one query, builds
the messages, and inserts them all with one bulk statement. :func:`flush` does the same
on the calling thread; it also runs at exit, so a management command or a script loses
nothing.

When the database cannot keep up and the buffer is full, new evaluations are dropped and
counted; the count is logged and stored (``EvaluationCounter``), so
``configcat_segment_status`` shows it for every process.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from django import db
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .conf import SETTING_NAME, get_settings
from .evaluations import Evaluation, messages_for

logger = logging.getLogger(__name__)

DROP_LOG_INTERVAL = 60.0
# Events per INSERT statement: large enough to be cheap, small enough for any database.
INSERT_CHUNK = 1000


class Writer:
    """The process's evaluation buffer and the thread that empties it."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.configure()
        self._pid = os.getpid()  # the exit flush is only for the process that buffered
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: deque[Evaluation] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # not yet stored
        self.failed = 0  # not yet stored
        self._drops_logged_at = 0.0

    def configure(self) -> None:
        """(Re)read the settings the calling thread's side needs."""
        settings = get_settings()
        self.capacity = settings.EVALUATION_BUFFER_SIZE
        self.threaded = settings.EVALUATION_WRITER == "thread"

    # -- the calling thread's side: cheap, no I/O ---------------------------------------

    def add(self, evaluations: Sequence[Evaluation]) -> None:
        """Buffer ``evaluations``; whatever does not fit is dropped and counted."""
        if not evaluations:
            return
        capacity = self.capacity
        with self._lock:
            room = capacity - len(self._buffer)
            accepted = evaluations if room >= len(evaluations) else evaluations[: max(room, 0)]
            self._buffer.extend(accepted)
            dropped = len(evaluations) - len(accepted)
            self.dropped += dropped
            size = len(self._buffer)
        if dropped:
            self._log_drops()
        if self.threaded:
            self._ensure_thread()
            if size * 2 >= capacity:
                self._wake.set()

    def count_failed(self) -> None:
        with self._lock:
            self.failed += 1
        if self.threaded:
            self._ensure_thread()

    def __len__(self) -> int:
        return len(self._buffer)

    def _log_drops(self) -> None:
        now = time.monotonic()
        if now - self._drops_logged_at < DROP_LOG_INTERVAL:
            return
        self._drops_logged_at = now
        logger.warning(
            "configcat_segment: the evaluation buffer is full (EVALUATION_BUFFER_SIZE); "
            "%d evaluations dropped in this process so far. The database is not keeping up.",
            self.dropped,
        )

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything buffered now, on this thread. Returns how many events were stored.

        When the database fails, the evaluations go back into the buffer (as far as it has
        room) for the next flush, and the error is logged, not raised.
        """
        with self._flush_lock:
            with self._lock:
                batch = list(self._buffer)
                self._buffer.clear()
                dropped, failed = self.dropped, self.failed
                self.dropped = self.failed = 0
            try:
                written = write(batch)
                store_counts(dropped=dropped, failed=failed)
            except db.DatabaseError:
                logger.exception(
                    "configcat_segment: could not write %d evaluations; will try again",
                    len(batch),
                )
                self._put_back(batch, dropped, failed)
                return 0
            return written

    def _put_back(self, batch: list[Evaluation], dropped: int, failed: int) -> None:
        with self._lock:
            room = max(self.capacity - len(self._buffer), 0)
            kept = batch[:room]
            self._buffer.extendleft(reversed(kept))
            self.dropped += dropped + len(batch) - len(kept)
            self.failed += failed

    # -- the background thread ----------------------------------------------------------

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="configcat-segment-evaluations", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(get_settings().EVALUATION_FLUSH_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                break
            db.close_old_connections()
            try:
                self.flush()
            except Exception:  # never let the thread die: the next round tries again
                logger.exception("configcat_segment: the evaluation writer failed")
            finally:
                db.close_old_connections()
        db.connections.close_all()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (it finishes the flush in hand)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def discard(self) -> None:
        """Forget everything buffered and counted (tests)."""
        with self._lock:
            self._buffer.clear()
            self.dropped = self.failed = 0


def write(evaluations: Iterable[Evaluation]) -> int:
    """Store the messages for ``evaluations`` for every connection that forwards them."""
    from .models import SegmentConnection
    from .outbox import build_event, enqueue

    evaluations = list(evaluations)
    if not evaluations:
        return 0
    connections = list(SegmentConnection.objects.forwarding_evaluations())
    if not connections:
        return 0
    long_value_length = get_settings().LONG_VALUE_LENGTH
    events = [
        build_event(connection, message, flag_key=evaluation.flag_key)
        for evaluation in evaluations
        for connection in connections
        for message in messages_for(
            evaluation, salt=connection.message_id_salt, long_value_length=long_value_length
        )
    ]
    for start in range(0, len(events), INSERT_CHUNK):
        enqueue(events[start : start + INSERT_CHUNK], ignore_conflicts=True)
    return len(events)


def store_counts(*, dropped: int = 0, failed: int = 0) -> None:
    from .models import EvaluationCounter

    EvaluationCounter.objects.add(EvaluationCounter.DROPPED, dropped)
    EvaluationCounter.objects.add(EvaluationCounter.FAILED, failed)


_writer = Writer()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        with contextlib.suppress(ImproperlyConfigured):  # get_client() reports it
            _writer.configure()


setting_changed.connect(_settings_changed, dispatch_uid="configcat_segment.writer.configure")


def get_writer() -> Writer:
    return _writer


def add(evaluations: Sequence[Evaluation]) -> None:
    _writer.add(evaluations)


def count_failed() -> None:
    _writer.count_failed()


def flush() -> int:
    """Write buffered evaluations to the outbox now, on this thread.

    Call it at the end of a management command, a Celery task or a script to make sure
    its evaluations are stored before it returns (it also runs at exit). Returns how many
    events were stored.
    """
    return _writer.flush()


def _flush_at_exit() -> None:
    if _writer._pid != os.getpid() or not (len(_writer) or _writer.dropped or _writer.failed):
        return
    _writer.stop()
    try:
        _writer.flush()
    except Exception:
        logger.exception("configcat_segment: could not write evaluations at exit")
    if len(_writer):
        logger.error(
            "configcat_segment: %d evaluations could not be written before exit and are lost",
            len(_writer),
        )


def _after_fork_in_child() -> None:
    _writer._reset()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
