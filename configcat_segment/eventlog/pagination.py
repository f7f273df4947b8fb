"""Keyset pagination, newest first: one query per page, whichever page it is.

A page is "the ``size`` events older (or newer) than event N", found through the primary
key's index; there is no ``COUNT(*)`` and no ``OFFSET``, so the 50th page costs what the
first one does, even with millions of rows. The cursor in a link is opaque text; it is
validated before use and a bad one is refused with :class:`InvalidCursor`.

Rows come from a :data:`Window`: :func:`keyset` makes one from a queryset; search on SQLite
makes its own, walking its full-text index (``search.fts_window``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeAlias, TypeVar

from django.db.models import Model, QuerySet

_CURSOR_TEXT: Final = re.compile(r"([on])([1-9][0-9]{0,18})")


class InvalidCursor(ValueError):
    """A cursor that this module did not write (cut short, edited, from elsewhere)."""


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (older than) or before (newer than) the row ``id``."""

    id: int
    newer: bool = False

    def encode(self) -> str:
        text = f"{'n' if self.newer else 'o'}{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            padded = value + "=" * (-len(value) % 4)
            text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        except (binascii.Error, UnicodeError, ValueError) as exc:
            raise InvalidCursor(value) from exc
        match = _CURSOR_TEXT.fullmatch(text)
        if match is None:
            raise InvalidCursor(value)
        return cls(id=int(match[2]), newer=match[1] == "n")


M = TypeVar("M", bound=Model)
R = TypeVar("R")

Window: TypeAlias = Callable[[int | None, bool, int], list[R]]
"""``window(bound, newer, limit)``: up to ``limit`` rows older than the row ``bound`` (the
newest rows when None), newest first; or, when ``newer``, rows newer than ``bound``, oldest
first."""


def keyset(queryset: QuerySet[Any, R]) -> Window[R]:
    """The rows of ``queryset`` by primary key, read through its index one window at a time."""

    def rows(bound: int | None, newer: bool, limit: int) -> list[R]:
        if newer:
            return list(queryset.filter(pk__gt=bound).order_by("pk")[:limit])
        if bound is not None:
            return list(queryset.filter(pk__lt=bound).order_by("-pk")[:limit])
        return list(queryset.order_by("-pk")[:limit])

    return rows


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    next: Cursor | None  # older rows
    previous: Cursor | None  # newer rows

    @property
    def is_first(self) -> bool:
        return self.previous is None


def paginate(source: QuerySet[M] | Window[M], cursor: Cursor | None, size: int) -> Page[M]:
    """One page of ``source``, newest (highest primary key) first; one query for a queryset."""
    window = keyset(source) if isinstance(source, QuerySet) else source
    if cursor is not None and cursor.newer:
        rows = window(cursor.id, True, size + 1)
        more_newer = len(rows) > size
        items = rows[:size][::-1]
        return Page(
            items=items,
            next=Cursor(items[-1].pk) if items else None,
            previous=Cursor(items[0].pk, newer=True) if more_newer else None,
        )
    rows = window(None if cursor is None else cursor.id, False, size + 1)
    items = rows[:size]
    return Page(
        items=items,
        next=Cursor(items[-1].pk) if len(rows) > size else None,
        # A page reached through a cursor has newer rows before it: those it came from.
        previous=Cursor(items[0].pk, newer=True) if cursor is not None and items else None,
    )
