"""Migrations never stop the events table from being written on PostgreSQL.

Events are written on every webhook and evaluation and settled on every delivery: a
migration that locks the table against writes (a plain ``CREATE INDEX``, say) would stall
the site and the workers for as long as it runs, or as long as it waits for a long
transaction. From 0005 on, the app's migrations build indexes ``CONCURRENTLY`` in
non-atomic migrations, and create triggers in short transactions that give up rather than
queue writers behind them (and try again).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.db.migrations.loader import MigrationLoader

from configcat_segment.models import Event

APP = "configcat_segment"
FIRST_ONLINE = "0005"  # the migrations before it were written before this rule
WAIT = 30  # seconds; only a safety net, every wait ends on a condition

pytestmark = pytest.mark.postgres


def online_migrations() -> list[str]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(
        name for app, name in loader.disk_migrations if app == APP and name >= FIRST_ONLINE
    )


def statements(name: str) -> Iterator[str]:
    """The SQL that ``migrate`` runs for migration ``name`` on this database."""
    loader = MigrationLoader(connection)
    migration = loader.get_migration(APP, name)
    state = loader.project_state((APP, name), at_end=False)
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        migration.apply(state, editor, collect_sql=True)
    for line in editor.collected_sql:
        if line.strip() and not line.startswith("--"):
            yield line


ON_EVENTS = re.compile(r'\bON "?configcat_segment_event"?\s')


@pytest.mark.django_db(transaction=True)  # as migrate runs: outside a transaction
def test_every_lock_on_the_events_table_is_concurrent_or_short():
    loader = MigrationLoader(connection)
    indexes = triggers = 0
    for name in online_migrations():
        previous = ""
        for sql in statements(name):
            if re.search(r"\b(CREATE|DROP) (UNIQUE )?INDEX\b", sql) and ON_EVENTS.search(sql):
                assert "CONCURRENTLY" in sql, (name, sql)
                assert not loader.get_migration(APP, name).atomic, name
                indexes += 1
            if re.search(r"\bCREATE (OR REPLACE )?TRIGGER\b", sql) and ON_EVENTS.search(sql):
                assert previous.startswith("SET lock_timeout = '100ms'"), (name, sql)
                assert not loader.get_migration(APP, name).atomic, name
                triggers += 1
            assert not re.search(r"ALTER TABLE \"?configcat_segment_event\"? ", sql), (name, sql)
            previous = sql
    assert indexes >= 2  # the search's trigram indexes at least
    assert triggers >= 4  # the counts'


# -- with a transaction writing meanwhile -------------------------------------------------------


def waiting_on_a_lock(query_start: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            [query_start + "%"],
        )
        return cursor.fetchone()[0] > 0


def write_an_event(make_event: Callable[..., Event], lock_timeout: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
        make_event(status="pending", user_id="written-meanwhile")


def while_a_writer_waits(
    make_event: Callable[..., Event], work: Callable[[], None], query_start: str, lock_timeout: str
) -> None:
    """Run ``work`` in a thread while another transaction has written an event and not
    committed; once ``work`` waits on a lock (its statement starts with ``query_start``),
    write another event, with ``lock_timeout``, then let the first transaction commit."""
    written, release, errors = threading.Event(), threading.Event(), []

    def long_transaction() -> None:
        try:
            with transaction.atomic():
                make_event(status="pending", user_id="long-transaction")
                written.set()
                release.wait(WAIT)
        finally:
            connections.close_all()

    def run() -> None:
        try:
            work()
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=long_transaction)
    holder.start()
    assert written.wait(WAIT)
    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + WAIT
        while not waiting_on_a_lock(query_start):
            assert time.monotonic() < deadline, "the migration never waited"
            time.sleep(0.05)
        write_an_event(make_event, lock_timeout)
    finally:
        release.set()
        holder.join(WAIT)
        worker.join(WAIT)
    assert not errors, errors


def rerun(name: str) -> Callable[[], None]:
    """Undo migration ``name`` now; the function returned applies it again, as migrate does."""
    loader = MigrationLoader(connection)
    migration = loader.get_migration(APP, name)
    before = loader.project_state((APP, name), at_end=False)
    with connection.schema_editor(atomic=migration.atomic) as editor:
        migration.unapply(before, editor)  # the state before it: unapply replays it

    def apply() -> None:
        with connections["default"].schema_editor(atomic=migration.atomic) as editor:
            migration.apply(loader.project_state((APP, name), at_end=False), editor)

    return apply


@pytest.mark.django_db(transaction=True)
def test_building_the_search_indexes_lets_events_be_written(make_event):
    apply = rerun("0011_eventlog_search_indexes")
    while_a_writer_waits(make_event, apply, "CREATE INDEX CONCURRENTLY", lock_timeout="5s")
    assert Event.objects.filter(user_id="written-meanwhile").count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'configcat_segment_event'::regclass AND indisvalid "
            "AND indexrelid::regclass::text LIKE 'cs_event_%%_trgm'"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == [
            "cs_event_flag_trgm",
            "cs_event_user_trgm",
        ]


@pytest.mark.django_db(transaction=True)
def test_a_plain_create_index_would_stop_writers_which_this_test_would_see(make_event):
    def plain_index() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("CREATE INDEX cs_test_blocking ON configcat_segment_event (type)")
            cursor.execute("DROP INDEX cs_test_blocking")

    with pytest.raises(OperationalError, match="lock timeout"):
        while_a_writer_waits(make_event, plain_index, "CREATE INDEX", lock_timeout="1s")


@pytest.mark.django_db(transaction=True)
def test_installing_the_count_triggers_lets_events_be_written(make_event):
    from configcat_segment.models import EventCount

    make_event(status="delivered", user_id="before")
    apply = rerun("0012_eventlog_counts")
    while_a_writer_waits(make_event, apply, "CREATE OR REPLACE TRIGGER", lock_timeout="5s")
    assert Event.objects.filter(user_id="written-meanwhile").count() == 1
    counted = EventCount.objects.by_connection(["pending", "delivered"])
    assert {status: n for per in counted.values() for status, n in per.items()} == {
        "delivered": 1,
        "pending": 2,  # the long transaction's and the one written meanwhile
    }


@pytest.mark.django_db(transaction=True)
def test_changing_the_event_indexes_lets_events_be_written(make_event):
    """0013 builds its indexes and drops the foreign keys' own ones CONCURRENTLY: a long
    transaction that wrote an event makes it wait, and other events are written meanwhile."""
    make_event(status="dead", flag_key="before")
    apply = rerun("0013_event_indexes")
    while_a_writer_waits(make_event, apply, "CREATE INDEX CONCURRENTLY", lock_timeout="5s")
    assert Event.objects.filter(user_id="written-meanwhile").count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid = 'configcat_segment_event'::regclass"
        )
        indexes = dict(cursor.fetchall())
    assert indexes["cs_event_flag_dead"]  # valid
    assert indexes["cs_event_receipt"]
    assert not [name for name in indexes if name.startswith("configcat_segment_event_conn")]
    assert not [name for name in indexes if name.startswith("configcat_segment_event_rece")]
    assert Event.objects.filter(flag_key="before", status="dead").count() == 1


@pytest.mark.django_db(transaction=True)
def test_dropping_the_foreign_keys_indexes_lets_events_be_written(make_event):
    """The DROP INDEX CONCURRENTLY of 0013 waits for a transaction that wrote an event
    without stopping other writers."""
    from configcat_segment.migration_operations import DropFieldIndexWithoutLocking

    apply = rerun("0013_event_indexes")
    apply()  # back to the end of 0013, then undo only the connection's index drop
    loader = MigrationLoader(connection)
    state = loader.project_state((APP, "0013_event_indexes"), at_end=True)
    drop = DropFieldIndexWithoutLocking("event", "connection")
    with connection.schema_editor(atomic=False) as editor:
        drop.database_backwards(APP, editor, state, state)

    def redo() -> None:
        with connections["default"].schema_editor(atomic=False) as editor:
            drop.database_forwards(APP, editor, state, state)

    while_a_writer_waits(make_event, redo, "DROP INDEX CONCURRENTLY", lock_timeout="5s")
    assert Event.objects.filter(user_id="written-meanwhile").count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'configcat_segment_event'::regclass "
            "AND indexrelid::regclass::text LIKE 'configcat_segment_event_connection_id%%'"
        )
        assert cursor.fetchone()[0] == 0
