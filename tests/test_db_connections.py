"""Background loops keep their database connections from one turn to the next
(``database.connections``), dropping only broken or (with ``CONN_MAX_AGE``) old ones."""

import contextlib
import threading
import time

import pytest
from django.db import connection as default_connection
from django.db import connections
from django.db.backends.signals import connection_created

from configcat_segment.database.connections import close_broken_connections
from configcat_segment.delivery.runner import Runner

pytestmark = pytest.mark.django_db(transaction=True)


def in_a_thread(work):
    """Run ``work`` in a fresh thread (its own connections), closing them after."""
    result = []

    def run():
        try:
            result.append(work())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result[0]


@contextlib.contextmanager
def conn_max_age(seconds):
    settings_dict = default_connection.settings_dict
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = seconds
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"] = before


def query():
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_a_working_connection_is_kept_whatever_conn_max_age_says():
    def turns():
        with conn_max_age(0):  # Django's default: closed at each request's end
            query()
            first = default_connection.connection
            close_broken_connections()
            query()
            return first, default_connection.connection

    first, second = in_a_thread(turns)
    assert first is not None
    assert second is first


def test_a_connection_that_had_errors_and_no_longer_works_is_closed():
    def turns():
        query()
        default_connection.errors_occurred = True
        default_connection.is_usable = lambda: False  # the server went away
        close_broken_connections()
        return default_connection.connection

    assert in_a_thread(turns) is None


def test_with_conn_max_age_0_a_connection_dropped_while_the_loop_slept_is_closed():
    """No error on it yet (a server restart, a pooler's idle timeout): checked each turn,
    so the turn reconnects instead of failing."""

    def turns():
        with conn_max_age(0):
            query()
            default_connection.is_usable = lambda: False  # dropped; nothing raised yet
            close_broken_connections()
            return default_connection.connection

    assert in_a_thread(turns) is None


def test_a_connection_older_than_a_conn_max_age_is_closed():
    def turns():
        with conn_max_age(60):
            query()
            default_connection.close_at = time.monotonic() - 1  # opened over a minute ago
            close_broken_connections()
            return default_connection.connection

    assert in_a_thread(turns) is None


def test_an_idle_runner_polls_on_one_connection():
    """It used to open (and, on PostgreSQL, start a server process for) one per poll."""
    opened = []

    def count(sender, connection, **kwargs):
        opened.append(threading.current_thread().name)

    runner = Runner(poll_seconds=0.01, periodic=False)
    polls = []
    due_connections = runner.dispatcher.due_connections

    def counting_polls():
        polls.append(1)
        if len(polls) >= 5:
            runner.stop()
        return due_connections()

    runner.dispatcher.due_connections = counting_polls
    connection_created.connect(count)
    try:
        thread = threading.Thread(target=runner.run, name="runner")
        thread.start()
        thread.join(30)
    finally:
        connection_created.disconnect(count)
    assert len(polls) == 5
    assert opened == ["runner"]
