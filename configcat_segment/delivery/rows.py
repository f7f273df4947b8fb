"""Writing events in bulk statements, without the ORM's per-row work.

:func:`build_row` turns a message into what its ``Event`` row holds, the message already
its final JSON text (:func:`~..segment.wire.encode_message`); :func:`insert_rows` writes
rows with ``INSERT … ON CONFLICT (message_id) DO NOTHING`` through Django's connection for
the events table's database (its router decides), inside whatever transaction the caller
has open. The statement's shape is the one each database runs cheapest
(``docs/performance.md``, "Final figures"):

- SQLite: multi-row ``VALUES``, as many rows as it takes parameters for (71). The events
  table's row triggers make SQLite open a statement journal per statement; one statement
  per row cost four times the CPU per row.
- PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT … SELECT``
  (``database/staging.py``): the count triggers run once per statement, not per row, and
  psycopg formats the data in C. Under ``COPY_FROM`` rows, or where the user may not make
  temporary tables, one short single-row statement run for every row (``executemany``,
  pipelined), its parameters bound on the server (``database/cursors.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from django.db import connections, router

from ..database.cursors import server_bound_cursor
from ..database.staging import can_copy, copy_insert
from ..models import Event
from ..segment.payloads import MessageTooLarge
from ..segment.wire import dumps, encode_message
from ..text import clean

# Written by insert_rows, in this order; the rest of the row is the same for all rows of
# a chunk (attempts 0, and "now" as created, queued and due).
_COLUMNS = (
    "connection",
    "type",
    "event_name",
    "flag_key",
    "user_id",
    "message_id",
    "payload",
    "status",
    "last_error",
    "receipt",
)
_SHARED = ("attempts", "created_at", "queued_at", "next_attempt_at")
# PostgreSQL: from this many rows on, they go by COPY and one INSERT (database/staging.py);
# fewer (a webhook's few changes) by one pipelined statement per row, in fewer round trips.
COPY_FROM = 50
# Only names from the model's options, and placeholders, go into it.
_INSERT = "INSERT INTO {table} ({columns}) {rows} ON CONFLICT ({unique}) DO NOTHING"


class Row(NamedTuple):
    """An event to write: its message as text, and the columns the event log filters on."""

    connection_id: uuid.UUID
    type: str
    event_name: str
    flag_key: str
    user_id: str
    message_id: str
    text: str
    status: str
    last_error: str
    receipt_id: int | None


def build_row(
    connection_id: uuid.UUID,
    message: Mapping[str, Any],
    *,
    flag_key: str = "",
    receipt_id: int | None = None,
) -> Row:
    """The row for ``message``, shrunk to fit Segment's per-message limit.

    A message that cannot be made to fit is kept, as ``dead`` with the reason, so it is
    never lost and never poisons a batch.
    """
    try:
        text, payload = encode_message(message)
        status, error = Event.Status.PENDING, ""
    except MessageTooLarge as exc:
        payload = dict(message)
        text, status, error = dumps(payload), Event.Status.DEAD, str(exc)
    user = payload.get("userId") or payload.get("anonymousId") or ""
    return Row(
        connection_id,
        payload["type"],
        payload.get("event", ""),
        clean(flag_key)[:255] if flag_key else "",
        clean(str(user))[:255] if user else "",
        payload["messageId"],
        text,
        status,
        error,
        receipt_id,
    )


def insert_rows(rows: Sequence[Row], *, now: dt.datetime) -> int:
    """Write ``rows``, skipping any whose ``message_id`` is stored already; how many were
    written."""
    if not rows:
        return 0
    connection = connections[router.db_for_write(Event)]
    prepare_id = Event._meta.get_field("connection").get_db_prep_save
    ids: dict[uuid.UUID, Any] = {}
    prepared = []
    for row in rows:
        connection_id = ids.get(row.connection_id)
        if connection_id is None:
            connection_id = ids[row.connection_id] = prepare_id(row.connection_id, connection)
        prepared.append((connection_id, *row[1:]))
    shared = [
        Event._meta.get_field(name).get_db_prep_save(value, connection)  # type: ignore[union-attr]
        for name, value in zip(_SHARED, (0, now, now, now), strict=True)
    ]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            return _insert_values(connection, cursor, prepared, shared)
    if len(prepared) >= COPY_FROM and can_copy(connection):
        *columns, unique = _columns()
        copied = (row + tuple(shared) for row in prepared)
        written = copy_insert(connection, Event._meta.db_table, columns, unique, copied)
        if written is not None:
            return written
    with server_bound_cursor(connection) as cursor:
        return _insert_each(connection, cursor, prepared, shared)


def _columns() -> list[str]:
    """The columns written (``_COLUMNS`` then ``_SHARED``), then the unique one."""
    meta = Event._meta
    return [meta.get_field(name).column or "" for name in (*_COLUMNS, *_SHARED, "message_id")]  # type: ignore[union-attr]


def _names(connection: Any) -> tuple[str, str, str, str]:
    """The quoted table name, its column list (``_COLUMNS`` then ``_SHARED``), the unique
    ``message_id`` column, and one row's placeholders (``payload`` cast on PostgreSQL)."""
    meta, quote = Event._meta, connection.ops.quote_name
    *columns, unique = (quote(name) for name in _columns())
    payload = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    row = ", ".join(payload if name == "payload" else "%s" for name in (*_COLUMNS, *_SHARED))
    return quote(meta.db_table), ", ".join(columns), unique, f"({row})"


def _insert_values(
    connection: Any, cursor: Any, rows: list[tuple[Any, ...]], shared: list[Any]
) -> int:
    """Multi-row ``VALUES``, as many rows per statement as the database takes parameters."""
    table, columns, unique, values = _names(connection)
    fields = [Event._meta.get_field(name) for name in _COLUMNS + _SHARED]
    per_statement = max(1, connection.ops.bulk_batch_size(fields, rows))
    written = 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params = [value for row in chunk for value in (*row, *shared)]
        sql = _INSERT.format(
            table=table,
            columns=columns,
            rows=f"VALUES {', '.join([values] * len(chunk))}",
            unique=unique,
        )
        cursor.execute(sql, params)
        written += cursor.rowcount if cursor.rowcount >= 0 else len(chunk)
    return written


def _insert_each(
    connection: Any, cursor: Any, rows: list[tuple[Any, ...]], shared: list[Any]
) -> int:
    """PostgreSQL: one single-row statement run for every row (``executemany``:
    psycopg pipelines them in one round trip), its parameters bound on the server
    (``database/cursors.py``): bound on the client, each row was a new statement text to
    quote in Python and for PostgreSQL to parse and plan."""
    table, columns, unique, values = _names(connection)
    sql = _INSERT.format(table=table, columns=columns, rows=f"VALUES {values}", unique=unique)
    cursor.executemany(sql, [(*row, *shared) for row in rows])
    return cursor.rowcount if cursor.rowcount >= 0 else len(rows)
