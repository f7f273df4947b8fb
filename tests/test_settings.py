import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from configcat_segment.conf import DEFAULTS, KNOWN_KEYS, find_problems, get_settings


def test_defaults_apply_when_the_dict_is_absent():
    with override_settings(CONFIGCAT_SEGMENT=None):
        s = get_settings()
    assert s.DELIVERY == "thread"
    assert s.WEBHOOK_TOLERANCE_SECONDS == 300
    assert s.DEDUP_WINDOW_SECONDS == 300
    assert s.LONG_VALUE_LENGTH == 256


def test_user_values_override_defaults_and_follow_override_settings():
    with override_settings(CONFIGCAT_SEGMENT={"DELIVERY": "worker", "BATCH_SIZE": 7}):
        assert get_settings().DELIVERY == "worker"
        assert get_settings().BATCH_SIZE == 7
        assert get_settings().MAX_ATTEMPTS == DEFAULTS["MAX_ATTEMPTS"]
    with override_settings(CONFIGCAT_SEGMENT={}):
        assert get_settings().DELIVERY == "thread"


def test_unknown_key_is_reported_with_a_suggestion():
    [(kind, message, hint)] = find_problems({"DELIVERI": "thread"})
    assert kind == "unknown"
    assert 'CONFIGCAT_SEGMENT["DELIVERI"]' in message
    assert hint == 'Did you mean "DELIVERY"?'


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("DELIVERY", "cron", "must be one of 'thread', 'worker', 'celery'"),
        ("WEBHOOK_TOLERANCE_SECONDS", 0, "at least 1"),
        ("WEBHOOK_TOLERANCE_SECONDS", True, "at least 1"),
        ("DEDUP_WINDOW_SECONDS", -1, "at least 0"),
        ("SAMPLE_RATE", 1.5, "from 0 to 1"),
        ("GZIP", "yes", "True or False"),
        ("USER_FACTORY", "nodots", "dotted import path"),
        ("BASE_URL", "ftp://x", "http:// or https://"),
        ("SDK_KEY", "  ", "non-empty string"),
        ("RETENTION_DAYS", 0, "whole number from 1 to 36500"),
        ("RETENTION_DAYS", 99_999_999_999, "whole number from 1 to 36500"),
        ("WORKER_POLL_SECONDS", float("nan"), "number greater than 0"),
        ("SHUTDOWN_FLUSH_SECONDS", float("inf"), "number of at least 0"),
        # Durations that would overflow the date arithmetic of a retry or a lease.
        ("MAX_AGE_SECONDS", 10**12, "at most 315,360,000 seconds (ten years)"),
        ("RETRY_MAX_SECONDS", 1e300, "at most 315,360,000 seconds (ten years)"),
        ("LEASE_SECONDS", 315_360_001, "at most 315,360,000 seconds (ten years)"),
        ("LEASE_SECONDS", -5, "at least 1"),
    ],
)
def test_invalid_values_name_the_key_and_what_is_expected(key, value, expected):
    [(kind, message, _hint)] = find_problems({key: value})
    assert kind == "invalid"
    assert f'CONFIGCAT_SEGMENT["{key}"]' in message
    assert expected in message
    assert repr(value) in message


def test_not_a_dict():
    [(kind, message, _)] = find_problems(["DELIVERY"])
    assert kind == "type"
    assert "must be a dict, not list" in message


def test_invalid_settings_raise_improperly_configured_when_read():
    with (
        override_settings(CONFIGCAT_SEGMENT={"BATCH_SIZE": "many"}),
        pytest.raises(ImproperlyConfigured, match=r'CONFIGCAT_SEGMENT\["BATCH_SIZE"\]'),
    ):
        get_settings()


def test_every_setting_has_a_validator_and_is_documented():
    from pathlib import Path

    from configcat_segment.conf import VALIDATORS

    assert set(VALIDATORS) == set(KNOWN_KEYS)
    docs = (Path(__file__).parent.parent / "docs" / "settings.md").read_text()
    missing = [key for key in KNOWN_KEYS if f"`{key}`" not in docs]
    assert not missing, f"not documented in docs/settings.md: {missing}"
    for key, default in DEFAULTS.items():
        assert VALIDATORS[key](default) is None, f"the default of {key} fails its validator"
