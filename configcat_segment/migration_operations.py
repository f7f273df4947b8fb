"""Index operations for the events table that never block its writes on PostgreSQL.

``CREATE INDEX`` takes a lock that blocks every insert and update of the table until the
index is built: on a large events table, webhooks and evaluations would wait for minutes.
On PostgreSQL these build and drop indexes ``CONCURRENTLY`` (which cannot run in a
transaction: use them in a migration with ``atomic = False``); elsewhere they are Django's
own ``AddIndex`` and ``RemoveIndex``. The migration state is the same either way.

If a concurrent build fails (a deadlock, a cancelled upgrade), PostgreSQL leaves an
``INVALID`` index behind: drop it (``DROP INDEX CONCURRENTLY name``) and migrate again.
"""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError
from django.db.migrations import AddIndex, RemoveIndex
from django.db.migrations.operations.base import Operation
from django.db.models import Index


def _concurrently(schema_editor: Any, operation: str) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"{operation} builds indexes CONCURRENTLY on PostgreSQL, which cannot run in a "
            "transaction: set atomic = False on the migration."
        )
    return True


def _change_index(
    operation: AddIndex | RemoveIndex,
    change: str,
    app_label: str,
    schema_editor: Any,
    state: Any,
    index: Index | str,
) -> None:
    """``schema_editor.add_index`` or ``remove_index`` (``change``) ``CONCURRENTLY``, on the
    operation's model as ``state`` has it; ``index`` may be the name of one of its indexes."""
    model = state.apps.get_model(app_label, operation.model_name)
    if not operation.allow_migrate_model(schema_editor.connection.alias, model):
        return
    if isinstance(index, str):
        index = state.models[app_label, operation.model_name_lower].get_index_by_name(index)
    getattr(schema_editor, f"{change}_index")(model, index, concurrently=True)


class AddIndexWithoutLocking(AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _concurrently(schema_editor, type(self).__name__):
            _change_index(self, "add", app_label, schema_editor, to_state, self.index)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _concurrently(schema_editor, type(self).__name__):
            _change_index(self, "remove", app_label, schema_editor, from_state, self.index)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexWithoutLocking(RemoveIndex):
    """``RemoveIndex``, dropped ``CONCURRENTLY`` on PostgreSQL."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _concurrently(schema_editor, type(self).__name__):
            _change_index(self, "remove", app_label, schema_editor, from_state, self.name)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _concurrently(schema_editor, type(self).__name__):
            _change_index(self, "add", app_label, schema_editor, to_state, self.name)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class DropFieldIndexWithoutLocking(Operation):
    """Drop the index Django made for field ``name`` (``db_index``; a foreign key's), found
    by introspection, ``CONCURRENTLY`` on PostgreSQL; rebuild it when reversed.

    Database only: pair it with an ``AlterField(db_index=False)`` in
    ``SeparateDatabaseAndState``. Django's own ``AlterField`` would drop it with a plain
    ``DROP INDEX`` on PostgreSQL, and rebuild the whole table on SQLite.

    With ``like``: the ``varchar_pattern_ops`` index that Django adds on PostgreSQL for
    ``LIKE 'prefix%'`` next to a text column's unique or plain index (no other database
    has one). The field keeps its own; no state changes.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, name: str, like: bool = False) -> None:
        self.model_name = model_name
        self.name = name
        self.like = like

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {"like": True} if self.like else {}
        return (self.__class__.__qualname__, [self.model_name, self.name], kwargs)

    def applies(self, schema_editor: Any) -> bool:
        return not self.like or schema_editor.connection.vendor == "postgresql"

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.applies(schema_editor):
            return
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        concurrently = _concurrently(schema_editor, type(self).__name__)
        for index in self.index_names(schema_editor, model):
            options = {"concurrently": True} if concurrently else {}
            schema_editor.execute(schema_editor._delete_index_sql(model, index, **options))

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.applies(schema_editor):
            return
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        options: dict[str, Any] = {}
        if _concurrently(schema_editor, type(self).__name__):
            options["concurrently"] = True
        if self.like:
            options.update(suffix="_like", opclasses=["varchar_pattern_ops"])
        field = model._meta.get_field(self.name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], **options))

    def index_names(self, schema_editor: Any, model: Any) -> list[str]:
        """The field's own index: one column, not unique, not one of the model's named ones."""
        column = model._meta.get_field(self.name).column
        suffix = "_like" if self.like else ""
        if schema_editor.collect_sql:  # sqlmigrate: the name Django gives it
            return [schema_editor._create_index_name(model._meta.db_table, [column], suffix=suffix)]
        named = {index.name for index in model._meta.indexes}
        found: list[str] = schema_editor._constraint_names(
            model, [column], index=True, unique=False, primary_key=False
        )
        return [name for name in found if name not in named and name.endswith(suffix)]

    def describe(self) -> str:
        which = "LIKE index (PostgreSQL)" if self.like else "index"
        return f"Drop the {which} of {self.model_name}.{self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"drop_{self.model_name}_{self.name}_{'like_' if self.like else ''}index"
