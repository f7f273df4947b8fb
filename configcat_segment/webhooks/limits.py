"""What one webhook may cost: how deep a value is read, how many problems are listed.
Pure functions, no Django.

A signed body is at most ``WEBHOOK_MAX_BODY_BYTES``, but within that it can nest arrays
thousands of levels deep (re-encoding them would exhaust the stack), list a hundred
thousand changes (each would be an event, each problem a line of the answer), or fill a
name every one of those events repeats with most of the body. The number of changes is
bounded by ``MAX_CHANGES_PER_WEBHOOK`` where they are read; the rest is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ..segment.payloads import TRUNCATION_MARK

# Deeper values are not re-encoded: ConfigCat's own fields are never nested at all.
MAX_DEPTH: Final = 32
# Problems listed per receipt (and answer); the others are counted.
MAX_PROBLEMS: Final = 20
# Characters of a text every event of a webhook repeats (config and environment names and
# ids, URL, changer, notes): far above what ConfigCat fills in, and small enough that
# MAX_CHANGES_PER_WEBHOOK events cannot multiply a long one into hundreds of megabytes.
MAX_SHARED_CHARS: Final = 1_000


def depth(value: Any) -> int:
    """How many arrays or objects deep ``value`` is (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def too_deep(value: Any) -> int | None:
    """``value``'s depth when it is deeper than :data:`MAX_DEPTH`, else None."""
    found = depth(value)
    return found if found > MAX_DEPTH else None


def placeholder(kind: str, levels: int) -> str:
    """What is sent instead of a value too deep to re-encode."""
    return f"[a JSON {kind} nested {levels:,} levels deep: see the webhook receipt]"


def bounded(problems: Sequence[str], limit: int = MAX_PROBLEMS) -> list[str]:
    """The first ``limit`` problems, and a line counting the others."""
    if len(problems) <= limit:
        return list(problems)
    more = len(problems) - limit
    return [*problems[:limit], f"… and {more:,} more problems of the same kinds."]


def shortened(text: str, limit: int = MAX_SHARED_CHARS) -> str:
    """``text``, or its first ``limit`` characters marked as cut (as Segment messages mark
    the text they cut)."""
    return text if len(text) <= limit else text[:limit] + TRUNCATION_MARK
