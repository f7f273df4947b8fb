"""A stacked bar chart as inline SVG. Pure: buckets in, markup out; no JavaScript, no CDN.

Colours come from CSS classes (``cs-fill-<series>``), so the page's stylesheet decides
them for the light and the dark theme alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

WIDTH: Final = 720
HEIGHT: Final = 180
LEFT: Final = 44  # room for the y-axis labels
BOTTOM: Final = 22  # room for the x-axis labels
TOP: Final = 8
GAP: Final = 2


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar, for every ``label_every``-th bar
    counts: Mapping[str, int]
    title: str = ""  # starts the tooltip; the label when empty
    href: str | None = None


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``value`` (>= 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def stacked_bars(
    bars: Sequence[Bar],
    series: Sequence[tuple[str, str]],
    *,
    title: str,
    label_every: int = 6,
    number: Callable[[int], str] = str,
) -> str:
    """An ``<svg>`` with one stacked bar per item of ``bars``.

    ``series`` lists ``(key, label)`` pairs, bottom to top; each bar stacks its ``counts``
    for those keys. Every bar has a tooltip (``<title>``) with its counts, and is a link
    when it has an ``href``. ``number`` formats counts (for thousands separators).
    """
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((sum(b.counts.get(k, 0) for k, _ in series) for b in bars), default=0))
    slot = plot_width / max(len(bars), 1)
    parts = [
        f'<svg class="cs-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_height * (1 - fraction)
        value = round(top * fraction)
        parts.append(
            f'<line class="cs-chart-grid" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="cs-chart-axis" x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(number(value))}</text>'
        )
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + GAP / 2
        width = max(slot - GAP, 1)
        y = TOP + plot_height
        shown = [(key, label, bar.counts.get(key, 0)) for key, label in series]
        counted = [f"{number(n)} {label}" for _, label, n in shown if n] or [number(0)]
        tooltip = " · ".join([bar.title or bar.label, *counted])
        rects = []
        for key, _label, n in shown:
            if not n:
                continue
            height = plot_height * n / top
            y -= height
            rects.append(
                f'<rect class="cs-fill-{escape(key)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{width:.1f}" height="{height:.1f}"/>'
            )
        # A transparent full-height rectangle makes empty and thin bars easy to point at.
        hit = (
            f'<rect class="cs-chart-hit" x="{x:.1f}" y="{TOP}" width="{width:.1f}" '
            f'height="{plot_height}"/>'
        )
        group = f"<g><title>{escape(tooltip)}</title>{hit}{''.join(rects)}</g>"
        if bar.href:
            group = f'<a href="{escape(bar.href)}">{group}</a>'
        parts.append(group)
        if index % label_every == 0:
            parts.append(
                f'<text class="cs-chart-axis" x="{x + width / 2:.1f}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
