import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from configcat_segment import checks


def ids(messages):
    return [m.id for m in messages]


def test_no_messages_for_the_demo_settings():
    assert checks.check_settings() == []
    assert checks.check_rest_framework() == []
    assert checks.check_urls() == []


@override_settings(CONFIGCAT_SEGMENT="thread")
def test_e001_not_a_dict():
    assert ids(checks.check_settings()) == ["configcat_segment.E001"]


@override_settings(CONFIGCAT_SEGMENT={"BATCH_SIZ": 5, "GZIP": "no"})
def test_e002_unknown_and_e003_invalid_keys():
    messages = checks.check_settings()
    assert ids(messages) == ["configcat_segment.E002", "configcat_segment.E003"]
    assert messages[0].hint == 'Did you mean "BATCH_SIZE"?'


def test_e004_rest_framework_missing(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework"]
    [message] = checks.check_rest_framework()
    assert message.id == "configcat_segment.E004"
    assert '"rest_framework"' in message.hint


@pytest.fixture
def segment_logger():
    logger = logging.getLogger("segment")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_w001_segment_logger_at_debug_outside_debug(settings, segment_logger):
    settings.DEBUG = False
    segment_logger.setLevel(logging.DEBUG)
    [message] = checks.check_segment_logger()
    assert message.id == "configcat_segment.W001"
    assert "write key" in message.msg


def test_w001_silent_when_debug_is_on_or_logger_is_quiet(settings, segment_logger):
    settings.DEBUG = True
    segment_logger.setLevel(logging.DEBUG)
    assert checks.check_segment_logger() == []
    settings.DEBUG = False
    segment_logger.setLevel(logging.WARNING)
    assert checks.check_segment_logger() == []


@override_settings(ROOT_URLCONF="tests.urls_without_app")
def test_w004_urls_not_included():
    [message] = checks.check_urls()
    assert message.id == "configcat_segment.W004"
    assert 'include("configcat_segment.urls")' in message.hint


@override_settings(CONFIGCAT_SEGMENT={"DELIVERY": "cron"})
def test_manage_py_check_fails_on_errors():
    with pytest.raises(SystemCheckError, match=r"configcat_segment\.E003"):
        call_command("check")
