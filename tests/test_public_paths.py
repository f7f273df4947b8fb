"""The import paths users write (DESIGN.md's public interface, the README, docs/) keep
working whatever moves inside the package."""

from __future__ import annotations

import importlib
import inspect

import pytest
from django.core.management import get_commands, load_command_class
from django.dispatch import Signal
from django.template import engines
from django.urls import reverse

import configcat_segment


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("configcat_segment.middleware", "FlagEvaluationMiddleware"),
        ("configcat_segment", "get_client"),
        ("configcat_segment", "aget_client"),
        ("configcat_segment", "forward_evaluations"),
        ("configcat_segment", "flush"),
        ("configcat_segment", "without_forwarding"),
        ("configcat_segment", "__version__"),
        ("configcat_segment.users", "default_user_factory"),
        ("configcat_segment.testing", "override_flags"),
        ("configcat_segment.testing", "sent"),
        ("configcat_segment.tasks", "BEAT_SCHEDULE"),
        ("configcat_segment.urls", "urlpatterns"),
        ("configcat_segment.signals", "flag_changed"),
        ("configcat_segment.signals", "event_delivered"),
        ("configcat_segment.signals", "event_dead"),
        ("configcat_segment.signals", "connection_unhealthy"),
        ("configcat_segment.signals", "connection_healthy"),
        ("configcat_segment.delivery.backends.base", "DeliveryBackend"),
        ("configcat_segment.delivery.backends.locmem", "LocmemBackend"),
    ],
)
def test_a_public_name_is_importable(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def test_the_lazy_entry_points_are_the_real_ones():
    from configcat_segment.evaluations.buffer import flush
    from configcat_segment.evaluations.client import aget_client, forward_evaluations, get_client

    assert configcat_segment.get_client is get_client
    assert configcat_segment.aget_client is aget_client
    assert inspect.iscoroutinefunction(configcat_segment.aget_client)
    assert configcat_segment.forward_evaluations is forward_evaluations
    assert configcat_segment.flush is flush
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        configcat_segment.nothing_here  # noqa: B018


def test_the_signals_are_signals():
    from configcat_segment import signals

    for name in ("flag_changed", "event_delivered", "event_dead"):
        assert isinstance(getattr(signals, name), Signal)


def test_the_user_factory_setting_names_an_importable_function():
    from configcat_segment.conf import DEFAULTS
    from configcat_segment.evaluations.users import load_user_factory

    assert DEFAULTS["USER_FACTORY"] == "configcat_segment.evaluations.users.default_user_factory"
    factory = load_user_factory("configcat_segment.users.default_user_factory")
    assert factory is load_user_factory(DEFAULTS["USER_FACTORY"])


@pytest.mark.parametrize(
    "command",
    [
        "configcat_segment_connect",
        "configcat_segment_disconnect",
        "configcat_segment_worker",
        "configcat_segment_status",
        "configcat_segment_reconcile",
        "configcat_segment_requeue",
        "configcat_segment_prune",
    ],
)
def test_a_management_command_is_found(command):
    assert get_commands()[command] == "configcat_segment"
    assert load_command_class("configcat_segment", command).help


def test_the_template_tag_library_loads():
    template = engines["django"].from_string(
        '{% load configcat_segment %}{% flag "isAwesomeFeatureEnabled" False as on %}{{ on }}'
    )
    assert template.render({}) in ("True", "False")


def test_the_urls_are_named_as_documented():
    import uuid

    assert reverse("configcat_segment:webhook", kwargs={"connection_id": uuid.uuid4()})
