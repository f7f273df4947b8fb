"""Triggers on the events table: a set of them, and what they keep in step.

``repair`` puts them back when something removed them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

EVENTS = "configcat_segment_event"


@dataclass(frozen=True)
class TriggerSet:
    """Triggers on the events table that keep ``table`` in step with it, on one ``vendor``."""

    vendor: str
    table: str  # present once the migration that creates these triggers has run
    # name: the CREATE TRIGGER statement after the name; on the events table, or on SQLite
    # on ``table`` itself
    triggers: Mapping[str, str]
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

    def drop(self, names: Sequence[str] | None = None) -> list[str]:
        on = f" ON {EVENTS}" if self.vendor == "postgresql" else ""
        return [
            f"DROP TRIGGER IF EXISTS {name}{on}"
            for name in self.triggers
            if names is None or name in names
        ]


def existing_triggers(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of the triggers on the events table (on SQLite: on any table, as those on
    the tables the triggers keep go when Django rebuilds them too)."""
    if connection.vendor == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass(%s)"
        params = [EVENTS]
    else:
        sql, params = "SELECT name FROM sqlite_master WHERE type = 'trigger'", []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
