"""Lookups for the outbox's queries: constants written into the SQL (its partial index),
and long key lists passed as one parameter."""

from __future__ import annotations

import json
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


class AnyOf(Lookup):  # type: ignore[type-arg]  # generic only in the stubs
    """``id IN (…)`` for a long list of integer keys, passed as **one** parameter.

    ``pk__in`` prepares each of the dispatcher's 500 keys through the field and gives the
    database 500 placeholders to bind; this passes the list whole: ``= ANY(%s)`` (an
    array) on PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on SQLite, a plain
    ``IN`` list elsewhere. Integers only.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        keys = [int(key) for key in self.rhs]
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, keys]
        if connection.vendor == "sqlite":
            sql = f"{lhs} IN (SELECT value FROM json_each(%s))"  # noqa: S608  # names only
            return sql, [*params, json.dumps(keys)]
        if not keys:
            return "1 = 0", list(params)
        return f"{lhs} IN ({', '.join(['%s'] * len(keys))})", [*params, *keys]
