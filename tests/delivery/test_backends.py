"""Delivery backends by dotted path: a project's own backend, and what happens when the
setting names something that is not one (manage.py check says so; requests never fail)."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from configcat_segment import checks
from configcat_segment.conf import DELIVERY_ALIASES
from configcat_segment.delivery import backends
from configcat_segment.delivery.backends import get_backend, load_backend_class
from configcat_segment.delivery.backends.base import DeliveryBackend
from configcat_segment.delivery.backends.locmem import LocmemBackend
from configcat_segment.models import Event

from .conftest import enqueue, statuses

HERE = "tests.delivery.test_backends"


class CountingBackend(DeliveryBackend):
    """A project's own backend: counts the commits that wrote events, delivers nothing."""

    installed = 0
    enqueued = 0
    requests = 0

    def install(self):
        type(self).installed += 1

    def on_enqueued(self):
        type(self).enqueued += 1

    def on_request_started(self):
        type(self).requests += 1


class NotABackend:
    def on_enqueued(self):
        raise AssertionError("never called")


@pytest.fixture
def counting():
    CountingBackend.installed = CountingBackend.enqueued = CountingBackend.requests = 0
    return CountingBackend


def delivery(value):
    return override_settings(CONFIGCAT_SEGMENT={"DELIVERY": value})


def test_every_alias_names_a_shipped_backend():
    assert set(backends.ALIASES) == set(DELIVERY_ALIASES)
    for alias in DELIVERY_ALIASES:
        assert issubclass(load_backend_class(alias), DeliveryBackend)
    assert load_backend_class("locmem") is LocmemBackend


@pytest.mark.django_db(transaction=True)
def test_a_dotted_path_names_a_project_s_own_backend(counting, segment_connection, client):
    with delivery(f"{HERE}.CountingBackend"):
        backend = get_backend()
        assert type(backend) is CountingBackend
        assert counting.installed == 1  # when it became the process's backend
        enqueue(segment_connection, range(3))  # one commit
        enqueue(segment_connection, range(3, 5))  # another
        client.get("/no-such-page/")
        assert (counting.enqueued, counting.requests) == (2, 1)
    assert type(get_backend()) is not CountingBackend  # the suite's own again
    assert statuses() == {"pending": 5}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "myproject.no_such_module.Backend",
            "CONFIGCAT_SEGMENT[\"DELIVERY\"] names 'myproject.no_such_module.Backend', which "
            "cannot be imported: ModuleNotFoundError: No module named 'myproject'",
        ),
        (
            f"{HERE}.NoSuchBackend",
            f"CONFIGCAT_SEGMENT[\"DELIVERY\"] names '{HERE}.NoSuchBackend', which cannot be "
            f'imported: ImportError: Module "{HERE}" does not define a "NoSuchBackend" '
            "attribute/class",
        ),
        (
            f"{HERE}.NotABackend",
            f"CONFIGCAT_SEGMENT[\"DELIVERY\"] names '{HERE}.NotABackend', which is not a "
            "delivery backend: a subclass of "
            "configcat_segment.delivery.backends.base.DeliveryBackend.",
        ),
        (
            f"{HERE}.delivery",
            f"CONFIGCAT_SEGMENT[\"DELIVERY\"] names '{HERE}.delivery', which is not a "
            "delivery backend",
        ),
    ],
    ids=["no-module", "no-class", "not-a-backend", "a-function"],
)
def test_e005_names_the_backend_and_why_it_cannot_be_used(value, message):
    with delivery(value):
        [error] = checks.check_delivery_backend()
        assert error.id == "configcat_segment.E005"
        assert error.msg.startswith(message)
        assert "this process delivers nothing" in error.hint
        with pytest.raises(SystemCheckError, match=r"configcat_segment\.E005"):
            call_command("check")


@pytest.mark.django_db(transaction=True)
def test_a_backend_that_cannot_be_loaded_fails_no_request(segment_connection, client):
    with delivery(f"{HERE}.NotABackend"):
        assert type(get_backend()) is DeliveryBackend  # delivers nothing, quietly
        response = client.get("/no-such-page/")
        assert response.status_code == 404
        enqueue(segment_connection, range(2))  # the commit hook runs: nothing happens
    assert statuses() == {"pending": 2}
    assert Event.objects.count() == 2


def test_a_value_that_is_no_path_is_e003():
    with delivery("cron"):
        [error] = checks.check_settings()
        assert error.id == "configcat_segment.E003"
        assert "or the dotted path of a delivery backend class" in error.msg
        assert checks.check_delivery_backend() == []  # E003 says it already


class BrokenBackend(DeliveryBackend):
    def __init__(self):
        raise RuntimeError("a bug in the project's backend")


class FailingBackend(DeliveryBackend):
    def on_request_started(self):
        raise RuntimeError("a bug at every request")


@pytest.mark.django_db
def test_a_backend_s_own_bugs_fail_no_request(client, caplog):
    with delivery(f"{HERE}.BrokenBackend"):
        assert type(get_backend()) is DeliveryBackend
    assert "could not make the delivery backend" in caplog.text
    with delivery(f"{HERE}.FailingBackend"):
        assert client.get("/no-such-page/").status_code == 404
    assert "a bug at every request" in caplog.text
