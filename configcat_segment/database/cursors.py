"""Cursors for statements the app runs many times over: parameters bound on the server.

Django's PostgreSQL backend binds parameters on the client unless the database's
``OPTIONS`` say ``"server_side_binding": True``: psycopg quotes every value into the
statement's text in Python, and PostgreSQL parses each text as a new statement. For the
outbox's single-row insert run for each row, that cost this process 43 µs per row; with
the parameters sent apart from one statement, 28 (``benchmarks/pg_inserts.py``,
docs/performance.md "Fifth pass").
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def server_bound_cursor(connection: BaseDatabaseWrapper) -> Any:
    """A cursor of ``connection`` (Django's wrapper: its execute wrappers and, with
    ``DEBUG``, its query log apply) that sends parameters apart from the statement. For
    writes: it reads timestamps without the connection's time zone loader.

    Only with psycopg 3 on PostgreSQL; anywhere else, the connection's usual cursor. It
    runs in the connection's transaction like any other. Its statements are prepared only
    if the database's ``OPTIONS`` set ``prepare_threshold`` (Django's default: never, which
    keeps poolers in transaction mode working).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql import base

    server_binding = getattr(base, "ServerBindingCursor", None)
    if not getattr(base, "is_psycopg3", False) or server_binding is None:
        return connection.cursor()  # psycopg2 binds on the client in any case
    # What connection.cursor() does first: replace a connection that failed its health
    # check, refuse a connection of another thread, connect.
    connection.close_if_health_check_failed()
    connection.validate_thread_sharing()
    connection.ensure_connection()
    cursor = server_binding(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)
