"""A lookup that writes its values into the SQL, for the outbox's partial index."""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Lookup
from django.db.models.sql.compiler import SQLCompiler


class InConstants(Lookup):  # type: ignore[type-arg]  # generic only in the stubs
    """``field IN ('a', 'b')`` with the values in the SQL rather than passed as parameters.

    SQLite uses a partial index only where it can see that the query implies the index's
    condition, which it cannot through parameters: with ``status IN (?, ?)`` the claim
    sorted every due row instead of reading the ``(connection, next_attempt_at)`` index in
    order. Only for a few constant identifiers (the statuses), never for user input.
    """

    lookup_name = "in_constants"
    prepare_rhs = False

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        values = list(self.rhs)
        if not values or not all(isinstance(v, str) and v.isidentifier() for v in values):
            raise ValueError(f"in_constants takes identifiers only, not {values!r}")
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(repr(str(v)) for v in values)})", list(params)
