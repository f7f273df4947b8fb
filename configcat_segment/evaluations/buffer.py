"""The evaluation buffer: recorded evaluations wait here, off the request thread.

Evaluations wait in a bounded in-memory buffer. A background thread (``EVALUATION_WRITER``
``"thread"``) writes them every ``EVALUATION_FLUSH_SECONDS``, or sooner when the buffer is
half full, through :func:`configcat_segment.evaluations.store.write`. :func:`flush` does
the same on the calling thread; it also runs at exit (:mod:`configcat_segment.lifecycle`
calls :func:`flush_at_exit`), so a management command or a script loses nothing.

What cannot be forwarded is counted (``EvaluationCounter``, shown by
``configcat_segment_status`` for every process) and logged at most once a minute:
``dropped`` when the buffer is full because the database is not keeping up, ``failed``
when the SDK could not evaluate, ``unwritable`` when one evaluation cannot be written.
When the database does not answer, the whole batch goes back into the buffer for the next
round (new evaluations are dropped once it is full).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Sequence

from django import db

from ..conf import get_settings
from ..database.connections import close_broken_connections
from ..logthrottle import LogThrottle
from .payloads import Evaluation
from .store import DatabaseUnavailable, write

logger = logging.getLogger(__name__)

LOG_INTERVAL = 60.0


class Writer:
    """The process's evaluation buffer and the thread that empties it."""

    def __init__(self) -> None:
        # Whether the delivery backend lets a thread write (a test backend does not).
        self._background_allowed = True
        self._reset()

    def _reset(self) -> None:
        # (capacity, threaded), read from the settings on first use, not at import.
        self._config: tuple[int, bool] | None = None
        self._pid = os.getpid()  # the exit flush is only for the process that buffered
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: deque[Evaluation] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._forget()

    def _forget(self) -> None:
        self._buffer.clear()
        # Counted and not yet stored, by EvaluationCounter name: "dropped", "failed",
        # "unwritable".
        self._counts: Counter[str] = Counter()
        self._full_log = LogThrottle(LOG_INTERVAL)
        self._unwritable_log = LogThrottle(LOG_INTERVAL)
        self._unavailable_log = LogThrottle(LOG_INTERVAL)

    def _settings(self) -> tuple[int, bool]:
        config = self._config
        if config is None:
            settings = get_settings()
            threaded = settings.EVALUATION_WRITER == "thread" and self._background_allowed
            config = settings.EVALUATION_BUFFER_SIZE, threaded
            self._config = config
        return config

    def forget_settings(self) -> None:
        """Read the settings again on next use (they changed)."""
        self._config = None

    def allow_background(self, allowed: bool) -> None:
        """Whether the thread may write (``EVALUATION_WRITER = "thread"``); when not, only
        :meth:`flush` writes, and a running thread stops."""
        self._background_allowed = allowed
        self._config = None
        if not allowed and self._thread is not None:
            self.stop()

    # -- the calling thread's side: cheap, no I/O ---------------------------------------

    def add(self, evaluations: Sequence[Evaluation]) -> None:
        """Buffer ``evaluations``; whatever does not fit is dropped and counted."""
        if not evaluations:
            return
        capacity, threaded = self._config or self._settings()
        with self._lock:
            room = capacity - len(self._buffer)
            accepted = evaluations if room >= len(evaluations) else evaluations[: max(room, 0)]
            self._buffer.extend(accepted)
            dropped = len(evaluations) - len(accepted)
            if dropped:
                self._counts["dropped"] += dropped
            size = len(self._buffer)
        if dropped:
            self._full_log.log(
                logger,
                logging.WARNING,
                "configcat_segment: the evaluation buffer is full (EVALUATION_BUFFER_SIZE); "
                "%d evaluations dropped in this process so far. The database is not keeping up.",
                self.dropped,
            )
        if threaded:
            self._ensure_thread()
            if size * 2 >= capacity:
                self._wake.set()

    def count_failed(self) -> None:
        with self._lock:
            self._counts["failed"] += 1
        if self._settings()[1]:
            self._ensure_thread()

    @property
    def dropped(self) -> int:
        """Evaluations dropped because the buffer was full, not yet stored."""
        return self._counts["dropped"]

    @property
    def failed(self) -> int:
        """Failed evaluations counted, not yet stored."""
        return self._counts["failed"]

    def __len__(self) -> int:
        return len(self._buffer)

    def has_work(self) -> bool:
        """Whether anything is buffered or counted and not yet stored."""
        return bool(self._buffer or +self._counts)

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> int:
        """Write everything buffered now, on this thread. Returns how many events were stored.

        Never raises: when the database does not answer, the evaluations go back into the
        buffer (as far as it has room) for the next flush; an evaluation that cannot be
        written on its own is dropped and counted. Both are logged.
        """
        with self._flush_lock:
            with self._lock:
                batch = list(self._buffer)
                self._buffer.clear()
                counts, self._counts = +self._counts, Counter()
            try:
                written = write(batch, counts)
            except DatabaseUnavailable as exc:
                self._put_back(batch, counts)
                self._unavailable_log.log(
                    logger,
                    logging.ERROR,
                    "configcat_segment: could not write %d evaluations; will try again: %s",
                    len(batch),
                    exc,
                )
                return 0
            if written.counts_not_stored:
                self._put_back([], written.counts_not_stored)
            if written.unwritable:
                self._log_unwritable(written.unwritable)
            return written.events

    def _put_back(self, batch: list[Evaluation], counts: Counter[str]) -> None:
        with self._lock:
            room = max(self._settings()[0] - len(self._buffer), 0)
            kept = batch[:room]
            self._buffer.extendleft(reversed(kept))
            self._counts.update(counts)
            if len(batch) > len(kept):
                self._counts["dropped"] += len(batch) - len(kept)

    def _log_unwritable(self, unwritable: list[tuple[Evaluation, Exception]]) -> None:
        evaluation, error = unwritable[0]
        self._unwritable_log.log(
            logger,
            logging.WARNING,
            "configcat_segment: %d evaluations could not be written and were dropped "
            '(counted as "unwritable"); the first, of %r: %s: %s',
            len(unwritable),
            evaluation.flag_key,
            type(error).__name__,
            error,
            exc_info=error,
        )

    # -- the background thread ----------------------------------------------------------

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            # A fresh thread waits for its own reasons, not for a stop() or wake of the past.
            self._stop.clear()
            self._wake.clear()
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
            close_broken_connections()  # before use: the turn after a failure drops it
            try:
                self.flush()
            except Exception:  # never let the thread die: the next round tries again
                logger.exception("configcat_segment: the evaluation writer failed")
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
        """Forget everything buffered, counted and logged (tests)."""
        with self._lock:
            self._forget()


_writer = Writer()


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


def flush_at_exit() -> None:
    """Write what is buffered before the process exits (the first step of the exit
    sequence in :mod:`configcat_segment.lifecycle`; delivering it comes next)."""
    if _writer._pid != os.getpid() or not _writer.has_work():
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


def forget_settings() -> None:
    """``CONFIGCAT_SEGMENT`` changed: read it again on next use."""
    _writer.forget_settings()


def allow_background_writer(allowed: bool) -> None:
    """Whether the background thread may write (the delivery backend decides)."""
    _writer.allow_background(allowed)


def after_fork_in_child() -> None:
    """In a ``fork()``ed child: an empty buffer and no thread (the parent writes its own)."""
    _writer._reset()
