"""What to do after a request to Segment, and when to try again. Pure functions.

Every answer falls in one of four cases:

``DELIVERED``
    2xx.
``RETRY``
    The service is unavailable for now: no answer (network error, timeout), 408, 429, 460
    (a load balancer's "client closed the connection") and 5xx. The events are tried again
    after a backoff (exponential with jitter, never sooner than ``Retry-After``) until they
    run out of attempts or age.
``REJECTED``
    Segment refused the content: 400 (malformed or oversized JSON), 413, 422 and the other
    4xx not listed here. The batch is split to find the offending messages; a single
    message that is refused goes ``dead`` with Segment's answer.
``UNHEALTHY``
    Nothing is wrong with the messages, everything with the connection: 401 and 403 (the
    write key), answers that mean the endpoint is not a Tracking API at all (a redirect
    that was not followed, 404, 405, 410, 501, 505, 511), and refusals of the request
    rather than its content (406, 407, 411, 415, 417, 426, 431: a proxy or gateway in
    the way, never Segment's verdict on a message). Marking events dead for these
    would throw them away over a typo in a setting, and retrying them one by one would
    only burn their attempts. So the connection is marked unhealthy, its events wait
    (attempts untouched), and the endpoint is probed with backoff until someone fixes it.
    ``segment-analytics-python`` drops batches on 501 and 505 and retries 410; here both
    wait, and nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime

Random = Callable[[], float]  # like random.random: a float in [0, 1)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"
    UNHEALTHY = "unhealthy"


_RETRY_4XX = frozenset({408, 429, 460})
_UNHEALTHY = frozenset({401, 403, 404, 405, 406, 407, 410, 411, 415, 417, 426, 431, 501, 505, 511})
_DELAY_SECONDS = re.compile(r"[0-9]+")


def classify(status: int | None) -> Verdict:
    """The verdict on an answer with this HTTP ``status`` (``None``: no answer at all)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if 300 <= status < 400 or status in _UNHEALTHY:
        return Verdict.UNHEALTHY
    if status in _RETRY_4XX or status >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    ``None`` when the header is absent or unreadable (the backoff alone then decides).
    """
    if not value:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):  # not str.isdigit(): that takes "²" too
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, says RFC 5322
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - now).total_seconds())


def _jittered(low: float, high: float, random: Random) -> float:
    return low + (max(high, low) - low) * random()


def backoff_seconds(
    attempts: int,
    *,
    base: float,
    cap: float,
    random: Random,
    retry_after: float | None = None,
) -> float:
    """How long to wait after the ``attempts``-th failed attempt (1 for the first).

    Full jitter between ``base`` and an exponential ceiling (``base``, ``2 * base``,
    ``4 * base``, …, at most ``cap``), so that many events failing together do not come
    back together. Never sooner than the server's ``Retry-After``, never longer than
    ``cap``.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 64))
    delay = _jittered(min(base, cap), ceiling, random)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


def probe_seconds(unhealthy_for: float, *, base: float, cap: float, random: Random) -> float:
    """How long an unhealthy connection waits before it is probed again.

    The wait grows with how long the connection has been unhealthy (so probes come at
    roughly ``base``, ``2 * base``, ``4 * base``, … after the problem started) without
    keeping a counter anywhere.
    """
    ceiling = min(cap, max(base, unhealthy_for))
    return min(_jittered(min(base, cap), ceiling, random), cap)


def give_up_reason(
    *,
    attempts: int,
    queued_at: dt.datetime,
    now: dt.datetime,
    max_attempts: int,
    max_age_seconds: float,
) -> str | None:
    """Why an event that just failed must not be retried, or ``None`` to retry it."""
    if attempts >= max_attempts:
        return f"Gave up after {attempts} attempts"
    if (now - queued_at).total_seconds() >= max_age_seconds:
        return f"Gave up: queued longer than the maximum of {max_age_seconds / 3600:g} h"
    return None
