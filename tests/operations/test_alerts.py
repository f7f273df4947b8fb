"""Alert mails to ADMINS: a connection turns unhealthy, events go dead; one per interval."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core import checks
from django.core.cache import caches

from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.operations import alerts, probe
from configcat_segment.operations.checks import check_alerts
from configcat_segment.signals import connection_healthy, connection_unhealthy

from ..conftest import IN_CI, WRITE_KEY
from ..delivery.conftest import enqueue, message_id
from ..segment_server import refused_url

pytestmark = pytest.mark.django_db

ADMINS = [("Ops", "ops@example.com")]


@pytest.fixture(autouse=True)
def _fresh_cache():
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def alerting(settings, delivery_settings):
    settings.ADMINS = ADMINS
    delivery_settings(ALERT_EMAILS=True, SITE_URL="https://shop.example.com/")


@pytest.fixture
def dispatcher(clock):
    return Dispatcher(clock=clock, random=lambda: 0.0)


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run ``action()`` and what it left for after the commit (signals, hence alerts)."""

    def run(action):
        with django_capture_on_commit_callbacks(execute=True):
            return action()

    return run


def refuse_then_deliver(connection, server, dispatcher, clock, commit):
    """One unhealthy episode: Segment refuses the key, then takes it again."""
    server.write_keys.discard(connection.write_key)
    commit(lambda: dispatcher.deliver(connection.pk))
    connection.refresh_from_db()
    assert not connection.is_healthy
    server.write_keys.add(connection.write_key)
    clock.move_to(connection.delivery_paused_until)
    commit(lambda: dispatcher.deliver(connection.pk))
    connection.refresh_from_db()
    assert connection.is_healthy


def test_an_unhealthy_connection_mails_the_admins_once_per_interval(
    alerting, segment_server, connect_to, dispatcher, clock, commit, mailoutbox
):
    connection = connect_to(segment_server, name="Production", write_key=WRITE_KEY)
    enqueue(connection, range(3))
    refuse_then_deliver(connection, segment_server, dispatcher, clock, commit)
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com"]
    assert mail.subject.endswith("configcat_segment: “Production” is unhealthy")
    assert "Segment's answer: Segment answered 401 unauthorized: Invalid write key" in mail.body
    link = f"https://shop.example.com/configcat-segment/events/?connection={connection.pk}"
    assert f"Event log: {link}&status=failed" in mail.body
    assert "held back for 60 minutes" in mail.body
    assert WRITE_KEY not in mail.body

    enqueue(connection, range(3, 6))
    refuse_then_deliver(connection, segment_server, dispatcher, clock, commit)
    assert len(mailoutbox) == 1  # within the interval: throttled

    caches["default"].delete(alerts.cache_key(connection.pk))  # as when the interval is over
    enqueue(connection, range(6, 9))
    refuse_then_deliver(connection, segment_server, dispatcher, clock, commit)
    assert len(mailoutbox) == 2


def test_dead_events_mail_the_admins(
    alerting, segment_server, connect_to, dispatcher, commit, mailoutbox
):
    connection = connect_to(segment_server, name="Production")
    enqueue(connection, range(4))
    segment_server.poison(message_id(connection, 2), "Invalid timestamp")
    report = commit(lambda: dispatcher.deliver(connection.pk))
    assert (report.delivered, report.dead) == (3, 1)
    [mail] = mailoutbox
    assert mail.subject.endswith("1 event is dead on “Production”")
    assert "Last error: Segment answered 400 invalid_request: Invalid timestamp" in mail.body
    assert f"?connection={connection.pk}&status=dead" in mail.body
    assert "retry them from the event log" in mail.body


def test_one_interval_per_connection_across_kinds_and_connections(
    alerting, segment_server, connect_to, dispatcher, commit, mailoutbox
):
    first = connect_to(segment_server, name="First")
    second = connect_to(segment_server, name="Second")
    for connection in (first, second):
        enqueue(connection, range(3))
        segment_server.poison(message_id(connection, 1))
        commit(lambda c=connection: dispatcher.deliver(c.pk))
    assert sorted(m.subject.split("on ")[-1] for m in mailoutbox) == ["“First”", "“Second”"]
    # The first connection, unhealthy now: it had its mail for this interval.
    segment_server.write_keys.discard(first.write_key)
    enqueue(first, range(10, 12))
    commit(lambda: dispatcher.deliver(first.pk))
    first.refresh_from_db()
    assert not first.is_healthy
    assert len(mailoutbox) == 2


def test_no_mail_unless_the_setting_is_on(
    settings, segment_server, connect_to, dispatcher, commit, mailoutbox
):
    settings.ADMINS = ADMINS
    connection = connect_to(segment_server, accepted=False)
    enqueue(connection, range(2))
    commit(lambda: dispatcher.deliver(connection.pk))
    connection.refresh_from_db()
    assert not connection.is_healthy
    assert mailoutbox == []


def test_a_failing_test_send_alerts_nobody(
    alerting, segment_server, connect_to, commit, mailoutbox
):
    connection = connect_to(segment_server, accepted=False)
    result = commit(lambda: probe.send_test_events(connection))
    assert result.status == 401
    assert {e.status for e in result.events} == {"dead"}
    connection.refresh_from_db()
    assert connection.is_healthy  # a test leaves the connection's health alone
    assert mailoutbox == []


def test_a_mail_that_cannot_be_sent_is_logged_and_not_throttled(
    alerting, settings, make_connection, caplog
):
    port = int(refused_url().rsplit(":", 1)[1])
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    connection = make_connection(name="Production")
    assert not alerts.send(connection, "test", ["line"], "")
    assert "the alert mail about Production could not be sent" in caplog.text
    assert caches["default"].get(alerts.cache_key(connection.pk)) is None


# -- the signals that alerts (and Slack, PagerDuty, ...) listen to --------------------------


def test_unhealthy_and_healthy_are_sent_once_per_episode_after_commit(make_connection, commit):
    received = []

    def listen(signal):
        def receiver(sender, connection, **kwargs):
            received.append((signal, connection.name, kwargs.get("reason")))

        signal.connect(receiver, weak=False, dispatch_uid=f"test-{signal is connection_healthy}")
        return receiver

    listen(connection_unhealthy)
    listen(connection_healthy)
    try:
        connection = make_connection(name="Production")
        commit(lambda: connection.mark_unhealthy("401 once"))
        commit(lambda: connection.mark_unhealthy("401 again"))  # the same episode
        assert received == [(connection_unhealthy, "Production", "401 once")]
        commit(connection.mark_healthy)
        commit(connection.mark_healthy)
        assert received[1:] == [(connection_healthy, "Production", None)]
        commit(lambda: connection.mark_unhealthy("403"))
        # Fixing the write key resets the health (delivery.credentials): healthy again.
        connection.write_key = WRITE_KEY + "new"
        commit(connection.save)
        assert [signal for signal, _, _ in received[2:]] == [
            connection_unhealthy,
            connection_healthy,
        ]
    finally:
        connection_unhealthy.disconnect(dispatch_uid="test-False")
        connection_healthy.disconnect(dispatch_uid="test-True")


def test_nothing_is_sent_when_the_transaction_rolls_back(make_connection):
    from django.db import transaction

    received = []
    connection_unhealthy.connect(
        lambda **kwargs: received.append(kwargs), weak=False, dispatch_uid="test-rollback"
    )
    try:
        connection = make_connection()

        def fail_after_marking():
            with transaction.atomic():
                connection.mark_unhealthy("401")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_after_marking()
        assert received == []
    finally:
        connection_unhealthy.disconnect(dispatch_uid="test-rollback")


# -- a throttle shared by processes ---------------------------------------------------------


@pytest.fixture
def redis_cache(settings):
    pytest.importorskip("redis")
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis must run on 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.CACHES = {
        **settings.CACHES,
        "alerts": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": f"configcat-segment-test-{uuid.uuid4().hex}",
        },
    }
    yield caches["alerts"]
    caches["alerts"].clear()


def test_a_shared_cache_throttles_across_connections_to_it(
    alerting, delivery_settings, redis_cache
):
    delivery_settings(ALERT_CACHE="alerts")
    settings = alerts.get_settings()
    connection_id = uuid.uuid4()
    # Cache connections are per thread: another thread has its own, as another process would.
    results = []
    for _ in range(3):
        thread = threading.Thread(
            target=lambda: results.append(alerts.claim(connection_id, settings))
        )
        thread.start()
        thread.join()
    assert results == [True, False, False]
    assert alerts.claim(uuid.uuid4(), settings)  # another connection
    assert check_alerts() == []  # a shared cache: no warning


# -- checks -------------------------------------------------------------------------------


def test_checks_warn_about_alerts_that_cannot_work(settings, delivery_settings):
    settings.ADMINS = []
    assert check_alerts() == []  # alerts off: nothing to say
    delivery_settings(ALERT_EMAILS=True)
    ids = [message.id for message in check_alerts()]
    assert ids == ["configcat_segment.W015", "configcat_segment.W016"]  # no ADMINS, local cache
    settings.ADMINS = ADMINS
    delivery_settings(ALERT_CACHE="nowhere")
    [error] = check_alerts()
    assert error.id == "configcat_segment.E016"
    assert error.level == checks.ERROR
    assert "'nowhere', which is not in CACHES" in error.msg
