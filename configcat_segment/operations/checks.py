"""System checks for the monitoring endpoints and alerts (ids in ``docs/settings.md``)."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from ..conf import get_settings, setting_path

LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def check_metrics(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        reverse("configcat_segment_metrics:metrics")
    except NoReverseMatch:
        return []
    if importlib.util.find_spec("prometheus_client") is not None:
        return []
    return [
        checks.Error(
            "The configcat_segment metrics URL is installed, but prometheus-client is not.",
            hint="pip install configcat-segment[prometheus]",
            id="configcat_segment.E015",
        )
    ]


def check_alerts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        app = get_settings()
    except ImproperlyConfigured:  # E003 reports it
        return []
    if not app.ALERT_EMAILS:
        return []
    found: list[checks.CheckMessage] = []
    if not settings.ADMINS:
        found.append(
            checks.Warning(
                f"{setting_path('ALERT_EMAILS')} is on, but ADMINS is empty: alerts go nowhere.",
                hint="List who should get them in ADMINS (and set up EMAIL_* to send mail).",
                id="configcat_segment.W015",
            )
        )
    cache = settings.CACHES.get(app.ALERT_CACHE)
    if cache is None:
        found.append(
            checks.Error(
                f"{setting_path('ALERT_CACHE')} is {app.ALERT_CACHE!r}, which is not in CACHES.",
                hint="Name one of CACHES, or leave the key out to use 'default'.",
                id="configcat_segment.E016",
            )
        )
    elif cache.get("BACKEND") in LOCAL_CACHES:
        found.append(
            checks.Warning(
                f"Alerts are throttled through the {app.ALERT_CACHE!r} cache, which is not "
                "shared between processes (or keeps nothing): each process may send its own "
                "alert mail per interval.",
                hint=f"Point {setting_path('ALERT_CACHE')} at a shared cache (Redis, "
                "Memcached or the database cache).",
                id="configcat_segment.W016",
            )
        )
    return found


def register() -> None:
    checks.register(check_metrics, checks.Tags.urls)
    checks.register(check_alerts)
