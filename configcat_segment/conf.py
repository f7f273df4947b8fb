"""The app's settings: one dict, ``CONFIGCAT_SEGMENT``, every key optional.

Read them with :func:`get_settings`, which returns a frozen, typed snapshot built once
and rebuilt when ``CONFIGCAT_SEGMENT`` changes (``override_settings`` included). Every
key, its default and its meaning are listed in ``docs/settings.md``; ``manage.py check``
reports unknown keys and invalid values (``configcat_segment.E001`` to ``E003``). What
each key accepts is in :mod:`.settings_validators`.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from . import settings_validators as valid
from .evaluations import exposure
from .segment.addresses import EndpointPolicy
from .settings_validators import DELIVERY_ALIASES, Validator, as_pairs

__all__ = [
    "DEFAULTS",
    "DELIVERY_ALIASES",
    "KNOWN_KEYS",
    "SETTING_NAME",
    "VALIDATORS",
    "AppSettings",
    "endpoint_policy",
    "exposure_rules",
    "find_problems",
    "forget_settings",
    "get_settings",
    "setting_path",
]

SETTING_NAME = "CONFIGCAT_SEGMENT"

# -- the settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class AppSettings:
    """Every setting with its default. See ``docs/settings.md`` for what each one does."""

    # How events reach Segment: "thread" (an in-process background dispatcher),
    # "worker" (only configcat_segment_worker processes deliver), "celery", "locmem" (into
    # a list, for tests), or the dotted path of a delivery backend class.
    DELIVERY: str = "thread"

    # Change webhooks.
    WEBHOOK_TOLERANCE_SECONDS: int = 300
    WEBHOOK_MAX_BODY_BYTES: int = 256 * 1024
    ALLOW_UNSIGNED_WEBHOOKS: bool = False
    # Setting changes of one webhook that become events; the rest stay in the receipt.
    MAX_CHANGES_PER_WEBHOOK: int = 1000
    # Headers whose values receipts keep, besides header_names.HARMLESS_HEADERS.
    RECEIPT_HEADERS: tuple[str, ...] = ()

    # Delivery.
    # Custom endpoints may point here although these are not public addresses.
    ALLOWED_ENDPOINT_HOSTS: tuple[str, ...] = ()
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
    # What counts as an exposure (evaluations/exposure.py): "all", "decided" (by a
    # targeting rule or a percentage option) or "none", per flag; allow and deny lists of
    # flag key patterns; per-flag sample rates on top of SAMPLE_RATE. Lists and dicts are
    # kept as tuples (of pairs), in the order written.
    EXPOSURE_POLICY: str = "all"
    FLAG_ALLOWLIST: tuple[str, ...] | None = None
    FLAG_DENYLIST: tuple[str, ...] = ()
    FLAG_EXPOSURE_POLICIES: tuple[tuple[str, str], ...] = ()
    FLAG_SAMPLE_RATES: tuple[tuple[str, float], ...] = ()
    LONG_VALUE_LENGTH: int = 256
    SEND_CLIENT_IP: bool = False
    ANONYMOUS_ID_COOKIE: str = "ajs_anonymous_id"
    SET_ANONYMOUS_ID_COOKIE: bool = False
    # The cookie's Domain, as analytics.js sets it (".example.com" on www.example.com);
    # None: the host only, as analytics.js does on localhost and IP addresses.
    ANONYMOUS_ID_COOKIE_DOMAIN: str | None = None
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
    "DELIVERY": valid.delivery_backend,
    "WEBHOOK_TOLERANCE_SECONDS": valid.seconds(valid.positive_int),
    "WEBHOOK_MAX_BODY_BYTES": valid.positive_int,
    "ALLOW_UNSIGNED_WEBHOOKS": valid.boolean,
    "MAX_CHANGES_PER_WEBHOOK": valid.positive_int,
    "RECEIPT_HEADERS": valid.header_names,
    "ALLOWED_ENDPOINT_HOSTS": valid.endpoint_allowlist,
    "BATCH_SIZE": valid.positive_int,
    "MAX_ATTEMPTS": valid.positive_int,
    "MAX_AGE_SECONDS": valid.seconds(valid.positive_int),
    "RETRY_BASE_SECONDS": valid.seconds(valid.positive_number),
    "RETRY_MAX_SECONDS": valid.seconds(valid.positive_number),
    "LEASE_SECONDS": valid.seconds(valid.positive_int),
    "HTTP_TIMEOUT_SECONDS": valid.seconds(valid.positive_number),
    "GZIP": valid.boolean,
    "WORKER_POLL_SECONDS": valid.seconds(valid.positive_number),
    "WORKER_THREADS": valid.positive_int,
    "SHUTDOWN_FLUSH_SECONDS": valid.seconds(valid.non_negative_number),
    "RETENTION_DAYS": valid.int_between(1, valid.MAX_RETENTION_DAYS),
    "SDK_KEY": valid.optional_text,
    "POLLING_MODE": valid.one_of("auto", "lazy", "manual"),
    "POLL_INTERVAL_SECONDS": valid.seconds(valid.positive_int),
    "DATA_GOVERNANCE": valid.one_of("global", "eu_only"),
    "BASE_URL": valid.optional_http_url,
    "FLAG_OVERRIDES": valid.optional_file_path,
    "FLAG_OVERRIDES_BEHAVIOUR": valid.one_of(
        "local_only", "local_over_remote", "remote_over_local"
    ),
    "FORWARD_EVALUATIONS": valid.boolean,
    "USER_FACTORY": valid.dotted_path,
    "DEDUP_WINDOW_SECONDS": valid.seconds(valid.non_negative_int),
    "DEDUP_MAX_KEYS": valid.positive_int,
    "SAMPLE_RATE": valid.fraction,
    "EXPOSURE_POLICY": valid.one_of(*exposure.POLICIES),
    "FLAG_ALLOWLIST": valid.optional_patterns,
    "FLAG_DENYLIST": valid.patterns,
    "FLAG_EXPOSURE_POLICIES": valid.pattern_mapping(
        exposure.policy_problem, "{'checkout*': 'decided', 'internal-*': 'none'}"
    ),
    "FLAG_SAMPLE_RATES": valid.pattern_mapping(exposure.rate_problem, "{'banner*': 0.1}"),
    "LONG_VALUE_LENGTH": valid.positive_int,
    "SEND_CLIENT_IP": valid.boolean,
    "ANONYMOUS_ID_COOKIE": valid.optional_text,
    "SET_ANONYMOUS_ID_COOKIE": valid.boolean,
    "ANONYMOUS_ID_COOKIE_DOMAIN": valid.optional_text,
    "EVALUATION_BUFFER_SIZE": valid.positive_int,
    "EVALUATION_FLUSH_SECONDS": valid.seconds(valid.positive_number),
    "EVALUATION_WRITER": valid.one_of("thread", "manual"),
    "EVENT_LOG_PAGE_SIZE": valid.positive_int,
    "MONITORING_TOKEN": valid.optional_secret,
    "HEALTH_MAX_LAG_SECONDS": valid.seconds(valid.positive_int),
    "METRICS_WINDOW_SECONDS": valid.seconds(valid.positive_int),
    "ALERT_EMAILS": valid.boolean,
    "ALERT_INTERVAL_SECONDS": valid.seconds(valid.positive_int),
    "ALERT_CACHE": valid.text,
    "SITE_URL": valid.optional_http_url,
    "CONFIGCAT_API_BASE_URL": valid.http_url,
    "RECONCILE_INTERVAL_SECONDS": valid.seconds(valid.positive_int),
    "RECONCILE_TOLERANCE_SECONDS": valid.int_between(1, valid.MAX_RECONCILE_TOLERANCE_SECONDS),
    "RECONCILE_WINDOW_SECONDS": valid.int_between(60, valid.MAX_AUDIT_LOG_WINDOW_SECONDS),
    "WEBHOOK_DUPLICATE_SECONDS": valid.seconds(valid.non_negative_int),
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
    for key in ("FLAG_ALLOWLIST", "FLAG_DENYLIST"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    for key in ("FLAG_EXPOSURE_POLICIES", "FLAG_SAMPLE_RATES"):
        if key in values:
            values[key] = as_pairs(values[key])
    for key in ("ALLOWED_ENDPOINT_HOSTS", "RECEIPT_HEADERS"):
        if key in values:
            values[key] = tuple(values[key])
    return AppSettings(**values)


def endpoint_policy() -> EndpointPolicy:
    """Where custom endpoints may point besides public addresses (``ALLOWED_ENDPOINT_HOSTS``)."""
    return EndpointPolicy.from_entries(get_settings().ALLOWED_ENDPOINT_HOSTS)


def forget_settings() -> None:
    """Read ``CONFIGCAT_SEGMENT`` again on next use (``configcat_segment.lifecycle`` calls
    this when it changes)."""
    get_settings.cache_clear()


def exposure_rules(settings: AppSettings) -> exposure.ExposureRules:
    """The exposure rules the settings describe (what the evaluation hook records)."""
    return exposure.ExposureRules.build(
        policy=settings.EXPOSURE_POLICY,
        allowlist=settings.FLAG_ALLOWLIST,
        denylist=settings.FLAG_DENYLIST,
        flag_policies=settings.FLAG_EXPOSURE_POLICIES,
        flag_sample_rates=settings.FLAG_SAMPLE_RATES,
    )
