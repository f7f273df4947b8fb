"""Writing recorded evaluations to the outbox: the database side of the evaluation buffer.

:func:`write` resolves the connections that forward evaluations with one query, builds
the messages, and inserts them, with the counts (``EvaluationCounter``), in one
transaction.

When writing fails, the database decides what happens. If it does not answer, nothing
was written (:class:`DatabaseUnavailable`): the buffer keeps the batch for the next round.
If it answers, something in the batch is at fault: the batch is written in halves, down
to single evaluations (:class:`configcat_segment.delivery.halving.Halving`), and one that
still fails on its own is left out and counted. Good evaluations are never lost with a
bad one, and nothing is retried forever. A retried evaluation makes the same messageIds,
so it is never stored twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from django import db
from django.db import router, transaction

from ..conf import get_settings
from ..constants import INSERT_CHUNK
from ..delivery.halving import Halving, halves
from .payloads import Evaluation, Shared, messages_for
from .policies import policy_for

if TYPE_CHECKING:
    from ..delivery.rows import Row
    from ..models import SegmentConnection

logger = logging.getLogger(__name__)

# The EvaluationCounter of anonymous ids drawn at random (no cookie, no session) and sent.
RANDOM_ANONYMOUS_IDS = "random_anonymous_ids"


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
        stored, refused = _insert_in_halves(built, alias)
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
    shared = Shared()  # users read once, message ids keyed once, for the whole batch
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
                    shared=shared,
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


def _insert_in_halves(built: _Built, alias: str) -> tuple[int, list[tuple[Evaluation, Exception]]]:
    """Insert ``built`` half by half, each part in its own savepoint, until the evaluations
    the database refuses stand alone: how many events were stored, and those refused."""
    search: Halving[tuple[Evaluation, list[Row]], Exception] = Halving(halves(built))
    stored = 0
    while search:
        part = search.next_part()
        try:
            with transaction.atomic(using=alias):
                stored += _insert(part.items)
        except Exception as exc:
            _raise_if_unavailable(alias, exc)
            search.refused(part, exc)
    return stored, [(evaluation, error) for (evaluation, _), error in search.alone]


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
