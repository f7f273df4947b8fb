"""Upgrading a populated database keeps every event, and the waiting ones go out after."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event, EventClaim
from configcat_segment.segment import payloads as messages
from tests.segment_server import SegmentServer

pytestmark = pytest.mark.django_db(transaction=True)

APP = "configcat_segment"
BEFORE = "0003_evaluations"  # before the delivery pause and the lean indexes
WRITE_KEY = "upgrade-write-key"


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def latest():
    return [(APP, MigrationExecutor(connection).loader.graph.leaf_nodes(APP)[0][1])]


def track(n, when):
    return messages.track(
        event="Feature Flag Changed",
        properties={"feature_flag_key": f"flag_{n}", "value": n},
        user_id=f"user-{n}",
        timestamp=when,
        message_id=f"upgrade-{n}",
    )


def test_an_upgrade_keeps_every_event_and_delivers_the_waiting_ones():
    server = SegmentServer(write_keys={WRITE_KEY}).start()
    try:
        old = migrate([(APP, BEFORE)])
        Connection = old.get_model(APP, "SegmentConnection")
        OldEvent = old.get_model(APP, "Event")
        source = Connection.objects.create(
            name="Upgraded", write_key=WRITE_KEY, region="custom", custom_endpoint=server.url
        )
        now = timezone.now()
        past = now - dt.timedelta(minutes=5)
        statuses = ["pending"] * 3 + ["failed"] * 2 + ["delivered"] * 2 + ["dead"]
        for n, status in enumerate(statuses):
            OldEvent.objects.create(
                connection=source,
                type="track",
                event_name="Feature Flag Changed",
                flag_key=f"flag_{n}",
                user_id=f"user-{n}",
                message_id=f"upgrade-{n}",
                payload=track(n, past),
                status=status,
                attempts=1 if status == "failed" else 0,
                next_attempt_at=past,
                created_at=past,
                queued_at=past,
                delivered_at=past if status == "delivered" else None,
            )
        migrate(latest())

        assert Event.objects.count() == len(statuses)
        report = Dispatcher().deliver_due()
        assert report.delivered == 5
        assert sorted(server.accepted_ids) == [f"upgrade-{n}" for n in range(5)]
        counts = {s: Event.objects.filter(status=s).count() for s in ("delivered", "dead")}
        assert counts == {"delivered": 7, "dead": 1}
        assert Event.objects.get(message_id="upgrade-0").payload == track(0, past)
    finally:
        server.stop()
        migrate(latest())


@pytest.mark.postgres
def test_on_postgresql_indexes_are_built_and_dropped_concurrently():
    """On the events table: without blocking its writes (so outside any transaction)."""
    try:
        migrate([(APP, "0004_delivery_pause")])
        with CaptureQueriesContext(connection) as captured:
            migrate(latest())
        on_events = [
            q["sql"]
            for q in captured.captured_queries
            if q["sql"].startswith(("CREATE INDEX", "DROP INDEX"))
            and ('ON "configcat_segment_event" ' in q["sql"] or "cs_event_" in q["sql"])
        ]
        assert any(s.startswith("CREATE INDEX CONCURRENTLY") for s in on_events), on_events
        assert any(s.startswith("DROP INDEX CONCURRENTLY") for s in on_events), on_events
        assert all("CONCURRENTLY" in s for s in on_events), on_events
    finally:
        migrate(latest())


def test_events_claimed_before_the_claims_table_are_due_again_after_their_lease():
    """Under the old scheme a claim moved ``next_attempt_at`` to the end of its lease and
    counted the attempt in the row: such an event is not sent before then, and is after,
    as if its worker had died."""
    server = SegmentServer(write_keys={WRITE_KEY}).start()
    try:
        old = migrate([(APP, "0012_eventlog_counts")])
        Connection = old.get_model(APP, "SegmentConnection")
        OldEvent = old.get_model(APP, "Event")
        source = Connection.objects.create(
            name="Upgraded", write_key=WRITE_KEY, region="custom", custom_endpoint=server.url
        )
        now = timezone.now()
        lease = now + dt.timedelta(minutes=5)
        for n, (status, attempts, at) in enumerate(
            [("pending", 0, now), ("pending", 1, lease), ("pending", 3, lease)]
        ):
            OldEvent.objects.create(
                connection=source,
                type="track",
                event_name="Feature Flag Changed",
                flag_key=f"flag_{n}",
                user_id=f"user-{n}",
                message_id=f"upgrade-{n}",
                payload=track(n, now),
                status=status,
                attempts=attempts,
                next_attempt_at=at,
                created_at=now,
                queued_at=now,
            )
        migrate(latest())

        assert Dispatcher(clock=lambda: now).deliver_due().delivered == 1
        assert server.accepted_ids == ["upgrade-0"]
        after = lease + dt.timedelta(seconds=1)
        assert Dispatcher(clock=lambda: after).deliver_due().delivered == 2
        attempts = dict(Event.objects.values_list("message_id", "attempts"))
        assert attempts == {"upgrade-0": 1, "upgrade-1": 2, "upgrade-2": 4}
        assert not EventClaim.objects.exists()
    finally:
        server.stop()
        migrate(latest())
