"""Triggers on the events table, and putting them back when something removed them.

SQLite cannot alter most columns in place: Django's migrations rebuild the table under a new
name, which drops its triggers. After every ``migrate``, :func:`repair` recreates those that
are missing and rebuilds what they maintain, so an index or a count kept in step by a
trigger is never silently left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

EVENTS = "configcat_segment_event"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerSet:
    """Triggers on the events table that keep ``table`` in step with it, on one ``vendor``."""

    vendor: str
    table: str  # present once the migration that creates these triggers has run
    triggers: Mapping[str, str]  # name: the CREATE TRIGGER statement after the name
    rebuild: Sequence[str]  # statements that make ``table`` right again from the events
    setup: Sequence[str] = ()  # what the triggers call (functions), created first
    teardown: Sequence[str] = ()  # and dropped after the triggers

    def create(self, names: Sequence[str] | None = None) -> list[str]:
        """``CREATE TRIGGER`` statements, which replace (PostgreSQL) or keep (SQLite) a
        trigger of the same name."""
        verb = (
            "CREATE OR REPLACE TRIGGER"
            if self.vendor == "postgresql"
            else "CREATE TRIGGER IF NOT EXISTS"
        )
        return [
            f"{verb} {name} {body}"
            for name, body in self.triggers.items()
            if names is None or name in names
        ]

    def drop(self) -> list[str]:
        on = f" ON {EVENTS}" if self.vendor == "postgresql" else ""
        return [f"DROP TRIGGER IF EXISTS {name}{on}" for name in self.triggers]


def existing_triggers(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of the triggers on the events table."""
    if connection.vendor == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass(%s)"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [EVENTS])
        return {row[0] for row in cursor.fetchall()}


def all_sets() -> list[TriggerSet]:
    from . import counts, search

    return [search.SQLITE_TRIGGERS, *counts.SETS.values()]


def repair(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Recreate the missing triggers of every installed set, and rebuild what they keep.

    Returns the names of the triggers recreated (none, normally).
    """
    connection = connections[using]
    sets = [s for s in all_sets() if s.vendor == connection.vendor]
    if not sets:
        return []
    tables = set(connection.introspection.table_names())
    if EVENTS not in tables:
        return []
    existing = existing_triggers(connection)
    repaired = []
    for trigger_set in sets:
        if trigger_set.table not in tables:
            continue  # not migrated that far (or migrated back)
        missing = [name for name in trigger_set.triggers if name not in existing]
        if not missing:
            continue
        with transaction.atomic(using=using), connection.cursor() as cursor:
            statements = [*trigger_set.setup, *trigger_set.create(missing), *trigger_set.rebuild]
            for statement in statements:
                cursor.execute(statement)
        logger.warning(
            "configcat_segment: recreated the missing triggers %s and rebuilt %s",
            ", ".join(missing),
            trigger_set.table,
        )
        repaired += missing
    return repaired


def on_post_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    repair(using)
