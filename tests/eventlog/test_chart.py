import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from configcat_segment.eventlog.chart import Bar, nice_ceiling, stacked_bars
from configcat_segment.eventlog.overview import events_per_hour

SVG = "{http://www.w3.org/2000/svg}"
SERIES = [("delivered", "delivered"), ("dead", "dead")]


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (420, 500)]
)
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == expected


def bars_of(svg):
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    return root, [g for g in root.iter(f"{SVG}g")]


def test_bars_stack_their_series_to_scale_with_tooltips_and_links():
    svg = stacked_bars(
        [
            Bar("10:00", {"delivered": 30, "dead": 10}, href="?since=10"),
            Bar("11:00", {"delivered": 20}),
            Bar("12:00", {}),
        ],
        SERIES,
        title="Events per hour",
        label_every=2,
    )
    root, groups = bars_of(svg)  # well-formed XML
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Events per hour"
    assert len(groups) == 3
    first = groups[0]
    assert first.find(f"{SVG}title").text == "10:00 · 30 delivered · 10 dead"
    heights = {r.get("class"): float(r.get("height")) for r in first.iter(f"{SVG}rect")}
    # The tallest bar (40) fills the plot up to the nice ceiling, 50: 30/50 and 10/50.
    assert heights["cs-fill-delivered"] == pytest.approx(3 * heights["cs-fill-dead"], abs=0.2)
    assert groups[2].find(f"{SVG}title").text == "12:00 · 0"
    assert [r.get("class") for r in groups[2].iter(f"{SVG}rect")] == ["cs-chart-hit"]
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["?since=10"]
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert axis == ["10:00", "12:00"]
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"] == [
        "0",
        "25",
        "50",
    ]


def test_text_and_links_are_escaped():
    svg = stacked_bars(
        [Bar('<script>"x"', {"dead": 1}, href='?a=1&b="2"')], SERIES, title="<b>t</b>"
    )
    assert "<script>" not in svg
    assert "<b>" not in svg
    root, [group] = bars_of(svg)
    assert root.find(f"{SVG}a").get("href") == '?a=1&b="2"'
    assert group.find(f"{SVG}title").text == '<script>"x" · 1 dead'


def test_an_empty_chart_still_draws():
    _root, groups = bars_of(stacked_bars([], SERIES, title="nothing"))
    assert groups == []


@pytest.mark.django_db
def test_events_per_hour_counts_the_last_24_hours_by_status(make_event):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    make_event(status="delivered", created_at=now)
    make_event(status="delivered", created_at=now - dt.timedelta(minutes=20))
    make_event(status="dead", created_at=now - dt.timedelta(hours=2))
    make_event(status="dead", created_at=now - dt.timedelta(hours=30))  # too old
    hours = events_per_hour(now)
    assert len(hours) == 24
    assert hours[-1].start == now.replace(minute=0)
    assert hours[-1].counts == {"delivered": 2}
    assert hours[-3].counts == {"dead": 1}
    assert sum(h.total for h in hours) == 3
