import datetime as dt

import pytest

from configcat_segment.segment.retry import (
    Verdict,
    backoff_seconds,
    classify,
    give_up_reason,
    parse_retry_after,
    probe_seconds,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (460, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (400, Verdict.REJECTED),
        (413, Verdict.REJECTED),
        (422, Verdict.REJECTED),
        (418, Verdict.REJECTED),
        (401, Verdict.UNHEALTHY),
        (403, Verdict.UNHEALTHY),
        (404, Verdict.UNHEALTHY),
        (405, Verdict.UNHEALTHY),
        (410, Verdict.UNHEALTHY),
        (501, Verdict.UNHEALTHY),
        (505, Verdict.UNHEALTHY),
        (511, Verdict.UNHEALTHY),
        # Refusals of the request, not of its messages: a proxy in the way.
        (406, Verdict.UNHEALTHY),
        (407, Verdict.UNHEALTHY),
        (411, Verdict.UNHEALTHY),
        (415, Verdict.UNHEALTHY),
        (431, Verdict.UNHEALTHY),
        (301, Verdict.UNHEALTHY),
        (304, Verdict.UNHEALTHY),
    ],
)
def test_classify(status, verdict):
    assert classify(status) is verdict


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 12:00:30 -0000", 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("\N{SUPERSCRIPT TWO}", None),  # str.isdigit() says yes; float() says no
        ("\N{ARABIC-INDIC DIGIT THREE}", None),
        ("9" * 400, float("9" * 400)),  # absurd, yet a number: the cap decides
    ],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


def test_backoff_doubles_from_base_to_cap_with_full_jitter():
    def ceiling(attempts):
        return backoff_seconds(attempts, base=2, cap=60, random=lambda: 0.999999)

    def floor(attempts):
        return backoff_seconds(attempts, base=2, cap=60, random=lambda: 0.0)

    assert [round(ceiling(n)) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert {floor(n) for n in range(1, 8)} == {2}
    assert backoff_seconds(3, base=2, cap=60, random=lambda: 0.5) == 5.0  # 2 + (8 - 2) / 2
    assert ceiling(10_000) == pytest.approx(60)  # no overflow however many attempts


def test_backoff_waits_at_least_retry_after_but_never_past_the_cap():
    assert backoff_seconds(1, base=2, cap=60, random=lambda: 0.0, retry_after=30) == 30
    assert backoff_seconds(6, base=2, cap=60, random=lambda: 0.99, retry_after=1) > 30
    assert backoff_seconds(1, base=2, cap=60, random=lambda: 0.0, retry_after=7200) == 60
    huge = parse_retry_after("9" * 400, NOW)
    assert backoff_seconds(1, base=2, cap=60, random=lambda: 0.0, retry_after=huge) == 60


def test_backoff_with_a_base_over_the_cap_is_the_cap():
    assert backoff_seconds(1, base=100, cap=10, random=lambda: 0.5) == 10


def test_probes_space_out_as_the_connection_stays_unhealthy():
    def latest(unhealthy_for):
        return probe_seconds(unhealthy_for, base=2, cap=3600, random=lambda: 0.999999)

    assert round(latest(0)) == 2
    assert round(latest(100)) == 100
    assert round(latest(10**6)) == 3600
    assert probe_seconds(100, base=2, cap=3600, random=lambda: 0.0) == 2


def test_give_up_after_max_attempts_or_max_age():
    def reason(attempts, age):
        return give_up_reason(
            attempts=attempts,
            queued_at=NOW - dt.timedelta(seconds=age),
            now=NOW,
            max_attempts=5,
            max_age_seconds=7200,
        )

    assert reason(4, 7199) is None
    assert reason(5, 0) == "Gave up after 5 attempts"
    assert reason(1, 7200) == "Gave up: queued longer than the maximum of 2 h"
