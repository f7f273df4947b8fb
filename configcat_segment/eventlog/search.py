"""Search: the events whose flag key or user id contains a text, any case, through an index.

PostgreSQL matches with ``ILIKE``, which its trigram indexes serve (``database.search``).
SQLite matches through its FTS5 trigram table; a page of results walks that index from the
newest match down (:func:`fts_window`), checking the other filters as it goes, unless the
other filters already narrow the events to a few, which are then checked one by one. Any
other database compares every row (correct, not indexed).
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.sql.compiler import SQLCompiler

from ..database.search import MIN_LENGTH, fts_query
from .pagination import Window, keyset

__all__ = ["MIN_LENGTH", "ILike", "condition", "window"]

R = TypeVar("R")

# Fewer events than this left by the other filters: check them one by one, not the index.
FEW: Final = 5_000
# Index entries read per step of a walk: the first step suits a rare text, later ones grow
# so that a common text with a selective filter takes few queries.
FIRST_STEP: Final = 200
MAX_STEP: Final = 10_000

MATCHING: Final = (
    "SELECT rowid FROM configcat_segment_event_search WHERE configcat_segment_event_search MATCH %s"
)


class ILike(Lookup):  # type: ignore[type-arg]  # generic only in the stubs
    """``column ILIKE '%text%'``: PostgreSQL's case-insensitive match, which its trigram
    indexes serve. ``%``, ``_`` and ``\\`` in the text are matched literally."""

    lookup_name = "ilike_contains"
    prepare_rhs = False  # the text, as given

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        pattern = "%" + connection.ops.prep_for_like_query(str(self.rhs)) + "%"
        return f"{lhs} ILIKE %s", [*params, pattern]


def condition(term: str, vendor: str) -> Q:
    """Events whose flag key or user id contains ``term`` (any case), on ``vendor``."""
    if vendor == "postgresql":
        return Q(ILike(F("flag_key"), term)) | Q(ILike(F("user_id"), term))
    if vendor == "sqlite" and len(term) >= MIN_LENGTH:
        return Q(pk__in=RawSQL(MATCHING, [fts_query(term)]))  # noqa: S611 - constant SQL
    return Q(flag_key__icontains=term) | Q(user_id__icontains=term)


def window(queryset: QuerySet[Any, R], term: str, *, narrowed: bool) -> Window[R]:
    """The events of ``queryset`` (the other filters) that contain ``term``, by keyset.

    ``narrowed``: whether ``queryset`` has filters beyond the whole table.
    """
    vendor = connections[queryset.db].vendor
    matching = queryset.filter(condition(term, vendor))
    if vendor != "sqlite" or len(term) < MIN_LENGTH:
        return keyset(matching)
    if narrowed and queryset.order_by().values("pk")[:FEW].count() < FEW:
        # Few events to check: the other filters' indexes find them, and a plain LIKE on
        # each (ASCII letters in any case) costs less than walking the search index.
        return keyset(queryset.filter(Q(flag_key__icontains=term) | Q(user_id__icontains=term)))
    return fts_window(queryset, term)


def fts_window(queryset: QuerySet[Any, R], term: str) -> Window[R]:
    """Walk SQLite's FTS5 index in primary key order, keeping what ``queryset`` keeps."""
    match = fts_query(term)
    db = queryset.db

    def rows(bound: int | None, newer: bool, limit: int) -> list[R]:
        found: list[R] = []
        step = max(limit, FIRST_STEP)
        while len(found) < limit:
            ids = _matches(db, match, bound, newer, step)
            if ids:
                kept = queryset.filter(pk__in=ids).order_by("pk" if newer else "-pk")
                found += kept[: limit - len(found)]
            if len(ids) < step:
                break
            bound, step = ids[-1], min(step * 4, MAX_STEP)
        return found

    return rows


def _matches(db: str, match: str, bound: int | None, newer: bool, limit: int) -> list[int]:
    """Up to ``limit`` primary keys matching ``match`` beyond ``bound``, in walking order."""
    sql = MATCHING
    params: list[Any] = [match]
    if bound is not None:
        sql += " AND rowid > %s" if newer else " AND rowid < %s"
        params.append(bound)
    sql += f" ORDER BY rowid {'ASC' if newer else 'DESC'} LIMIT %s"
    params.append(limit)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
