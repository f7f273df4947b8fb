"""Misconfiguration is reported by ``manage.py check``, and breaks no request that does not
need the broken part."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

import configcat_segment
from configcat_segment import checks
from configcat_segment.conf import get_settings

from .conftest import CONFIG_V6, PRO_USER, tracks

ROOT = Path(__file__).resolve().parents[2]
VALID_SDK_KEY = "PKDVCLf-Hq-h-kCzMp-L7Q/psuH7BGHoUmdONrzzUOY7A"
VALID_V2_SDK_KEY = "configcat-sdk-1/PKDVCLf-Hq-h-kCzMp-L7Q/HhOWfwVtZ0mb30i9wi17GQ"


def messages(check_id: str) -> list[str]:
    return [message.msg for message in run_checks() if message.id == check_id]


# -- an invalid CONFIGCAT_SEGMENT: reported, never a crash -----------------------------------


def test_check_reports_an_invalid_setting_instead_of_crashing():
    """A fresh process, so nothing of the app is imported yet: Django's own checks import
    the middleware, which imports the writer and the recorder."""
    code = "\n".join(
        [
            "import tests.settings as test_settings",
            "test_settings.CONFIGCAT_SEGMENT = {",
            "    **test_settings.CONFIGCAT_SEGMENT, 'DEDUP_MAX_KEYS': 0}",
            "import django",
            "django.setup()",
            "from django.core.management import call_command",
            "from django.core.management.base import SystemCheckError",
            "try:",
            "    call_command('check')",
            "except SystemCheckError as exc:",
            "    print(exc)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "configcat_segment.E003" in result.stdout
    assert 'CONFIGCAT_SEGMENT["DEDUP_MAX_KEYS"] must be a whole number' in result.stdout


def test_the_writer_and_the_recorder_follow_setting_changes(segment_connection, configure):
    from configcat_segment.evaluations.buffer import get_writer
    from configcat_segment.evaluations.hook import recorder

    configcat_segment.get_client().get_value("maxItems", 0, PRO_USER)  # settings read
    configure(EVALUATION_BUFFER_SIZE=1, DEDUP_WINDOW_SECONDS=0)
    get_writer().discard()
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, PRO_USER)
    client.get_value("isPremium", False, PRO_USER)
    assert len(get_writer()) == 1
    assert get_writer().dropped == 1
    assert recorder.settings.DEDUP_WINDOW_SECONDS == 0


# -- USER_FACTORY: checked (E006), resolved only when a request evaluates ---------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("tests.nope.make", "cannot be imported"),
        ("tests.evaluations.factories.NOT_CALLABLE", "not a function"),
        ("tests.evaluations.factories.missing", "cannot be imported"),
        ("tests.evaluations.factory_module_with_a_bug.make", "RuntimeError: a bug"),
    ],
)
def test_e006_a_user_factory_that_cannot_be_used(configure, path, problem):
    configure(USER_FACTORY=path)
    (message,) = messages("configcat_segment.E006")
    assert message.startswith(f"CONFIGCAT_SEGMENT[\"USER_FACTORY\"] is '{path}'")
    assert problem in message


def test_e006_silent_for_a_working_factory(configure):
    assert messages("configcat_segment.E006") == []
    configure(USER_FACTORY="tests.evaluations.factories.country_user")
    assert messages("configcat_segment.E006") == []


@pytest.mark.django_db
@pytest.mark.urls("tests.evaluations.urls")
def test_a_wrong_user_factory_fails_only_requests_that_evaluate_with_a_clear_error(
    segment_connection, configure
):
    configure(USER_FACTORY="tests.nope.make")
    assert Client().get("/nothing/").status_code == 200
    with pytest.raises(ImproperlyConfigured, match=r'CONFIGCAT_SEGMENT\["USER_FACTORY"\]'):
        Client().get("/flags/")
    # Evaluating without the request's user still works.
    assert Client().get("/without-user/").status_code == 200
    configcat_segment.flush()
    assert [t["properties"]["feature_flag_key"] for t in tracks()] == ["discountRate"]


# -- the client's options: checked (E007) -----------------------------------------------------


def test_e007_a_flags_file_that_does_not_exist(configure, tmp_path):
    configure(FLAG_OVERRIDES=str(tmp_path / "nope.json"))
    (message,) = messages("configcat_segment.E007")
    assert 'CONFIGCAT_SEGMENT["FLAG_OVERRIDES"] names a flags file that does not exist' in message


def test_e007_flags_over_remote_ones_without_an_sdk_key(configure):
    configure(SDK_KEY=None, FLAG_OVERRIDES_BEHAVIOUR="local_over_remote")
    (message,) = messages("configcat_segment.E007")
    assert 'CONFIGCAT_SEGMENT["SDK_KEY"] is not set' in message


@pytest.mark.parametrize("key", ["my-sdk-key", "PKDVCLf-Hq-h-kCzMp-L7Q/short", " " + VALID_SDK_KEY])
def test_e007_an_sdk_key_that_is_not_one_without_showing_it(configure, key):
    configure(FLAG_OVERRIDES=None, SDK_KEY=key)
    (message,) = messages("configcat_segment.E007")
    assert 'CONFIGCAT_SEGMENT["SDK_KEY"] does not look like a ConfigCat SDK key' in message
    assert key.strip() not in message
    with pytest.raises(ImproperlyConfigured, match="does not look like") as raised:
        configcat_segment.get_client()
    assert key.strip() not in str(raised.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"FLAG_OVERRIDES": None, "SDK_KEY": VALID_SDK_KEY},
        {
            "FLAG_OVERRIDES": None,
            "SDK_KEY": "configcat-sdk-1/PKDVCLf-Hq-h-kCzMp-L7Q/HhOWfwVtZ0mb30i9wi17GQ",
        },
        {
            "FLAG_OVERRIDES": None,
            "SDK_KEY": "configcat-proxy/my-proxy-key",
            "BASE_URL": "https://configcat-proxy.example.com",
        },
        {"FLAG_OVERRIDES": str(CONFIG_V6), "SDK_KEY": "anything: local flags only"},
        {"FLAG_OVERRIDES": "/nope.json", "SDK_KEY": "not-a-key", "FORWARD_EVALUATIONS": False},
        # A project that only forwards flag changes configures no client at all.
        {"FLAG_OVERRIDES": None, "SDK_KEY": None},
    ],
)
def test_e007_silent_when_the_client_can_be_made(configure, overrides):
    configure(**overrides)
    assert messages("configcat_segment.E007") == []


def test_e006_and_e007_leave_an_invalid_setting_to_e003():
    with override_settings(CONFIGCAT_SEGMENT={"USER_FACTORY": 42, "SDK_KEY": 42}):
        assert checks.check_user_factory() == []
        assert checks.check_client_options() == []


# -- FLAG_OVERRIDES: a pathlib.Path, as the docs show -----------------------------------------


@pytest.mark.django_db
def test_flag_overrides_accepts_a_path(segment_connection, configure):
    configure(FLAG_OVERRIDES=CONFIG_V6)
    assert get_settings().FLAG_OVERRIDES == str(CONFIG_V6)
    assert messages("configcat_segment.E003") == []
    assert configcat_segment.get_client().get_value("maxItems", 0, PRO_USER) == 50


class BytesPath(os.PathLike[bytes]):
    def __fspath__(self) -> bytes:
        return b"/tmp/flags.json"


@pytest.mark.parametrize("value", [42, b"/tmp/flags.json", BytesPath(), "", ["flags.json"]])
def test_flag_overrides_rejects_what_is_not_a_path(value):
    with override_settings(CONFIGCAT_SEGMENT={"FLAG_OVERRIDES": value}):
        (message,) = [m.msg for m in checks.check_settings()]
    assert message.startswith('CONFIGCAT_SEGMENT["FLAG_OVERRIDES"] must be a file path')
