import datetime as dt

import pytest
from django.utils import timezone

from configcat_segment.delivery import outbox
from configcat_segment.models import Event
from configcat_segment.segment import payloads as messages
from configcat_segment.signals import event_dead

pytestmark = pytest.mark.django_db


def message(n, **properties):
    return messages.track(
        event="Feature Flag Changed",
        properties={"feature_flag_key": f"f{n}", **properties},
        user_id=f"user-{n}",
        timestamp=timezone.now(),
        message_id=f"m{n}",
    )


@pytest.fixture
def woken():
    calls = []
    callback = lambda: calls.append(1)  # noqa: E731
    outbox.on_enqueued(callback)
    outbox.on_enqueued(callback)  # registering twice is a no-op
    yield calls
    outbox.remove_listener(callback)


def test_enqueue_writes_events_and_wakes_deliverers_after_commit(
    segment_connection, woken, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = outbox.enqueue(
            [outbox.build_event(segment_connection, message(n), flag_key=f"f{n}") for n in (1, 2)]
        )
        assert woken == []  # nothing before commit
    assert woken == [1]
    assert [e.status for e in created] == ["pending", "pending"]
    event = Event.objects.get(message_id="m1")
    assert event.flag_key == "f1"
    assert event.user_id == "user-1"
    assert event.event_name == "Feature Flag Changed"
    assert event.type == "track"
    assert event.payload == message(1) | {"timestamp": event.payload["timestamp"]}


def test_duplicates_are_skipped_by_the_database_when_asked(segment_connection):
    outbox.enqueue([outbox.build_event(segment_connection, message(1))])
    outbox.enqueue(
        [outbox.build_event(segment_connection, message(n)) for n in (1, 2)],
        ignore_conflicts=True,
    )
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["m1", "m2"]


def test_a_message_too_large_is_kept_dead_with_the_reason(
    segment_connection, woken, django_capture_on_commit_callbacks
):
    received = []
    event_dead.connect(lambda **kw: received.extend(kw["events"]), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue([outbox.build_event(segment_connection, message(1, junk=[1] * 20_000))])
    finally:
        event_dead.disconnect(dispatch_uid="t")
    event = Event.objects.get()
    assert event.status == "dead"
    assert "Segment accepts at most 32,768 bytes" in event.last_error
    assert [e.message_id for e in received] == ["m1"]
    assert woken == []  # nothing to deliver


def test_requeue_retries_failed_and_dead_and_replays_delivered(
    segment_connection, woken, django_capture_on_commit_callbacks
):
    old = timezone.now() - dt.timedelta(days=10)
    for n, status in enumerate(["pending", "failed", "dead", "delivered"]):
        event = outbox.build_event(segment_connection, message(n), now=old)
        event.status, event.attempts = status, 3
        event.delivered_at = old if status == "delivered" else None
        event.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.requeue(Event.objects.all()) == 3
    assert woken == [1]
    for event in Event.objects.exclude(message_id="m0"):
        assert event.status == "pending"
        assert event.attempts == 0
        assert event.delivered_at is None
        assert event.queued_at > old
        assert event.created_at == old
    untouched = Event.objects.get(message_id="m0")
    assert (untouched.attempts, untouched.queued_at) == (3, old)


def test_requeue_takes_a_list_of_events(segment_connection):
    event = outbox.build_event(segment_connection, message(1))
    event.status = "dead"
    event.save()
    assert outbox.requeue([event]) == 1
    event.refresh_from_db()
    assert event.status == "pending"


def test_a_failing_listener_is_logged_not_raised(caplog):
    def broken():
        raise RuntimeError("boom")

    outbox.on_enqueued(broken)
    try:
        outbox.notify()
    finally:
        outbox.remove_listener(broken)
    assert "an outbox listener failed" in caplog.text


def test_nul_characters_reach_the_database_as_replacement_characters(segment_connection):
    # PostgreSQL refuses NUL in text and JSON; an evaluated user's attribute may carry one.
    nul_message = messages.track(
        event="Feature Flag Evaluated",
        properties={"feature_flag_key": "f\x00", "user": {"Identifier": "u\x00", "x": "\x00"}},
        user_id="u\x00",
        timestamp=timezone.now(),
        message_id="m-nul",
    )
    outbox.enqueue([outbox.build_event(segment_connection, nul_message, flag_key="f\x00")])
    event = Event.objects.get(message_id="m-nul")
    assert event.flag_key == "f\ufffd"
    assert event.user_id == "u\ufffd"
    assert event.payload["properties"]["user"] == {"Identifier": "u\ufffd", "x": "\ufffd"}


def too_large(n):
    return message(n, junk=[1] * 20_000)


def test_a_failing_event_dead_receiver_is_logged_not_raised(
    segment_connection, django_capture_on_commit_callbacks, caplog
):
    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    event_dead.connect(broken, weak=False, dispatch_uid="broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue([outbox.build_event(segment_connection, too_large(1))])
    finally:
        event_dead.disconnect(dispatch_uid="broken")
    assert Event.objects.get().status == "dead"
    assert "receiver bug" in caplog.text


def test_event_dead_is_sent_only_for_dead_events_really_written(
    segment_connection, django_capture_on_commit_callbacks
):
    received = []
    event_dead.connect(lambda **kw: received.extend(kw["events"]), weak=False, dispatch_uid="t")
    try:
        outbox.enqueue([outbox.build_event(segment_connection, too_large(1))])
        with django_capture_on_commit_callbacks(execute=True):
            created = outbox.enqueue(
                [
                    outbox.build_event(segment_connection, m)
                    for m in (too_large(1), too_large(2), message(3))
                ],
                ignore_conflicts=True,
            )
    finally:
        event_dead.disconnect(dispatch_uid="t")
    assert [e.message_id for e in received] == ["m2"]  # m1 was a duplicate, never written
    assert sorted(e.message_id for e in created) == ["m2", "m3"]
    assert Event.objects.count() == 3
