"""Migration operations: one that runs on one database vendor only, and one that installs
triggers on the events table without stopping its writers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from django.db import OperationalError, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.utils.module_loading import import_string

from .triggers import TriggerSet, existing_triggers

# Creating a trigger on PostgreSQL takes a lock that conflicts with writes. Waiting for it
# behind a long transaction would queue every writer behind the migration, so each attempt
# gives up quickly and the migration tries again (backing off to 5 s), for about 17 minutes.
LOCK_TIMEOUT: Final = "100ms"
ATTEMPTS: Final = 200
LOCK_NOT_AVAILABLE: Final = "55P03"


class OnVendor(Operation):
    """Run the operation at dotted path ``operation`` only on ``vendor`` ("postgresql", "sqlite").

    The migration state is left alone, so the models never see a vendor's own objects (a GIN
    index that SQLite could not create when it rebuilds a table, say). The operation is
    built only where it runs: ``django.contrib.postgres.operations`` imports psycopg, which a
    project on SQLite need not have.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, vendor: str, operation: str, **kwargs: Any) -> None:
        self.vendor = vendor
        self.operation = operation
        self.kwargs = kwargs

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.vendor, self.operation], self.kwargs)

    def inner(self) -> Operation:
        operation: Operation = import_string(self.operation)(**self.kwargs)
        return operation

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == self.vendor:
            self.inner().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == self.vendor:
            self.inner().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"{self.operation.rsplit('.', 1)[-1]} on {self.vendor} only"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.vendor}_{self.operation.rsplit('.', 1)[-1].lower()}"


class InstallTriggers(Operation):
    """Install the trigger set for this database from the mapping at dotted path ``sets``
    (vendor: :class:`TriggerSet`), then rebuild what it maintains; drop it when reversed.

    Meant for a non-atomic migration: on PostgreSQL each trigger is then created in a
    transaction of its own that waits at most ``LOCK_TIMEOUT`` for its lock (retried), and
    the rebuild reads the table without blocking writers (see ``database.counts``). On
    SQLite, which has one writer at a time anyway, it all happens in one transaction.

    With ``replace`` (vendor: trigger names), a later migration changes an installed set:
    it creates the triggers missing and replaces those named (on SQLite, which cannot
    replace a trigger, by dropping it in the same transaction), leaving the others alone;
    reversed, it leaves the set in place, for the earlier migration to drop.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, sets: str, replace: Mapping[str, list[str]] | None = None) -> None:
        self.sets = sets
        self.replace = replace

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {} if self.replace is None else {"replace": self.replace}
        return (self.__class__.__qualname__, [self.sets], kwargs)

    def trigger_set(self, vendor: str) -> TriggerSet | None:
        sets: Mapping[str, TriggerSet] = import_string(self.sets)
        return sets.get(vendor)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        connection = schema_editor.connection
        trigger_set = self.trigger_set(connection.vendor)
        if trigger_set is None:
            return
        replaced: list[str] = []
        names: list[str] | None = None  # all of them
        if self.replace is not None:
            replaced = self.replace.get(connection.vendor, [])
            existing = existing_triggers(connection)
            names = [n for n in trigger_set.triggers if n in replaced or n not in existing]
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            with transaction.atomic(using=connection.alias):
                statements = [*trigger_set.setup, *trigger_set.drop(replaced)]
                for statement in [*statements, *trigger_set.create(names)]:
                    schema_editor.execute(statement, params=None)
                _rebuild(schema_editor, trigger_set)
            return
        for statement in trigger_set.setup:  # functions: no lock on the events table
            schema_editor.execute(statement, params=None)
        for statement in trigger_set.create(names):  # CREATE OR REPLACE
            _create_with_retries(schema_editor, statement)
        _rebuild(schema_editor, trigger_set)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        trigger_set = self.trigger_set(schema_editor.connection.vendor)
        if trigger_set is None or self.replace is not None:
            return
        for statement in [*trigger_set.drop(), *trigger_set.teardown]:
            schema_editor.execute(statement, params=None)

    def describe(self) -> str:
        return f"Install the triggers of {self.sets}"

    @property
    def migration_name_fragment(self) -> str:
        return "install_triggers"


def _rebuild(schema_editor: BaseDatabaseSchemaEditor, trigger_set: TriggerSet) -> None:
    with transaction.atomic(using=schema_editor.connection.alias):
        for statement in trigger_set.rebuild:
            schema_editor.execute(statement, params=None)


def _create_with_retries(schema_editor: BaseDatabaseSchemaEditor, statement: str) -> None:
    alias = schema_editor.connection.alias
    if schema_editor.collect_sql:  # sqlmigrate: show what runs
        schema_editor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'", params=None)
        schema_editor.execute(statement, params=None)
        return
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic(using=alias):
                schema_editor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'", params=None)
                schema_editor.execute(statement, params=None)
            return
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            if attempt == ATTEMPTS - 1:
                raise OperationalError(
                    "A transaction kept the events table busy for the whole migration "
                    f"({ATTEMPTS} attempts to create a trigger); migrate again later."
                ) from exc
            time.sleep(min(0.05 * 2**attempt, 5.0))
