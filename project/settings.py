"""Settings for the demo project, read from the environment.

| variable | meaning | default |
|---|---|---|
| DATABASE_URL | any dj-database-url URL | a SQLite file ``db.sqlite3`` in the repository root |
| SECRET_KEY | Django's secret key | a development key, only while DEBUG is on |
| DEBUG | true / false | true (this is a demo) |
| ALLOWED_HOSTS | comma-separated host names | localhost, 127.0.0.1, [::1] while DEBUG |
| CONFIGCAT_SDK_KEY | the ConfigCat SDK key | a test key (flags come from the flags file) |
| CONFIGCAT_FLAG_OVERRIDES | a ConfigCat flags file; empty for none | project/flags.json |
| CONFIGCAT_SEGMENT_DELIVERY | thread, worker or celery | thread |
| CONFIGCAT_SEGMENT_MONITORING_TOKEN | token for the health and metrics URLs | none |
| CONFIGCAT_API_BASE_URL | ConfigCat's API, for reconciliation | https://api.configcat.com |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off; the development key is only for DEBUG."
        )
    SECRET_KEY = "django-insecure-configcat-segment-demo-only-never-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "configcat_segment",
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "configcat_segment.middleware.FlagEvaluationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"


def _database() -> dict[str, Any]:
    url = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    except Exception as exc:
        scheme = url.split("://", 1)[0]
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL this project understands "
            f"(scheme {scheme!r}): {exc}"
        ) from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A background writer (the dispatcher) and requests share the file: WAL lets readers
        # and one writer work at once, IMMEDIATE takes the write lock up front so two
        # writers queue on the busy timeout instead of failing with "database is locked".
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            **config.get("OPTIONS", {}),
        }
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "admin:login"

_flag_overrides = env_str("CONFIGCAT_FLAG_OVERRIDES", str(BASE_DIR / "project" / "flags.json"))

CONFIGCAT_SEGMENT: dict[str, Any] = {
    "DELIVERY": env_str("CONFIGCAT_SEGMENT_DELIVERY", "thread"),
    "SDK_KEY": env_str("CONFIGCAT_SDK_KEY") or "configcat-sdk-test-key/0000000000000000000000",
    "FLAG_OVERRIDES": _flag_overrides or None,
    # One tracked user per visitor: an anonymous visitor without analytics.js's cookie
    # gets it from the server, so every request of theirs carries the same anonymous id
    # (and analytics.js, if the page loads it, adopts it as its own).
    "SET_ANONYMOUS_ID_COOKIE": True,
    # The "Local debugger" connection sends to this very server (demo_seed): loopback is
    # refused as an endpoint unless allowed here (docs/security.md).
    "ALLOWED_ENDPOINT_HOSTS": ["127.0.0.0/8", "::1"],
    # Where reconciliation reads ConfigCat's audit log (a proxy, or a local fake).
    "CONFIGCAT_API_BASE_URL": env_str("CONFIGCAT_API_BASE_URL") or "https://api.configcat.com",
    # For uptime checkers and Prometheus: Authorization: Bearer <token> (docs/operations.md).
    "MONITORING_TOKEN": env_str("CONFIGCAT_SEGMENT_MONITORING_TOKEN") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "configcat_segment": {"level": "INFO"},
        # segment-analytics-python logs request bodies, write key included, at DEBUG.
        "segment": {"level": "WARNING"},
    },
}
