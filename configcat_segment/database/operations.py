"""A migration operation that runs on one database vendor only."""

from __future__ import annotations

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.utils.module_loading import import_string


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
