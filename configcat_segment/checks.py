"""System checks: misconfiguration is reported by ``manage.py check``, not in production.

Those of evaluation forwarding live in :mod:`.evaluations.checks`, those of monitoring in
:mod:`.operations.checks`; :func:`register` registers this module's and the evaluation ones.

Ids are stable and documented in ``docs/settings.md``.
"""

from __future__ import annotations

import importlib.util
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from .conf import SETTING_NAME, find_problems, get_settings, setting_path
from .evaluations.checks import (
    MIDDLEWARE_PATH,
    check_client_options,
    check_evaluation_middleware,
    check_exposure_settings,
    check_user_factory,
)

__all__ = [
    "MIDDLEWARE_PATH",
    "check_api_base_url",
    "check_client_options",
    "check_delivery_backend",
    "check_evaluation_middleware",
    "check_exposure_settings",
    "check_lease",
    "check_rest_framework",
    "check_segment_logger",
    "check_settings",
    "check_unsigned_webhooks",
    "check_urls",
    "check_user_factory",
    "register",
]

_KIND_IDS = {
    "type": "configcat_segment.E001",
    "unknown": "configcat_segment.E002",
    "invalid": "configcat_segment.E003",
}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        return []
    return [
        checks.Error(message, hint=hint, id=_KIND_IDS[kind])
        for kind, message, hint in find_problems(raw)
    ]


def check_rest_framework(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if apps.is_installed("rest_framework"):
        return []
    return [
        checks.Error(
            "configcat_segment needs Django REST framework, which is not in INSTALLED_APPS.",
            hint='Add "rest_framework" to INSTALLED_APPS.',
            id="configcat_segment.E004",
        )
    ]


def check_segment_logger(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG or not logging.getLogger("segment").isEnabledFor(logging.DEBUG):
        return []
    return [
        checks.Warning(
            "The 'segment' logger records DEBUG messages while DEBUG is off. "
            "segment-analytics-python logs every request body at DEBUG, write key included.",
            hint="Set the 'segment' logger (or the root logger) to INFO or higher in LOGGING.",
            id="configcat_segment.W001",
        )
    ]


def check_unsigned_webhooks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        allowed = get_settings().ALLOW_UNSIGNED_WEBHOOKS
    except ImproperlyConfigured:  # E001 / E003 report it
        return []
    if not allowed:
        return []
    return [
        checks.Warning(
            f"{setting_path('ALLOW_UNSIGNED_WEBHOOKS')} is on: anyone who knows the webhook URL "
            "of a connection without a signing key can send it flag changes.",
            hint="Copy ConfigCat's webhook signing key into every Segment connection, then "
            "turn the setting off.",
            id="configcat_segment.W002",
        )
    ]


def check_urls(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        reverse("configcat_segment:webhook", kwargs={"connection_id": uuid.UUID(int=0)})
    except NoReverseMatch:
        return [
            checks.Warning(
                "configcat_segment's URLs are not in the URLconf, so ConfigCat cannot reach "
                "its webhooks and the event log is not served.",
                hint='Add path("configcat-segment/", include("configcat_segment.urls")) '
                "to your urlpatterns.",
                id="configcat_segment.W004",
            )
        ]
    return []


def check_delivery_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E005: ``DELIVERY`` names a backend this process cannot load."""
    from .delivery.backends import load_backend_class

    try:
        delivery = get_settings().DELIVERY
    except ImproperlyConfigured:  # E001 / E003 report it
        return []
    if delivery == "celery" and importlib.util.find_spec("celery") is None:
        return [
            checks.Error(
                f'{SETTING_NAME}["DELIVERY"] is "celery", but Celery is not installed.',
                hint="pip install configcat-segment[celery], or choose the thread or worker "
                "backend.",
                id="configcat_segment.E005",
            )
        ]
    try:
        load_backend_class(delivery)
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint='Use "thread", "worker", "celery" or "locmem", or the dotted path of a '
                "subclass of configcat_segment.delivery.backends.base.DeliveryBackend. "
                "Until it is fixed, this process delivers nothing.",
                id="configcat_segment.E005",
            )
        ]
    return []


def check_lease(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        settings = get_settings()
    except ImproperlyConfigured:  # E003 reports it
        return []
    if settings.LEASE_SECONDS > settings.HTTP_TIMEOUT_SECONDS + 1:
        return []
    return [
        checks.Warning(
            f"LEASE_SECONDS ({settings.LEASE_SECONDS}) is not longer than "
            f"HTTP_TIMEOUT_SECONDS ({settings.HTTP_TIMEOUT_SECONDS:g}) plus a second: a "
            "request to Segment may outlast the claim on its events, and another worker "
            "send them again.",
            hint="Make LEASE_SECONDS several times HTTP_TIMEOUT_SECONDS (defaults: 120 and 15).",
            id="configcat_segment.W005",
        )
    ]


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_api_base_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        base_url = get_settings().CONFIGCAT_API_BASE_URL
    except ImproperlyConfigured:  # E003 reports it
        return []
    parts = urlsplit(base_url)
    if parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS:
        return []
    return [
        checks.Warning(
            f"{setting_path('CONFIGCAT_API_BASE_URL')} is not an https:// URL: the ConfigCat "
            "Public API credential of every connection that reconciles would cross the "
            "network in clear text.",
            hint="Use https://api.configcat.com (the default), or an https:// proxy.",
            id="configcat_segment.W014",
        )
    ]


def register() -> None:
    checks.register(check_settings)
    checks.register(check_rest_framework)
    checks.register(check_segment_logger)
    checks.register(check_urls, checks.Tags.urls)
    checks.register(check_evaluation_middleware)
    checks.register(check_user_factory)
    checks.register(check_client_options)
    checks.register(check_unsigned_webhooks, checks.Tags.security)
    checks.register(check_delivery_backend)
    checks.register(check_lease)
    checks.register(check_exposure_settings)
    checks.register(check_api_base_url, checks.Tags.security)
