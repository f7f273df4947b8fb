"""The dispatcher's SQL: claiming due events with a lease, and settling their outcome.

A claim takes up to ``BATCH_SIZE`` due events of one connection and gives each a *lease*
in the claims table (``EventClaim``: the event's key, ``lease_until``, and the claims its
``attempts`` does not count yet), in one statement; it writes nothing to the events
table. An event is due when its status and ``next_attempt_at`` say so **and** no live
lease holds it. Settling an outcome is then the only write to the event: it adds the
claim count to ``attempts`` and deletes the claim row, for the events whose claim row
still carries this round's lease, so a dispatcher whose lease ran out (and whose events
someone else claimed since) changes nothing.

Why two racing claims cannot both take an event, on PostgreSQL: the claim chooses rows
with ``FOR UPDATE SKIP LOCKED``, but those locks end when the claim commits, and a second
claim whose snapshot predates that commit still sees no lease, so it can lock the same
rows once they are free. It then tries to insert their claim rows, and the primary key
decides: in READ COMMITTED, ``INSERT … ON CONFLICT DO UPDATE`` acts on the conflicting
row even when no version of it is visible to the statement's snapshot (waiting for an
uncommitted inserter first), and evaluates the update's ``WHERE lease_until <= now`` on
that latest version, which refuses a live lease: the row is not returned and the event
is not sent (``tests/delivery/test_claims.py`` forces the window). SQLite serialises
writers, so no second claim runs in between at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, F, Max, OuterRef

from ..models import Event, EventClaim, SegmentConnection
from ..models.lookups import any_of


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed event: just what sending and settling it needs."""

    pk: int
    text: str  # the message, as stored: sent as it is
    attempts: int  # this one included


@contextlib.contextmanager
def bookkeeping(using: str) -> Iterator[None]:
    """A transaction for the dispatcher's own bookkeeping.

    Nothing it writes needs to survive a database crash: a lost claim is a lease that
    never was, a lost "delivered" an event sent again with the same messageId (which
    Segment dedupes). So on PostgreSQL it does not wait for the WAL to reach the disk,
    which would otherwise cost two disk flushes per batch. (Writing events, in the
    outbox, stays fully durable.)
    """
    with transaction.atomic(using=using):
        if connections[using].vendor == "postgresql":
            with connections[using].cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# The statuses of the partial "due" index, written into the SQL (see models.lookups).
_DUE = ", ".join(f"'{status}'" for status in Event.DUE)
# An event ``e`` due at the time given as the parameter (the partial "due" index's rows).
_IS_DUE = f"e.status IN ({_DUE}) AND e.next_attempt_at <= %s"


def due_connection_ids(using: str, now: dt.datetime) -> list[uuid.UUID]:
    """Connected connections that have events due at ``now`` and whose delivery is not
    paused. One probe of the due index per connection, however long the backlog is.

    Raw SQL, like the claim: the runner asks before every lane it starts, and building
    the same query through the ORM cost about 1.5 ms of CPU each time (a third of a
    worker's CPU with four workers sharing a backlog)."""
    db = connections[using]
    quote = db.ops.quote_name
    events, sources = quote(Event._meta.db_table), quote(SegmentConnection._meta.db_table)
    at = db.ops.adapt_datetimefield_value(now)
    sql = (
        f"SELECT s.id FROM {sources} s WHERE s.connected = %s "  # noqa: S608  # names only
        "AND (s.delivery_paused_until IS NULL OR s.delivery_paused_until <= %s) "
        f"AND EXISTS (SELECT 1 FROM {events} e WHERE e.connection_id = s.id "
        f"AND {_IS_DUE})"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [True, at, at])
        keys = cursor.fetchall()
    to_python = SegmentConnection._meta.pk.to_python
    return [to_python(key) for (key,) in keys]


def claim(
    using: str,
    connection: SegmentConnection,
    now: dt.datetime,
    lease_until: dt.datetime,
    limit: int,
) -> list[Claimed]:
    """Claim up to ``limit`` of ``connection``'s events due at ``now`` until ``lease_until``.

    Raw SQL, rows as tuples: this runs for every 500 events delivered, and the ORM's work
    for it was a good part of the dispatcher's CPU. The event rows are only read (and, on
    PostgreSQL, locked until the statement's transaction ends); what the claim writes is
    one narrow claims row per event.
    """
    db = connections[using]
    key = Event._meta.get_field("connection").get_db_prep_value(connection.pk, db)
    at, until = db.ops.adapt_datetimefield_value(now), db.ops.adapt_datetimefield_value(lease_until)
    if db.vendor == "postgresql":
        sql, params = _postgresql_claim(db), [key, at, at, limit, until, at]
    else:
        sql, params = _sqlite_claim(db), [until, key, at, at, limit, at]
    with bookkeeping(using), db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort()  # in the order they were written
    return [Claimed(pk, text, attempts) for pk, text, attempts in rows]


def _names(db: BaseDatabaseWrapper) -> tuple[str, str]:
    quote = db.ops.quote_name
    return quote(Event._meta.db_table), quote(EventClaim._meta.db_table)


def _due(events: str, claims: str, columns: str) -> str:
    """The due events not held by a live lease, in the order of the partial "due" index
    (a tie-break would mean a sort). Parameters: connection, now, now, limit."""
    # Only quoted names and the statuses are written into the SQL; values are parameters.
    return (
        f"SELECT {columns} FROM {events} e WHERE e.connection_id = %s "  # noqa: S608
        f"AND {_IS_DUE} AND NOT EXISTS ("
        f"SELECT 1 FROM {claims} c WHERE c.event_id = e.id AND c.lease_until > %s) "
        "ORDER BY e.next_attempt_at LIMIT %s"
    )


def _upsert(claims: str) -> str:
    """Take each chosen event's claim row: a new one, or one whose lease ran out (its
    count goes on). A live lease is left alone, and its event not returned.
    Parameters: lease_until, now."""
    return (
        f"ON CONFLICT (event_id) DO UPDATE SET lease_until = excluded.lease_until, "
        f"claims = {claims}.claims + 1 WHERE {claims}.lease_until <= %s"
    )


def _postgresql_claim(db: BaseDatabaseWrapper) -> str:
    """One statement: choose and lock (skipping rows other claims are locking), take the
    claim rows, and read back the events the claims table let through."""
    events, claims = _names(db)
    due = _due(events, claims, "e.id, e.payload::text AS text, e.attempts")
    return (
        f"WITH due AS ({due} FOR UPDATE OF e SKIP LOCKED), "  # noqa: S608  # names only
        f"claimed AS (INSERT INTO {claims} (event_id, lease_until, claims) "
        f"SELECT id, %s, 1 FROM due {_upsert(claims)} RETURNING event_id, claims) "
        "SELECT due.id, due.text, due.attempts + claimed.claims "
        "FROM claimed JOIN due ON due.id = claimed.event_id"
    )


def _sqlite_claim(db: BaseDatabaseWrapper) -> str:
    """One statement too: SQLite serialises writers, so no other claim runs between the
    choice and the insert. Its ``RETURNING`` names only the claims table; subqueries read
    the event's message and attempts."""
    events, claims = _names(db)
    due = _due(events, claims, "e.id, %s, 1")
    # The lease is the SELECT's first parameter here, not the INSERT's.
    event = f"(SELECT {{}} FROM {events} WHERE id = {claims}.event_id)"  # noqa: S608
    return (
        f"INSERT INTO {claims} (event_id, lease_until, claims) "
        f"{due} {_upsert(claims)} RETURNING event_id, {event.format('payload')}, "
        f"{event.format('attempts')} + claims"
    )


def text_size(event: Claimed) -> int:
    """The size in bytes of ``event``'s message as sent."""
    text = event.text
    return len(text) if text.isascii() else len(text.encode())


def settle(
    using: str,
    events: Sequence[Claimed],
    lease_until: dt.datetime,
    uncounted: int = 0,
    **values: Any,
) -> int:
    """Record an outcome (``values``) for those of ``events`` whose claim row still carries
    the lease ``lease_until``; returns how many were.

    Their claim rows go first (``DELETE … RETURNING``, which also locks them against a
    claim taking them over meanwhile), then the events: the one write to each event row,
    adding the claims not yet counted to ``attempts``, less ``uncounted`` (1 when this
    round's own claim was not an attempt: the events were put back untried, or waited
    for the connection). Call it inside a transaction (``bookkeeping``).

    On PostgreSQL the event rows are locked first, in key order: a claim locks event rows
    and then claim rows, so a round settling after its lease ran out, while another
    worker claims the same events, would otherwise take the two in the opposite order and
    deadlock. Locked, they are skipped by claims (``SKIP LOCKED``) until this commits.
    """
    db = connections[using]
    table, claims = _names(db)
    keys, key_params = any_of(db, [e.pk for e in events])
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute(
                f"SELECT id FROM {table} WHERE id {keys} ORDER BY id FOR UPDATE",  # noqa: S608
                key_params,
            )
        cursor.execute(
            f"DELETE FROM {claims} WHERE event_id {keys} AND lease_until = %s "  # noqa: S608
            "RETURNING event_id, claims",
            [*key_params, db.ops.adapt_datetimefield_value(lease_until)],
        )
        held = cursor.fetchall()
    by_count: dict[int, list[int]] = {}
    for pk, count in held:
        by_count.setdefault(count - uncounted, []).append(pk)
    settled = 0
    for count, pks in by_count.items():  # one UPDATE, unless a worker died on some of them
        rows = Event.objects.using(using).filter(pk__any_of=pks)
        settled += rows.update(attempts=F("attempts") + count, **values)
    return settled


def settled_rows(using: str, events: Sequence[Claimed], **values: Any) -> list[Event]:
    """Those of ``events`` settled as ``values``, whole (for signal receivers), in order."""
    rows = Event.objects.using(using).filter(pk__any_of=[e.pk for e in events], **values)
    return list(rows.order_by("pk"))


def queued_at(using: str, events: Sequence[Claimed]) -> dict[int, dt.datetime]:
    """When each of ``events`` entered the queue (only a retry needs to know)."""
    rows = Event.objects.using(using).filter(pk__any_of=[e.pk for e in events])
    return dict(rows.order_by().values_list("pk", "queued_at"))


def failure_streak(using: str, connection: SegmentConnection) -> int:
    """The most attempts any of the connection's failed events has had (0 if none)."""
    failed = Event.objects.using(using).filter(connection=connection, status=Event.Status.FAILED)
    most: int | None = failed.aggregate(most=Max("attempts"))["most"]
    return most or 0


def sweep(using: str, now: dt.datetime) -> int:
    """Delete claim rows left behind: leases that ran out on events that are gone (deleted
    while claimed, by a worker that then died) or no longer queued. An expired claim of a
    queued event stays: it counts an attempt that killed its worker. Returns how many."""
    queued = Event.objects.using(using).filter(pk=OuterRef("event_id"), status__in=Event.DUE)
    stale = EventClaim.objects.using(using).filter(lease_until__lte=now).exclude(Exists(queued))
    count: int = stale.delete()[0]
    return count
