"""Writing recorded evaluations to the outbox, off the request thread.

Evaluations wait in a bounded in-memory buffer. A background thread (``EVALUATION_WRITER``
``"thread"``) writes them every ``EVALUATION_FLUSH_SECONDS``, or sooner when the buffer is
half full: it resolves the connections that forward evaluations with one query, builds
the messages, and inserts them, with the counts below, in one transaction. :func:`flush`
does the same on the calling thread; it also runs at exit, so a management command or a
script loses nothing.

What cannot be forwarded is counted (``EvaluationCounter``, shown by
``configcat_segment_status`` for every process) and logged at most once a minute:
``dropped`` when the buffer is full because the database is not keeping up, ``failed``
when the SDK could not evaluate, ``unwritable`` when one evaluation cannot be written.

When writing fails, the database decides what happens. If it does not answer, nothing
was written and the whole batch waits in the buffer for the next round (new evaluations
are dropped once it is full). If it answers, something in the batch is at fault: the
batch is written in halves, down to single evaluations, and one that still fails on its
own is left out and counted. Good evaluations are never lost with a bad one, and nothing
is retried forever. A retried evaluation makes the same messageIds, so it is never
stored twice.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from django import db
from django.core.signals import setting_changed
from django.db import router, transaction

from ..conf import SETTING_NAME, get_settings
from ..logthrottle import LogThrottle
from .payloads import Evaluation, messages_for
from .policies import policy_for

if TYPE_CHECKING:
    from ..delivery.rows import Row
    from ..models import SegmentConnection

logger = logging.getLogger(__name__)

LOG_INTERVAL = 60.0
# The EvaluationCounter of anonymous ids drawn at random (no cookie, no session) and sent.
RANDOM_ANONYMOUS_IDS = "random_anonymous_ids"
# Events per INSERT statement: large enough to be cheap, small enough for any database.
INSERT_CHUNK = 1000


class DatabaseUnavailable(Exception):
    """The database failed and does not answer a trivial query, or failed in a way that
    passes (a deadlock): no evaluation is at fault, and the batch is tried again later."""


class Written(NamedTuple):
    """What :func:`write` did."""

    # Events stored (a message per connection: a track, maybe an identify).
    events: int
    # Evaluations left out because they could not be written on their own, and why.
    unwritable: list[tuple[Evaluation, Exception]]
    # Counts that could not be stored, to be stored with a later batch.
    counts_not_stored: Counter[str]


class Writer:
    """The process's evaluation buffer and the thread that empties it."""

    def __init__(self) -> None:
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
            config = settings.EVALUATION_BUFFER_SIZE, settings.EVALUATION_WRITER == "thread"
            self._config = config
        return config

    def forget_settings(self) -> None:
        """Read the settings again on next use (they changed)."""
        self._config = None

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
        """Forget everything buffered, counted and logged (tests)."""
        with self._lock:
            self._forget()


# -- the database side --------------------------------------------------------------------


def write(evaluations: Sequence[Evaluation], counts: Counter[str] | None = None) -> Written:
    """Store the messages for ``evaluations``, for every connection that forwards them,
    and add ``counts`` (``EvaluationCounter`` names) to the counters: one transaction.

    An evaluation whose messages cannot be built, or that the database refuses on its own,
    is left out and counted as ``unwritable``. Raises :class:`DatabaseUnavailable` when
    the database does not answer; then nothing was stored.
    """
    from ..models import Event, SegmentConnection

    if not evaluations and not counts:
        return Written(0, [], Counter())
    alias = router.db_for_write(Event)
    try:
        connections = list(SegmentConnection.objects.forwarding_evaluations())
    except Exception as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    built, unwritable, built_counts = _build(evaluations, connections)
    counts = Counter(counts) + built_counts + Counter(unwritable=len(unwritable))
    if not any(events for _, events in built) and not counts:
        return Written(0, unwritable, Counter())
    try:
        with transaction.atomic(using=alias):
            stored = _insert(built)
            store_counts(counts)
        return Written(stored, unwritable, Counter())
    except Exception as exc:
        _raise_if_unavailable(alias, exc)
    # Something in the batch is at fault: find it, in halves, each in its own savepoint.
    with transaction.atomic(using=alias):
        refused: list[tuple[Evaluation, Exception]] = []
        stored = sum(_insert_or_split(half, alias, refused) for half in _halves(built))
        counts["unwritable"] += len(refused)
        try:
            with transaction.atomic(using=alias):
                store_counts(counts)
            counts = Counter()
        except Exception as exc:
            _raise_if_unavailable(alias, exc)
            logger.exception("configcat_segment: could not store the evaluation counters")
    return Written(stored, unwritable + refused, counts)


_Built = list[tuple[Evaluation, list["Row"]]]


def _build(
    evaluations: Sequence[Evaluation], connections: Sequence[SegmentConnection]
) -> tuple[_Built, list[tuple[Evaluation, Exception]], Counter[str]]:
    """Each evaluation with its unsaved events, those whose messages could not be built,
    and the counts of what was built (``random_anonymous_ids``).

    Each connection's policies decide what it gets (:func:`.policies.policy_for`): which
    exposures, what personal data, and whether "Experiment Viewed".
    """
    from ..delivery.rows import build_row

    long_value_length = get_settings().LONG_VALUE_LENGTH
    policies = [(connection, policy_for(connection)) for connection in connections]
    built: _Built = []
    unbuildable = []
    # (connection, anonymous id) pairs drawn at random: each is a new tracked user in
    # Segment. A request's evaluations share one id; outside requests each has its own.
    random_ids: set[tuple[Any, Any]] = set()
    for evaluation in evaluations:
        try:
            events = []
            for connection, policy in policies:
                if not policy.exposure.admits(
                    evaluation.flag_key,
                    evaluation.user_id or evaluation.anonymous_id,
                    by_rule=evaluation.by_rule,
                    by_percentage=evaluation.by_percentage,
                ):
                    continue
                messages = messages_for(
                    evaluation,
                    salt=connection.message_id_salt,
                    long_value_length=long_value_length,
                    personal_data=policy.personal_data,
                    experiments=policy.experiments,
                )
                events += [
                    build_row(connection.pk, message, flag_key=evaluation.flag_key)
                    for message in messages
                ]
                if evaluation.random_anonymous_id and messages:
                    random_ids.add((connection.pk, evaluation.anonymous_id or id(evaluation)))
        except Exception as exc:
            unbuildable.append((evaluation, exc))
        else:
            built.append((evaluation, events))
    counts: Counter[str] = Counter()
    if random_ids:
        counts[RANDOM_ANONYMOUS_IDS] = len(random_ids)
    return built, unbuildable, counts


def _insert(built: _Built) -> int:
    from ..delivery.outbox import enqueue_rows

    events = [event for _, evaluation_events in built for event in evaluation_events]
    # In one order every process agrees on: processes inserting the same ids (each its own
    # first-seen copy of an evaluation) then take their unique-index locks in the same
    # order, and wait for each other instead of deadlocking (benchmarks/fleet.py found it
    # on PostgreSQL). Identifies first, so a user's traits go before their events; then by
    # messageId (a message's type follows from its id, so the order is the same for all).
    events.sort(key=lambda event: (event.type != "identify", event.message_id))
    for start in range(0, len(events), INSERT_CHUNK):
        enqueue_rows(events[start : start + INSERT_CHUNK])
    return len(events)


def _insert_or_split(built: _Built, alias: str, refused: list[tuple[Evaluation, Exception]]) -> int:
    """Insert ``built`` in a savepoint; when refused, each half in turn, down to single
    evaluations, which are added to ``refused``. Returns how many events were stored."""
    try:
        with transaction.atomic(using=alias):
            return _insert(built)
    except Exception as exc:
        _raise_if_unavailable(alias, exc)
        if len(built) == 1:
            refused.append((built[0][0], exc))
            return 0
    return sum(_insert_or_split(half, alias, refused) for half in _halves(built))


def _halves(built: _Built) -> list[_Built]:
    """``built`` in two halves (one evaluation alone gets a second try as it is)."""
    middle = len(built) // 2
    return [built[:middle], built[middle:]] if middle else [built]


# SQLSTATEs of failures that pass: a deadlock, a serialization failure. Retried whole.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def _raise_if_unavailable(alias: str, error: Exception) -> None:
    """Raise :class:`DatabaseUnavailable` if ``error`` is one that passes (a deadlock with
    another writer), or if the database does not answer ``SELECT 1``: then ``error`` is
    the database's, not the batch's."""
    sqlstate = getattr(error.__cause__, "sqlstate", None) or getattr(error, "sqlstate", None)
    if sqlstate in _TRANSIENT_SQLSTATES:
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
    try:
        with db.connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error


def store_counts(counts: Counter[str]) -> None:
    """Add ``counts`` to the ``EvaluationCounter`` rows of the same names."""
    from ..models import EvaluationCounter

    for name, amount in sorted(counts.items()):  # one order everywhere: no deadlock
        EvaluationCounter.objects.add(name, amount)


_writer = Writer()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        _writer.forget_settings()


setting_changed.connect(
    _settings_changed, dispatch_uid="configcat_segment.evaluations.store.configure"
)


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
    """Write what is buffered before the process exits: registered with ``atexit``, or
    called by the exit hook of ``DELIVERY = "thread"``, which then delivers it."""
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


def _after_fork_in_child() -> None:
    _writer._reset()


atexit.register(flush_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
