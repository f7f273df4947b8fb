"""Finding the few items a whole is refused for: try it in halves until they stand alone. Pure.

Segment refuses a whole ``/v1/batch`` request for one bad message; a database refuses a
whole ``INSERT`` for one bad row. Rather than giving up on the lot, or trying every item on
its own, the refused group is tried again as two halves, a refused half as two quarters,
and so on: the accepted parts go through, and each refused item ends up alone, with the
reason it was refused. Finding ``k`` bad items among ``n`` takes about
``2·k·log2(n / k)`` tries.

:class:`Halving` is that search, one step at a time, so that its caller decides between
steps whether to go on: the dispatcher stops at a request budget, at the end of its lease
or when its runner stops; the evaluation store goes to the end (savepoints are cheap).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def halves(items: Sequence[T]) -> list[list[T]]:
    """``items`` in two halves, the first one shorter when odd; one item stays as it is."""
    middle = len(items) // 2
    return [list(items[:middle]), list(items[middle:])] if middle else [list(items)]


@dataclass
class Part(Generic[T, R]):
    """Items to try together."""

    items: list[T]
    # Why the group this part was split from was refused; None: a group as first given.
    refusal: R | None = None


class Halving(Generic[T, R]):
    """A halve-until-alone search over ``groups``, one part at a time.

    Take the next part with :meth:`next_part`, try it, and report a refusal with
    :meth:`refused`: a part of several items comes back as its two halves, to be tried
    next (first half first, so the search goes depth first); a single item is set aside in
    :attr:`alone` with the reason. Parts never refused need no report.
    """

    def __init__(self, groups: Iterable[Sequence[T]]) -> None:
        self._parts: deque[Part[T, R]] = deque(Part(list(group)) for group in groups)
        # Items refused on their own, with the reason, in the order they were found.
        self.alone: list[tuple[T, R]] = []

    def __bool__(self) -> bool:
        """Whether parts are left to try."""
        return bool(self._parts)

    def next_part(self) -> Part[T, R]:
        """The next part to try (raises ``IndexError`` when none is left)."""
        return self._parts.popleft()

    def refused(self, part: Part[T, R], reason: R) -> None:
        """``part`` was refused for ``reason``: try its halves next, or set its item aside."""
        if len(part.items) > 1:
            split = [Part(half, reason) for half in halves(part.items)]
            self._parts.extendleft(reversed(split))
        elif part.items:
            self.alone.append((part.items[0], reason))

    def take_alone(self) -> list[tuple[T, R]]:
        """The items refused alone so far, forgotten by the search."""
        alone, self.alone = self.alone, []
        return alone

    def remaining(self) -> list[Part[T, R]]:
        """The parts not tried yet, in order."""
        return list(self._parts)
