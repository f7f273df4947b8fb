"""What each ``CONFIGCAT_SEGMENT`` key accepts: small validators, one or two per kind of value.

Each validator returns a description of what is wrong with a value, or ``None``;
:data:`.conf.VALIDATORS` says which one checks which key, and :func:`.conf.find_problems`
puts the key and the value around what it returns, for ``manage.py check``
(``configcat_segment.E003``) and for :func:`.conf.get_settings`. Pure: no Django.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .evaluations import exposure
from .header_names import is_secret_header
from .segment.addresses import parse_entry

# A century: more than anyone keeps events, and "that many days ago" is a valid date.
MAX_RETENTION_DAYS = 36_500

# Ten years: longer durations mean nothing here, and the date arithmetic overflows far above.
MAX_SECONDS = 10 * 365 * 24 * 3600

# A monitoring token shorter than this is too easy to guess.
MIN_TOKEN_LENGTH = 24
# ConfigCat's audit log answers for at most 30 days between its two dates.
MAX_AUDIT_LOG_WINDOW_SECONDS = 30 * 24 * 3600

# A day: a webhook later than that is no proof of anything, and the audit log is read
# that much behind, so a longer tolerance only delays reconciliation.
MAX_RECONCILE_TOLERANCE_SECONDS = 24 * 3600

Validator = Callable[[Any], str | None]

# What DELIVERY accepts besides a dotted path (configcat_segment.delivery.backends.ALIASES).
DELIVERY_ALIASES = ("thread", "worker", "celery", "locmem")


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "must be a whole number of at least 1"
    return None


def int_between(lowest: int, highest: int) -> Validator:
    def validate(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            return f"must be a whole number from {lowest} to {highest}"
        return None

    return validate


def non_negative_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be a whole number of at least 0"
    return None


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool, infinity or NaN."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def positive_number(value: Any) -> str | None:
    if not _is_number(value) or value <= 0:
        return "must be a number greater than 0"
    return None


def non_negative_number(value: Any) -> str | None:
    if not _is_number(value) or value < 0:
        return "must be a number of at least 0"
    return None


def fraction(value: Any) -> str | None:
    if not _is_number(value) or not 0 <= value <= 1:
        return "must be a number from 0 to 1"
    return None


def seconds(validator: Validator) -> Validator:
    """``validator``, for a duration in seconds: also at most :data:`MAX_SECONDS`."""

    def validate(value: Any) -> str | None:
        problem = validator(value)
        if problem is None and value > MAX_SECONDS:
            return f"must be at most {MAX_SECONDS:,} seconds (ten years)"
        return problem

    return validate


def one_of(*choices: str) -> Validator:
    def validate(value: Any) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(repr(c) for c in choices)

    return validate


def delivery_backend(value: Any) -> str | None:
    if value in DELIVERY_ALIASES or (isinstance(value, str) and dotted_path(value) is None):
        return None
    aliases = ", ".join(repr(alias) for alias in DELIVERY_ALIASES)
    return f"must be one of {aliases}, or the dotted path of a delivery backend class"


def text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return "must be a non-empty string"


def optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return "must be a non-empty string or None"


def optional_file_path(value: Any) -> str | None:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return "must be a file path (a string or a pathlib.Path) or None"


def dotted_path(value: Any) -> str | None:
    if isinstance(value, str) and value.count(".") >= 1 and all(value.split(".")):
        return None
    return "must be a dotted import path such as 'myapp.flags.make_user'"


def optional_secret(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) >= MIN_TOKEN_LENGTH and value == value.strip():
        return None
    return (
        f"must be None or a string of at least {MIN_TOKEN_LENGTH} characters without "
        "surrounding spaces (secrets.token_urlsafe(32) makes one)"
    )


def http_url(value: Any) -> str | None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
    except ValueError:
        parts = None
    if parts and parts.scheme in ("http", "https") and parts.hostname and not parts.password:
        return None
    return "must be an http:// or https:// URL (without credentials in it)"


def optional_http_url(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return None
    return "must be an http:// or https:// URL or None"


def patterns(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return "must be a list of flag key patterns such as ['checkout*', 'beta-?']"
    for pattern in value:
        problem = exposure.pattern_problem(pattern)
        if problem:
            return f"has a bad pattern: {problem}"
    return None


def optional_patterns(value: Any) -> str | None:
    if value is None:
        return None
    problem = patterns(value)
    return f"{problem}, or None for every flag" if problem and "list" in problem else problem


def pattern_mapping(value_problem: Validator, example: str) -> Validator:
    """A dict of flag key patterns to values; (pattern, value) pairs are accepted too."""

    def validate(value: Any) -> str | None:
        pairs = as_pairs(value)
        if pairs is None:
            return f"must be a dict of flag key patterns, such as {example}"
        for pattern, item in pairs:
            problem = exposure.pattern_problem(pattern) or value_problem(item)
            if problem:
                return f"has a bad entry: {problem}"
        return None

    return validate


def as_pairs(value: Any) -> tuple[tuple[Any, Any], ...] | None:
    if isinstance(value, Mapping):
        return tuple(value.items())
    if isinstance(value, list | tuple) and all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in value
    ):
        return tuple((pattern, item) for pattern, item in value)
    return None


def endpoint_allowlist(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of host names, IP addresses or networks"
    for entry in value:
        if isinstance(entry, str) and not entry.strip():
            return "must list host names, IP addresses or networks, not an empty string"
        if parse_entry(entry) is None:
            return (
                f"must list host names, IP addresses or networks ('segment-proxy.internal', "
                f"'10.0.0.0/8'); {entry!r} is not a host name, an IP address or a network"
            )
    return None


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header_names(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of header names"
    for name in value:
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            return f"must list header names; {name!r} is not a header name"
        if is_secret_header(name):
            return f"must not list {name!r}, which carries credentials: it is never stored"
    return None
