"""How the app's long-lived background loops hold their database connections.

Django closes a connection at the end of each request unless ``CONN_MAX_AGE`` says
otherwise (``close_old_connections()``, whose default of 0 means "every time"). A
background loop that called it on each turn, as a request would, reconnected on each
turn: the delivery loop polls every ``WORKER_POLL_SECONDS`` (50 ms by default) and the
evaluation writer flushes every ``EVALUATION_FLUSH_SECONDS``, so an idle process opened
and closed a connection many times a second, and on PostgreSQL each one is a new server
process. A loop's turn is not a request: it keeps its connection, as a worker does, and
drops it only when it is broken or, if ``CONN_MAX_AGE`` is set, older than that.
"""

from __future__ import annotations

from django.db import connections

__all__ = ["close_broken_connections"]


def close_broken_connections() -> None:
    """``close_old_connections()`` for a loop's turn: close this thread's connections that
    no longer work, and keep the others.

    With ``CONN_MAX_AGE`` set (seconds, or ``None``: for ever), Django's own rules apply: a
    connection that had errors and fails its check, or is older than that, is closed, and
    ``CONN_HEALTH_CHECKS`` checks the others before their next use. With 0, under which
    Django would have reconnected for each request, each connection is checked now (a
    ``SELECT 1`` on PostgreSQL, nothing on SQLite), so one that the server or a pooler
    dropped while the loop slept does not fail the turn.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.settings_dict["CONN_MAX_AGE"] != 0:
            connection.close_if_unusable_or_obsolete()
        elif connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()
