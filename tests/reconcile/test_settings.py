"""The reconciliation settings: validated, documented, and checked by manage.py check."""

from __future__ import annotations

import pytest
from django.test import override_settings

from configcat_segment import checks
from configcat_segment.conf import find_problems, get_settings


def test_defaults():
    settings = get_settings()
    assert settings.CONFIGCAT_API_BASE_URL == "https://api.configcat.com"
    assert (settings.RECONCILE_INTERVAL_SECONDS, settings.RECONCILE_TOLERANCE_SECONDS) == (600, 600)
    assert settings.RECONCILE_WINDOW_SECONDS == 86400
    assert settings.WEBHOOK_DUPLICATE_SECONDS == 600


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("CONFIGCAT_API_BASE_URL", "api.configcat.com", "http:// or https:// URL"),
        ("CONFIGCAT_API_BASE_URL", "https://user:pw@api.configcat.com", "without credentials"),
        ("CONFIGCAT_API_BASE_URL", None, "http:// or https:// URL"),
        ("RECONCILE_INTERVAL_SECONDS", 0, "at least 1"),
        ("RECONCILE_TOLERANCE_SECONDS", 86401, "from 1 to 86400"),
        ("RECONCILE_WINDOW_SECONDS", 31 * 86400, "from 60 to 2592000"),
        ("WEBHOOK_DUPLICATE_SECONDS", -1, "at least 0"),
    ],
)
def test_bad_values_name_the_key(key, value, problem):
    ((kind, message, _),) = find_problems({key: value})
    assert kind == "invalid"
    assert f'CONFIGCAT_SEGMENT["{key}"]' in message
    assert problem in message


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://api.configcat.com", False),
        ("http://127.0.0.1:8123", False),
        ("http://localhost:8123/", False),
        ("http://configcat-proxy.internal", True),
    ],
)
def test_w014_clear_text_api_url(url, warned):
    with override_settings(CONFIGCAT_SEGMENT={"CONFIGCAT_API_BASE_URL": url}):
        messages = checks.check_api_base_url()
    assert [m.id for m in messages] == (["configcat_segment.W014"] if warned else [])
