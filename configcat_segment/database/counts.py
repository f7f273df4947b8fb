"""Exact event counts per connection, hour and status, kept by the database itself.

Triggers on the events table count every insert, status change and delete, in the same
transaction, whatever made it: the outbox, the dispatcher, a retry, the prune command, the
admin, a cascade, raw SQL. Nothing in Python has to remember to count.

- **SQLite** runs one writer at a time: row triggers add to ``configcat_segment_eventcount``
  directly. A delete only ever lowers an existing count (never creates a negative one), so
  a table emptied out of order (Django's test flush) stays right.
- **PostgreSQL** runs writers concurrently: statement triggers (with transition tables)
  append each statement's net changes to ``configcat_segment_eventcountchange``, so writers
  never wait on a shared counter and cannot deadlock on counters taken in different
  orders. About one writing statement in 32 then adds the pending changes into the counts
  (:data:`ADD_CHANGES`), under a transaction-level advisory lock that others skip rather
  than wait for. Readers add both tables up in one statement (one snapshot), which is exact
  whether or not the changes were added in yet.

:func:`rebuild` recounts from the events table without blocking writers: on PostgreSQL the
counts become ``COUNT(*)`` minus the changes, both read in one snapshot, so that adding
every change, those still to come included, gives the truth.

**Folding**: the hours before the last two days are kept as one count per connection and
status (see :mod:`.folding`, which says when and why); the triggers and the adder below
count a folded hour's events there, and :func:`rebuild` counts straight into that form.
"""

from __future__ import annotations

from typing import Final

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .folding import FOLDED_PG, FOLDED_SQLITE, KEPT_FROM_PG, KEPT_FROM_SQLITE
from .triggers import TriggerSet

COUNTS: Final = "configcat_segment_eventcount"
LOCK: Final = "hashtext('configcat_segment_eventcount')"  # the advisory lock's key
ADD_BATCH: Final = 5_000  # changes added in per call, at most

# -- PostgreSQL ------------------------------------------------------------------------------

# Written out in the SQL below: the hour (UTC) of ``created_at``, and the advisory lock's
# key, ``hashtext('configcat_segment_eventcount')`` (the same as LOCK).

COUNT_EVENTS_PG: Final = """
CREATE OR REPLACE FUNCTION configcat_segment_count_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO configcat_segment_eventcountchange (connection_id, hour, status, delta)
        SELECT connection_id, date_trunc('hour', created_at, 'UTC'), status, count(*)
        FROM new_events GROUP BY 1, 2, 3;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO configcat_segment_eventcountchange (connection_id, hour, status, delta)
        SELECT connection_id, date_trunc('hour', created_at, 'UTC'), status, -count(*)
        FROM old_events GROUP BY 1, 2, 3;
    ELSE
        INSERT INTO configcat_segment_eventcountchange (connection_id, hour, status, delta)
        SELECT connection_id, hour, status, sum(delta) FROM (
            SELECT connection_id, date_trunc('hour', created_at, 'UTC') AS hour, status,
                -count(*) AS delta
            FROM old_events GROUP BY 1, 2, 3
            UNION ALL
            SELECT connection_id, date_trunc('hour', created_at, 'UTC'), status, count(*)
            FROM new_events GROUP BY 1, 2, 3
        ) AS changes
        GROUP BY 1, 2, 3 HAVING sum(delta) <> 0;
    END IF;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 AND random() < 1.0 / 32 THEN
        PERFORM configcat_segment_add_event_count_changes(5000);
    END IF;
    RETURN NULL;
END $$
"""

ADD_CHANGES_PG: Final = f"""
CREATE OR REPLACE FUNCTION configcat_segment_add_event_count_changes(batch integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    added bigint;
    kept_from timestamptz := {KEPT_FROM_PG};
BEGIN
    -- One adder at a time; the others skip (the changes wait for the next one).
    IF NOT pg_try_advisory_xact_lock(hashtext('configcat_segment_eventcount')) THEN
        RETURN 0;
    END IF;
    -- Changes to the events of a folded hour go to the folded count.
    WITH moved AS (
        DELETE FROM configcat_segment_eventcountchange
        WHERE id IN (SELECT id FROM configcat_segment_eventcountchange ORDER BY id LIMIT batch)
        RETURNING connection_id, hour, status, delta
    )
    INSERT INTO configcat_segment_eventcount AS counted (connection_id, hour, status, count)
    SELECT connection_id, CASE WHEN hour < kept_from THEN {FOLDED_PG} ELSE hour END, status,
        sum(delta)
    FROM moved
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (connection_id, hour, status)
    DO UPDATE SET count = counted.count + EXCLUDED.count;
    GET DIAGNOSTICS added = ROW_COUNT;
    -- The hours that went out of the window since, folded.
    WITH aged AS (
        DELETE FROM configcat_segment_eventcount
        WHERE hour > {FOLDED_PG} AND hour < kept_from
        RETURNING connection_id, status, count
    )
    INSERT INTO configcat_segment_eventcount AS counted (connection_id, hour, status, count)
    SELECT connection_id, {FOLDED_PG}, status, sum(count) FROM aged
    GROUP BY 1, 3 ORDER BY 1, 3
    ON CONFLICT (connection_id, hour, status)
    DO UPDATE SET count = counted.count + EXCLUDED.count;
    RETURN added;
END $$
"""  # noqa: S608 - constants only

FORGET_COUNTS_PG: Final = """
CREATE OR REPLACE FUNCTION configcat_segment_forget_event_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM configcat_segment_eventcountchange;
    DELETE FROM configcat_segment_eventcount;
    RETURN NULL;
END $$
"""

_COUNT = "FOR EACH STATEMENT EXECUTE FUNCTION configcat_segment_count_events()"

POSTGRESQL: Final = TriggerSet(
    vendor="postgresql",
    table=COUNTS,
    setup=[COUNT_EVENTS_PG, ADD_CHANGES_PG, FORGET_COUNTS_PG],
    triggers={
        "configcat_segment_count_insert": (
            f"AFTER INSERT ON configcat_segment_event REFERENCING NEW TABLE AS new_events {_COUNT}"
        ),
        "configcat_segment_count_update": (
            "AFTER UPDATE ON configcat_segment_event "
            f"REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events {_COUNT}"
        ),
        "configcat_segment_count_delete": (
            f"AFTER DELETE ON configcat_segment_event REFERENCING OLD TABLE AS old_events {_COUNT}"
        ),
        "configcat_segment_count_truncate": (
            "AFTER TRUNCATE ON configcat_segment_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION configcat_segment_forget_event_counts()"
        ),
    },
    rebuild=[
        f"SELECT pg_advisory_xact_lock({LOCK})",  # no adding in meanwhile
        "DELETE FROM configcat_segment_eventcount",
        # One statement, one snapshot: the events it counts and the changes it subtracts
        # are the same moment's. Every change still in the table, or still to come, is
        # then added to counts that did not include it.
        f"""
        INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count)
        SELECT connection_id, CASE WHEN hour < {KEPT_FROM_PG} THEN {FOLDED_PG} ELSE hour END,
            status, sum(n)
        FROM (
            SELECT connection_id, date_trunc('hour', created_at, 'UTC') AS hour, status,
                count(*) AS n
            FROM configcat_segment_event GROUP BY 1, 2, 3
            UNION ALL
            SELECT connection_id, hour, status, -delta FROM configcat_segment_eventcountchange
        ) AS counted
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0
        """,  # noqa: S608 - constants only
    ],
    teardown=[
        "DROP FUNCTION IF EXISTS configcat_segment_count_events()",
        "DROP FUNCTION IF EXISTS configcat_segment_add_event_count_changes(integer)",
        "DROP FUNCTION IF EXISTS configcat_segment_forget_event_counts()",
    ],
)

# -- SQLite ----------------------------------------------------------------------------------

_HOUR = "strftime('%Y-%m-%d %H:00:00', {0}.created_at)"
# An event of an hour out of the window is counted in the folded row straight away: a row
# of its own would only be folded again (and settling an old backlog would fold per event).
_ADD_NEW = (
    "INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count) "  # noqa: S608 - constants only
    f"VALUES (new.connection_id, CASE WHEN {_HOUR.format('new')} < {KEPT_FROM_SQLITE} "
    f"THEN {FOLDED_SQLITE} ELSE {_HOUR.format('new')} END, new.status, 1) "
    "ON CONFLICT (connection_id, hour, status) DO UPDATE SET count = count + 1;"
)
# From the event's hour if its row is there, else (changes() = 0: the first statement
# found no row) from the folded count. Not decided by the window, which moves with the
# clock: near its edge an hour's row may be folded or not yet.
_REMOVE_OLD = (
    "UPDATE configcat_segment_eventcount SET count = count - 1 "  # noqa: S608 - constants only
    "WHERE connection_id = old.connection_id "
    f"AND hour = {_HOUR.format('old')} AND status = old.status; "
    "UPDATE configcat_segment_eventcount SET count = count - 1 "
    f"WHERE connection_id = old.connection_id AND hour = {FOLDED_SQLITE} "
    "AND status = old.status AND changes() = 0;"
)
# Every row of an hour out of the window, added to the folded rows and deleted. ``'now'``
# is the same in both statements: SQLite keeps it for the whole of one sqlite3_step().
_AGED = f"hour > {FOLDED_SQLITE} AND hour < {KEPT_FROM_SQLITE}"
_FOLD = (
    "INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count) "  # noqa: S608 - constants only
    f"SELECT connection_id, {FOLDED_SQLITE}, status, sum(count) "
    f"FROM configcat_segment_eventcount WHERE {_AGED} GROUP BY connection_id, status "
    "ON CONFLICT (connection_id, hour, status) DO UPDATE SET count = count + excluded.count; "
    f"DELETE FROM configcat_segment_eventcount WHERE {_AGED};"
)

SQLITE: Final = TriggerSet(
    vendor="sqlite",
    table=COUNTS,
    triggers={
        "configcat_segment_count_insert": (
            f"AFTER INSERT ON configcat_segment_event BEGIN {_ADD_NEW} END"
        ),
        "configcat_segment_count_update": (
            "AFTER UPDATE OF connection_id, created_at, status ON configcat_segment_event "
            "WHEN old.status IS NOT new.status OR old.connection_id IS NOT new.connection_id "
            "OR strftime('%Y-%m-%d %H', old.created_at) IS NOT "
            "strftime('%Y-%m-%d %H', new.created_at) "
            f"BEGIN {_REMOVE_OLD} {_ADD_NEW} END"
        ),
        "configcat_segment_count_delete": (
            f"AFTER DELETE ON configcat_segment_event BEGIN {_REMOVE_OLD} END"
        ),
        # On the counts table: a new row is a new hour.
        "configcat_segment_count_fold": (
            f"AFTER INSERT ON {COUNTS} WHEN new.hour <> {FOLDED_SQLITE} BEGIN {_FOLD} END"
        ),
    },
    rebuild=[
        "DELETE FROM configcat_segment_eventcountchange",
        "DELETE FROM configcat_segment_eventcount",
        "INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count) "  # noqa: S608 - constants only
        f"SELECT connection_id, CASE WHEN hour < {KEPT_FROM_SQLITE} THEN {FOLDED_SQLITE} "
        "ELSE hour END, status, sum(n) FROM ("
        "SELECT connection_id, strftime('%Y-%m-%d %H:00:00', created_at) AS hour, status, "
        "count(*) AS n FROM configcat_segment_event GROUP BY 1, 2, 3"
        ") GROUP BY 1, 2, 3",
    ],
)

SETS: Final = {"postgresql": POSTGRESQL, "sqlite": SQLITE}


# -- maintenance -----------------------------------------------------------------------------


def add_changes(using: str = DEFAULT_DB_ALIAS, batch: int = ADD_BATCH) -> int:
    """Add pending changes into the counts (PostgreSQL); how many counts were written.

    Returns 0 at once when another transaction is adding them.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT configcat_segment_add_event_count_changes(%s)", [batch])
        return int(cursor.fetchone()[0])


def add_all_changes(using: str = DEFAULT_DB_ALIAS, batch: int = ADD_BATCH) -> int:
    """Add every pending change into the counts (PostgreSQL), a batch at a time; how many
    counts were written. For what should leave none pending, such as a migration after its
    rebuild: readers would otherwise add them up, every one, until writes added them in.

    Stops early if another transaction is adding them (it carries on in its place).
    """
    written = 0
    while added := add_changes(using, batch):
        written += added
    return written


def remove_empty(using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete counts that fell to zero (after pruning, say); how many."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
        cursor.execute("DELETE FROM configcat_segment_eventcount WHERE count = 0")
        return int(cursor.rowcount)


def rebuild(using: str = DEFAULT_DB_ALIAS) -> None:
    """Recount every connection, hour and status from the events table (exact, and on
    PostgreSQL without stopping writers)."""
    connection = connections[using]
    trigger_set = SETS.get(connection.vendor)
    if trigger_set is None:
        return
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for statement in trigger_set.rebuild:
            cursor.execute(statement)
