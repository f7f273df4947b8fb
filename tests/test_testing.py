"""configcat_segment.testing: how override_flags builds on the settings' flags, and what
the helpers refuse. (tests/test_users_suite.py shows them used as a project would.)"""

from pathlib import Path

import pytest
from configcatclient.user import User
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import configcat_segment
from configcat_segment import testing
from configcat_segment.conf import get_settings
from configcat_segment.constants import FLAG_EVALUATED
from configcat_segment.models import Event

CONFIG_V6 = Path(__file__).parent / "evaluations" / "data" / "config_v6.json"
PRO_USER = User("u-pro", email="ada@example.com", country="HU", custom={"plan": "pro"})


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Evaluations left in the buffer would be written at exit, when the worker backend of
    the rest of the suite is back (a project keeps locmem for its whole test run)."""
    yield
    testing.clear()


def locmem(**overrides):
    return override_settings(
        CONFIGCAT_SEGMENT={**settings.CONFIGCAT_SEGMENT, "DELIVERY": "locmem", **overrides}
    )


def value(key, default, user=None):
    return configcat_segment.get_client().get_value(key, default, user)


def test_a_config_v6_file_keeps_its_rules_for_the_flags_not_overridden():
    with locmem(SDK_KEY=None, FLAG_OVERRIDES=str(CONFIG_V6)):
        assert value("maxItems", 0, PRO_USER) == 50  # a targeting rule of the file
        with testing.override_flags(maxItems=7):
            assert value("maxItems", 0, PRO_USER) == 7
            assert value("maxItems", 0) == 7
            assert value("isPremium", False, PRO_USER) is True  # still the file's rule
            assert get_settings().FLAG_OVERRIDES_BEHAVIOUR == "local_only"
        assert value("maxItems", 0, PRO_USER) == 50


def test_without_a_flags_file_only_the_overridden_flags_exist():
    with locmem(SDK_KEY=None, FLAG_OVERRIDES=None):
        with pytest.raises(ImproperlyConfigured, match="SDK_KEY"):
            configcat_segment.get_client()  # nothing to evaluate with, as before
        with testing.override_flags(newFlag="on"):
            assert value("newFlag", "off") == "on"
            assert value("anotherFlag", "default") == "default"


def test_with_an_sdk_key_the_overrides_win_over_configcat():
    # Manual polling: nothing is fetched from ConfigCat in this test.
    with locmem(FLAG_OVERRIDES=None, POLLING_MODE="manual"), testing.override_flags(darkMode=True):
        assert get_settings().FLAG_OVERRIDES_BEHAVIOUR == "local_over_remote"
        assert value("darkMode", False) is True


def test_the_flags_file_of_an_override_is_removed_when_it_ends():
    with locmem(), testing.override_flags(darkMode=True):
        flags_file = Path(get_settings().FLAG_OVERRIDES)
        assert flags_file.is_file()
    assert not flags_file.exists()
    assert get_settings().FLAG_OVERRIDES == settings.CONFIGCAT_SEGMENT["FLAG_OVERRIDES"]


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"darkMode": None}, "the value of 'darkMode' must be a bool, int, float or str"),
        ({"darkMode": [1]}, "not list"),
        ({"": True}, "a flag key must be a non-empty string"),
    ],
)
def test_values_configcat_cannot_hold_are_refused_at_once(values, error):
    with pytest.raises(TypeError, match=error):
        testing.override_flags(values)


def test_reading_what_was_sent_needs_the_locmem_backend(db):
    with pytest.raises(ImproperlyConfigured, match='DELIVERY"] = "locmem"'):
        testing.sent()


@pytest.mark.django_db
def test_clear_forgets_what_was_sent_buffered_and_seen(segment_connection):
    with locmem(), testing.override_flags(darkMode=True):
        value("darkMode", False, PRO_USER)
        [track] = testing.sent_tracks(FLAG_EVALUATED)
        assert track["properties"]["feature_flag_key"] == "darkMode"
        testing.clear()
        assert testing.sent() == []
        value("darkMode", False, User("u-other"))
        testing.clear()  # buffered, not written yet: forgotten too
        assert testing.sent() == []
        # The next test: its database has no trace of this one (TestCase rolls it back),
        # and the repeat within the dedup window is not skipped as one.
        Event.objects.all().delete()
        testing.clear()
        value("darkMode", False, PRO_USER)
        assert [t["userId"] for t in testing.sent_tracks(FLAG_EVALUATED)] == ["u-pro"]


@pytest.mark.django_db
def test_the_locmem_backend_writes_no_evaluation_in_the_background(segment_connection):
    from configcat_segment.evaluations.buffer import get_writer

    with locmem(EVALUATION_WRITER="thread"):
        value("darkMode", False, PRO_USER)
        assert get_writer()._thread is None  # they wait for sent() (or flush())
        assert len(get_writer()) == 1
        assert len(testing.sent_tracks(FLAG_EVALUATED)) == 1
    testing.clear()
