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


def _concurrently(schema_editor: Any, operation: str) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"{operation} builds indexes CONCURRENTLY on PostgreSQL, which cannot run in a "
            "transaction: set atomic = False on the migration."
        )
    return True


class AddIndexWithoutLocking(AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if not _concurrently(schema_editor, type(self).__name__):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if not _concurrently(schema_editor, type(self).__name__):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class RemoveIndexWithoutLocking(RemoveIndex):
    """``RemoveIndex``, dropped ``CONCURRENTLY`` on PostgreSQL."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if not _concurrently(schema_editor, type(self).__name__):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index, concurrently=True)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if not _concurrently(schema_editor, type(self).__name__):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.add_index(model, index, concurrently=True)
