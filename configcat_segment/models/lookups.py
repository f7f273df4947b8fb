"""Lookups for the outbox's queries: constants written into the SQL (its partial index),
and long key lists passed as one parameter."""

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


class AnyOf(Lookup):  # type: ignore[type-arg]  # generic only in the stubs
    """``id IN (…)`` for a long list of integer keys, passed as **one** parameter.

    ``pk__in`` prepares each of the dispatcher's 500 keys through the field and gives the
    database 500 placeholders to bind; this passes the list whole (see :func:`any_of`).
    Integers only.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        keys = [int(key) for key in self.rhs]
        if not keys and connection.vendor not in ("postgresql", "sqlite"):
            return "1 = 0", list(params)  # no IN () elsewhere; and negated, always true
        sql, values = any_of(connection, keys)
        return f"{lhs} {sql}", [*params, *values]


def any_of(connection: BaseDatabaseWrapper, keys: list[int]) -> tuple[str, list[Any]]:
    """The right-hand side of ``column IN keys`` and its parameters: one parameter for the
    whole list where the database allows.

    - PostgreSQL: ``= ANY(%s::bigint[])`` with the array's text, ``{1,2,3}``. A Python
      list would be quoted element by element by psycopg on the client (Django binds
      parameters there by default): 1.5 µs per key against 0.2 to join the text, for each
      of the few statements a round runs on its 500 keys.
    - SQLite: ``IN (SELECT value FROM json_each(%s))`` with a JSON array.
    - Elsewhere: a plain ``IN`` list.
    """
    joined = ",".join(map(str, keys))  # integers: as JSON and as array text alike
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])", ["{" + joined + "}"]
    if connection.vendor == "sqlite":
        return "IN (SELECT value FROM json_each(%s))", [f"[{joined}]"]
    return f"IN ({', '.join(['%s'] * len(keys))})", list(keys)
