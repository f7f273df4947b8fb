"""The app's settings: one dict, ``CONFIGCAT_SEGMENT``, every key optional.

Read them with :func:`get_settings`, which returns a frozen, typed snapshot built once
and rebuilt when ``CONFIGCAT_SEGMENT`` changes (``override_settings`` included). Every
key, its default and its meaning are listed in ``docs/settings.md``; ``manage.py check``
reports unknown keys and invalid values (``configcat_segment.E001`` to ``E003``).
"""

from __future__ import annotations

import difflib
import functools
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

SETTING_NAME = "CONFIGCAT_SEGMENT"

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


# -- validators: each returns a description of what is wrong, or None -------------------


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "must be a whole number of at least 1"
    return None


def _int_between(lowest: int, highest: int) -> Validator:
    def validate(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            return f"must be a whole number from {lowest} to {highest}"
        return None

    return validate


def _non_negative_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be a whole number of at least 0"
    return None


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool, infinity or NaN."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _positive_number(value: Any) -> str | None:
    if not _is_number(value) or value <= 0:
        return "must be a number greater than 0"
    return None


def _non_negative_number(value: Any) -> str | None:
    if not _is_number(value) or value < 0:
        return "must be a number of at least 0"
    return None


def _fraction(value: Any) -> str | None:
    if not _is_number(value) or not 0 <= value <= 1:
        return "must be a number from 0 to 1"
    return None


def _seconds(validator: Validator) -> Validator:
    """``validator``, for a duration in seconds: also at most :data:`MAX_SECONDS`."""

    def validate(value: Any) -> str | None:
        problem = validator(value)
        if problem is None and value > MAX_SECONDS:
            return f"must be at most {MAX_SECONDS:,} seconds (ten years)"
        return problem

    return validate


def _one_of(*choices: str) -> Validator:
    def validate(value: Any) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(repr(c) for c in choices)

    return validate


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return "must be a non-empty string"


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return "must be a non-empty string or None"


def _optional_file_path(value: Any) -> str | None:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return "must be a file path (a string or a pathlib.Path) or None"


def _dotted_path(value: Any) -> str | None:
    if isinstance(value, str) and value.count(".") >= 1 and all(value.split(".")):
        return None
    return "must be a dotted import path such as 'myapp.flags.make_user'"


def _optional_secret(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) >= MIN_TOKEN_LENGTH and value == value.strip():
        return None
    return (
        f"must be None or a string of at least {MIN_TOKEN_LENGTH} characters without "
        "surrounding spaces (secrets.token_urlsafe(32) makes one)"
    )


def _http_url(value: Any) -> str | None:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
    except ValueError:
        parts = None
    if parts and parts.scheme in ("http", "https") and parts.hostname and not parts.password:
        return None
    return "must be an http:// or https:// URL (without credentials in it)"


def _optional_http_url(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return None
    return "must be an http:// or https:// URL or None"


# -- the settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppSettings:
    """Every setting with its default. See ``docs/settings.md`` for what each one does."""

    # How events reach Segment: "thread" (an in-process background dispatcher),
    # "worker" (only configcat_segment_worker processes deliver) or "celery".
    DELIVERY: str = "thread"

    # Change webhooks.
    WEBHOOK_TOLERANCE_SECONDS: int = 300
    WEBHOOK_MAX_BODY_BYTES: int = 256 * 1024
    ALLOW_UNSIGNED_WEBHOOKS: bool = False

    # Delivery.
    BATCH_SIZE: int = 500
    MAX_ATTEMPTS: int = 20
    MAX_AGE_SECONDS: int = 3 * 24 * 3600
    RETRY_BASE_SECONDS: float = 2.0
    RETRY_MAX_SECONDS: float = 3600.0
    LEASE_SECONDS: int = 120
    HTTP_TIMEOUT_SECONDS: float = 15.0
    GZIP: bool = True
    WORKER_POLL_SECONDS: float = 1.0
    WORKER_THREADS: int = 4
    SHUTDOWN_FLUSH_SECONDS: float = 5.0
    RETENTION_DAYS: int = 30

    # Evaluations: the ConfigCat client.
    SDK_KEY: str | None = None
    POLLING_MODE: str = "auto"
    POLL_INTERVAL_SECONDS: int = 60
    DATA_GOVERNANCE: str = "global"
    BASE_URL: str | None = None
    FLAG_OVERRIDES: str | None = None  # a pathlib.Path is accepted, and kept as its text
    FLAG_OVERRIDES_BEHAVIOUR: str = "local_only"

    # Evaluations: what is forwarded.
    FORWARD_EVALUATIONS: bool = True
    USER_FACTORY: str = "configcat_segment.evaluations.users.default_user_factory"
    DEDUP_WINDOW_SECONDS: int = 300
    DEDUP_MAX_KEYS: int = 100_000
    SAMPLE_RATE: float = 1.0
    LONG_VALUE_LENGTH: int = 256
    SEND_CLIENT_IP: bool = False
    ANONYMOUS_ID_COOKIE: str = "ajs_anonymous_id"
    SET_ANONYMOUS_ID_COOKIE: bool = False
    EVALUATION_BUFFER_SIZE: int = 10_000
    EVALUATION_FLUSH_SECONDS: float = 1.0
    # "thread": a background thread writes buffered evaluations; "manual": only
    # configcat_segment.flush() (and the flush at exit) does.
    EVALUATION_WRITER: str = "thread"

    # The event log page.
    EVENT_LOG_PAGE_SIZE: int = 50

    # Operations: health endpoint, metrics, alerts (docs/operations.md).
    MONITORING_TOKEN: str | None = None
    HEALTH_MAX_LAG_SECONDS: int = 300
    METRICS_WINDOW_SECONDS: int = 300
    ALERT_EMAILS: bool = False
    ALERT_INTERVAL_SECONDS: int = 3600
    ALERT_CACHE: str = "default"
    SITE_URL: str | None = None
    # Missed changes and ConfigCat's retries (docs/configcat-webhooks.md).
    CONFIGCAT_API_BASE_URL: str = "https://api.configcat.com"
    RECONCILE_INTERVAL_SECONDS: int = 600
    RECONCILE_TOLERANCE_SECONDS: int = 600
    RECONCILE_WINDOW_SECONDS: int = 24 * 3600
    WEBHOOK_DUPLICATE_SECONDS: int = 600


VALIDATORS: Mapping[str, Validator] = {
    "DELIVERY": _one_of("thread", "worker", "celery"),
    "WEBHOOK_TOLERANCE_SECONDS": _seconds(_positive_int),
    "WEBHOOK_MAX_BODY_BYTES": _positive_int,
    "ALLOW_UNSIGNED_WEBHOOKS": _boolean,
    "BATCH_SIZE": _positive_int,
    "MAX_ATTEMPTS": _positive_int,
    "MAX_AGE_SECONDS": _seconds(_positive_int),
    "RETRY_BASE_SECONDS": _seconds(_positive_number),
    "RETRY_MAX_SECONDS": _seconds(_positive_number),
    "LEASE_SECONDS": _seconds(_positive_int),
    "HTTP_TIMEOUT_SECONDS": _seconds(_positive_number),
    "GZIP": _boolean,
    "WORKER_POLL_SECONDS": _seconds(_positive_number),
    "WORKER_THREADS": _positive_int,
    "SHUTDOWN_FLUSH_SECONDS": _seconds(_non_negative_number),
    "RETENTION_DAYS": _int_between(1, MAX_RETENTION_DAYS),
    "SDK_KEY": _optional_text,
    "POLLING_MODE": _one_of("auto", "lazy", "manual"),
    "POLL_INTERVAL_SECONDS": _seconds(_positive_int),
    "DATA_GOVERNANCE": _one_of("global", "eu_only"),
    "BASE_URL": _optional_http_url,
    "FLAG_OVERRIDES": _optional_file_path,
    "FLAG_OVERRIDES_BEHAVIOUR": _one_of("local_only", "local_over_remote", "remote_over_local"),
    "FORWARD_EVALUATIONS": _boolean,
    "USER_FACTORY": _dotted_path,
    "DEDUP_WINDOW_SECONDS": _seconds(_non_negative_int),
    "DEDUP_MAX_KEYS": _positive_int,
    "SAMPLE_RATE": _fraction,
    "LONG_VALUE_LENGTH": _positive_int,
    "SEND_CLIENT_IP": _boolean,
    "ANONYMOUS_ID_COOKIE": _optional_text,
    "SET_ANONYMOUS_ID_COOKIE": _boolean,
    "EVALUATION_BUFFER_SIZE": _positive_int,
    "EVALUATION_FLUSH_SECONDS": _seconds(_positive_number),
    "EVALUATION_WRITER": _one_of("thread", "manual"),
    "EVENT_LOG_PAGE_SIZE": _positive_int,
    "MONITORING_TOKEN": _optional_secret,
    "HEALTH_MAX_LAG_SECONDS": _seconds(_positive_int),
    "METRICS_WINDOW_SECONDS": _seconds(_positive_int),
    "ALERT_EMAILS": _boolean,
    "ALERT_INTERVAL_SECONDS": _seconds(_positive_int),
    "ALERT_CACHE": _text,
    "SITE_URL": _optional_http_url,
    "CONFIGCAT_API_BASE_URL": _http_url,
    "RECONCILE_INTERVAL_SECONDS": _seconds(_positive_int),
    "RECONCILE_TOLERANCE_SECONDS": _int_between(1, MAX_RECONCILE_TOLERANCE_SECONDS),
    "RECONCILE_WINDOW_SECONDS": _int_between(60, MAX_AUDIT_LOG_WINDOW_SECONDS),
    "WEBHOOK_DUPLICATE_SECONDS": _seconds(_non_negative_int),
}

KNOWN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(AppSettings))
DEFAULTS: Mapping[str, Any] = {f.name: f.default for f in fields(AppSettings)}


def setting_path(key: str) -> str:
    """How a key is written in settings.py, for messages: ``CONFIGCAT_SEGMENT["KEY"]``."""
    return f'{SETTING_NAME}["{key}"]'


def find_problems(raw: Any) -> list[tuple[str, str, str | None]]:
    """Everything wrong with a raw ``CONFIGCAT_SEGMENT`` value.

    Returns ``(kind, message, hint)`` triples, ``kind`` being ``"type"``, ``"unknown"`` or
    ``"invalid"``. Pure: the system checks and :func:`get_settings` both use it.
    """
    if not isinstance(raw, Mapping):
        return [("type", f"{SETTING_NAME} must be a dict, not {type(raw).__name__}.", None)]
    problems: list[tuple[str, str, str | None]] = []
    for key, value in raw.items():
        if key not in VALIDATORS:
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f'Did you mean "{close[0]}"?' if close else "See docs/settings.md."
            problems.append(("unknown", f"{setting_path(str(key))} is not a known setting.", hint))
            continue
        problem = VALIDATORS[key](value)
        if problem:
            problems.append(("invalid", f"{setting_path(key)} {problem} (got {value!r}).", None))
    return problems


@functools.cache
def get_settings() -> AppSettings:
    """The current settings, validated. Raises ``ImproperlyConfigured`` naming the key."""
    raw = getattr(django_settings, SETTING_NAME, None)
    if raw is None:
        return AppSettings()
    errors = [msg for kind, msg, _ in find_problems(raw) if kind != "unknown"]
    if errors:
        raise ImproperlyConfigured(" ".join(errors))
    values = {k: v for k, v in raw.items() if k in DEFAULTS}
    if isinstance(values.get("FLAG_OVERRIDES"), os.PathLike):
        values["FLAG_OVERRIDES"] = os.fspath(values["FLAG_OVERRIDES"])
    return AppSettings(**values)


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        get_settings.cache_clear()


setting_changed.connect(_reset, dispatch_uid="configcat_segment.conf.reset")
