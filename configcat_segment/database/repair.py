"""Putting back triggers on the events table when something removed them.

SQLite cannot alter most columns in place: Django's migrations rebuild the table under a new
name, which drops its triggers. After every ``migrate``, :func:`repair` recreates those that
are missing and rebuilds what they maintain, so an index or a count kept in step by a
trigger is never silently left behind.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from . import counts, search
from .triggers import EVENTS, TriggerSet, existing_triggers

logger = logging.getLogger(__name__)


def all_sets() -> list[TriggerSet]:
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
