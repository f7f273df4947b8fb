"""Fixtures for evaluation forwarding: the real ConfigCat SDK on a local config_v6 file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.user import User
from django.conf import settings
from django.db import OperationalError, connection
from django.test import override_settings

from configcat_segment.constants import FLAG_EVALUATED
from configcat_segment.evaluations import client as client_module
from configcat_segment.evaluations.buffer import get_writer
from configcat_segment.evaluations.hook import recorder
from configcat_segment.models import Event

DATA = Path(__file__).parent / "data"
CONFIG_V6 = DATA / "config_v6.json"

# Flags in config_v6.json and the users whose evaluations differ.
FLAGS = ["isPremium", "checkoutVariant", "maxItems", "betaRollout", "bannerJson", "discountRate"]
PRO_USER = User("u-pro", email="ada@example.com", country="HU", custom={"plan": "pro"})
PLAIN_USER = User("u-plain", email="bob@elsewhere.org", country="US")


def evaluation_settings(**overrides: Any) -> dict[str, Any]:
    return {
        **settings.CONFIGCAT_SEGMENT,
        "SDK_KEY": None,
        "FLAG_OVERRIDES": str(CONFIG_V6),
        "FLAG_OVERRIDES_BEHAVIOUR": "local_only",
        **overrides,
    }


@pytest.fixture(autouse=True)
def clean_slate() -> Iterator[None]:
    """Every test starts with no client, an empty buffer and nothing remembered."""
    with override_settings(CONFIGCAT_SEGMENT=evaluation_settings()):
        yield
    client_module.close()
    get_writer().discard()
    recorder.reset()


@pytest.fixture
def configure():
    """Change evaluation settings for the rest of the test: ``configure(SAMPLE_RATE=0.5)``."""
    active: list[Any] = []

    def apply(**overrides: Any) -> None:
        override = override_settings(CONFIGCAT_SEGMENT=evaluation_settings(**overrides))
        override.enable()
        active.append(override)

    yield apply
    for override in reversed(active):
        override.disable()


@pytest.fixture
def bare_client() -> Iterator[Any]:
    """A second, unforwarded client on the same file: what the SDK computes by itself."""
    import configcatclient

    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(CONFIG_V6), OverrideBehaviour.LocalOnly)
    )
    client = configcatclient.get("tests-bare-client/no-forwarding", options)
    yield client
    client.close()


def tracks(**filters: Any) -> list[dict[str, Any]]:
    rows = Event.objects.filter(type="track", event_name=FLAG_EVALUATED, **filters)
    return [event.payload for event in rows.order_by("id")]


def identifies(**filters: Any) -> list[dict[str, Any]]:
    return [e.payload for e in Event.objects.filter(type="identify", **filters).order_by("id")]


@contextlib.contextmanager
def database_away() -> Iterator[None]:
    """The database refuses every statement on this thread, as when it is down."""

    def refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        raise OperationalError("the database is away")

    with connection.execute_wrapper(refuse):
        yield
