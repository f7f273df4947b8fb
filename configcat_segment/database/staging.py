"""Many rows into a PostgreSQL table in one statement: ``COPY`` to a staging table, then
``INSERT … SELECT … ON CONFLICT DO NOTHING``.

Why: the events table's count triggers run once per *statement*, with the statement's
rows as a transition table. Written as one single-row statement per row
(``executemany``), each evaluation cost PostgreSQL about 235 µs of CPU, most of it
setting up and running those triggers for one row; by ``COPY`` and one ``INSERT`` for 500
rows, 75. This process's own CPU per row fell from 28 to 16 µs too (psycopg formats
``COPY`` data in C). Measured with ``benchmarks/pg_inserts.py`` (docs/performance.md,
"Fifth pass").

The staging table is temporary (the session's own, never logged, emptied by the
statement that reads it and at every commit), created when a session first needs it.
Where the database user may not create temporary tables, :func:`copy_insert` says so by
returning ``None`` and the caller writes its rows another way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# Databases (aliases) whose user may not create temporary tables: not asked again.
_refused: set[str] = set()


def can_copy(connection: BaseDatabaseWrapper) -> bool:
    """Whether :func:`copy_insert` may be tried on ``connection``: PostgreSQL through
    psycopg 3 (``COPY`` from Python data), not refused before."""
    if connection.vendor != "postgresql" or connection.alias in _refused:
        return False
    from django.db.backends.postgresql import base

    return bool(getattr(base, "is_psycopg3", False))


def copy_insert(
    connection: BaseDatabaseWrapper,
    table: str,
    columns: Sequence[str],
    unique: str,
    rows: Iterable[Sequence[Any]],
) -> int | None:
    """Insert ``rows`` (values for ``columns``, in order) into ``table``, skipping those
    whose ``unique`` column is taken; how many were written, or ``None`` when no staging
    table could be made (nothing written). Names are the database's, unquoted.

    Runs in a transaction of its own, or a savepoint of the caller's. Rows are inserted
    in the order given (each is staged with its place, and read back in that order).
    """
    quote = connection.ops.quote_name
    # In the session's own schema by name: never a same-named table on the search_path.
    stage, target, key = f"pg_temp.{quote(table + '_stage')}", quote(table), quote(unique)
    names = ", ".join(quote(column) for column in columns)
    creating = True
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            # IF NOT EXISTS rather than a memory of having made it: behind a pooler, the
            # session may not be the one that made it.
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {names}, 0 AS place FROM {target} WITH NO DATA"  # quoted names only
            )
            creating = False
            # Through Django's wrapper: its errors, and with DEBUG its query log.
            with (
                connection.wrap_database_errors,
                cursor.copy(f"COPY {stage} ({names}, place) FROM STDIN") as copy,
            ):
                for place, row in enumerate(rows):
                    copy.write_row((*row, place))
            # Emptied as it is read: a second call in the same transaction starts afresh.
            cursor.execute(
                f"WITH staged AS (DELETE FROM {stage} RETURNING {names}, place) "  # noqa: S608
                f"INSERT INTO {target} ({names}) SELECT {names} FROM staged ORDER BY place "
                f"ON CONFLICT ({key}) DO NOTHING"
            )
            written: int = cursor.rowcount
    except DatabaseError as exc:
        if not creating or getattr(exc.__cause__, "sqlstate", None) not in _CANNOT_STAGE:
            raise
        _refused.add(connection.alias)
        return None
    return written


# Why a staging table could not be made: TEMPORARY not granted to the user (42501), or a
# PostgreSQL-compatible server without temporary tables (0A000, feature not supported).
_CANNOT_STAGE = {"42501", "0A000"}
