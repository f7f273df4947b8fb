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


def old_event(model, source, n, when, **fields):
    """A "Feature Flag Changed" event written through a historical ``Event`` model."""
    return model.objects.create(
        connection=source,
        type="track",
        event_name="Feature Flag Changed",
        flag_key=f"flag_{n}",
        user_id=f"user-{n}",
        message_id=f"upgrade-{n}",
        payload=track(n, when),
        **fields,
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
            old_event(
                OldEvent,
                source,
                n,
                past,
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


def event_indexes():
    """The events table's indexes: name -> (columns, whether partial)."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "configcat_segment_event")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = 'configcat_segment_event'::regclass AND indpred IS NOT NULL"
            )
            partial = {row[0] for row in cursor.fetchall()}
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'configcat_segment_event' AND sql LIKE '%WHERE%'"
            )
            partial = {row[0] for row in cursor.fetchall()}
    return {
        name: (tuple(info["columns"]), name in partial)
        for name, info in found.items()
        if info["index"] and not info["primary_key"] and not info["unique"]
    }


def test_0013_changes_the_event_indexes_and_keeps_every_row():
    """The foreign keys' own indexes go (the connection's is the start of
    cs_event_conn_newest; the receipt's becomes partial), dead events get a partial index
    by flag key; no row is lost, and going back restores the indexes as Django made them."""
    try:
        old = migrate([(APP, "0012_eventlog_counts")])
        before = event_indexes()
        assert ("connection_id",) in {columns for columns, _ in before.values()}
        assert (("receipt_id",), False) in before.values()
        Connection = old.get_model(APP, "SegmentConnection")
        Receipt = old.get_model(APP, "WebhookReceipt")
        OldEvent = old.get_model(APP, "Event")
        source = Connection.objects.create(name="Indexed", write_key=WRITE_KEY, region="us")
        receipt = Receipt.objects.create(connection=source, webhook_id="w-1", body=b"{}")
        for n in range(6):
            OldEvent.objects.create(
                connection=source,
                type="track",
                event_name="Feature Flag Changed",
                flag_key=f"flag_{n % 2}",
                user_id=f"user-{n}",
                message_id=f"indexed-{n}",
                payload=track(n, timezone.now()),
                status="dead" if n % 3 == 0 else "delivered",
                receipt=receipt if n < 2 else None,
            )

        migrate([(APP, "0013_event_indexes")])
        after = event_indexes()
        assert ("connection_id",) not in {columns for columns, _ in after.values()}
        assert [name for name, (columns, _) in after.items() if columns == ("receipt_id",)] == [
            "cs_event_receipt"
        ]
        assert after["cs_event_receipt"][1]  # partial
        assert after["cs_event_flag_dead"] == (("flag_key", "id"), True)
        assert after["cs_event_flag_newest"] == before["cs_event_flag_newest"]
        # PostgreSQL's varchar_pattern_ops index beside the unique messageId: gone.
        assert [n for n in before if n.endswith("_like")] == (
            ["configcat_segment_event_message_id_18ae9625_like"]
            if connection.vendor == "postgresql"
            else []
        )
        assert not [name for name in after if name.endswith("_like")]
        assert Event.objects.count() == 6
        assert Event.objects.filter(receipt_id=receipt.pk).count() == 2
        dead = Event.objects.filter(flag_key="flag_1", status="dead").values_list("message_id")
        assert list(dead) == [("indexed-3",)]
        Receipt.objects.filter(pk=receipt.pk).delete()  # SET NULL through the partial index
        assert Event.objects.filter(receipt__isnull=False).count() == 0

        migrate([(APP, "0012_eventlog_counts")])
        assert event_indexes() == before
        assert OldEvent.objects.count() == 6
    finally:
        migrate(latest())


def test_events_claimed_before_the_claims_table_are_due_again_after_their_lease():
    """Under the old scheme a claim moved ``next_attempt_at`` to the end of its lease and
    counted the attempt in the row: such an event is not sent before then, and is after,
    as if its worker had died."""
    server = SegmentServer(write_keys={WRITE_KEY}).start()
    try:
        old = migrate([(APP, "0013_event_indexes")])
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
            old_event(
                OldEvent,
                source,
                n,
                now,
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


HOURLY_COUNTS = {  # what 0012 built and 0014's triggers kept: every hour by itself
    "sqlite": "strftime('%Y-%m-%d %H:00:00', created_at)",
    "postgresql": "date_trunc('hour', created_at, 'UTC')",
}
_HOUR = "strftime('%Y-%m-%d %H:00:00', {}.created_at)"
_ADD = (
    "INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count) "  # noqa: S608 - constants only
    f"VALUES (new.connection_id, {_HOUR.format('new')}, new.status, 1) "
    "ON CONFLICT (connection_id, hour, status) DO UPDATE SET count = count + 1;"
)
_REMOVE = (
    "UPDATE configcat_segment_eventcount SET count = count - 1 WHERE connection_id = "  # noqa: S608 - constants only
    f"old.connection_id AND hour = {_HOUR.format('old')} AND status = old.status;"
)
SQLITE_TRIGGERS_0014 = {  # 0014's count triggers on SQLite, every hour by itself
    "configcat_segment_count_insert": (f"AFTER INSERT ON configcat_segment_event BEGIN {_ADD} END"),
    "configcat_segment_count_update": (
        "AFTER UPDATE OF connection_id, created_at, status ON configcat_segment_event "
        f"BEGIN {_REMOVE} {_ADD} END"
    ),
    "configcat_segment_count_delete": (
        f"AFTER DELETE ON configcat_segment_event BEGIN {_REMOVE} END"
    ),
}


def test_0015_folds_the_counts_of_old_hours_and_keeps_them_exact():
    from configcat_segment.database import counts, folding, triggers
    from configcat_segment.models import EventCount

    try:
        old = migrate([(APP, "0014_delivery_claims")])
        Connection = old.get_model(APP, "SegmentConnection")
        OldEvent = old.get_model(APP, "Event")
        source = Connection.objects.create(name="Folded", write_key=WRITE_KEY, region="us")
        now = timezone.now()
        for n in range(12):  # every 12 hours for six days, the newest now
            when = now - dt.timedelta(hours=12 * n)
            status = "dead" if n % 3 == 0 else "delivered"
            old_event(OldEvent, source, n, when, status=status, created_at=when)
        with connection.cursor() as cursor:  # the counts as 0014 kept them
            if connection.vendor == "sqlite":  # and its triggers
                cursor.execute("DROP TRIGGER configcat_segment_count_fold")
                for name, body in SQLITE_TRIGGERS_0014.items():
                    cursor.execute(f"DROP TRIGGER {name}")
                    cursor.execute(f"CREATE TRIGGER {name} {body}")
            cursor.execute("DELETE FROM configcat_segment_eventcountchange")
            cursor.execute("DELETE FROM configcat_segment_eventcount")
            cursor.execute(
                "INSERT INTO configcat_segment_eventcount (connection_id, hour, status, count) "  # noqa: S608 - constants only
                f"SELECT connection_id, {HOURLY_COUNTS[connection.vendor]}, status, count(*) "
                "FROM configcat_segment_event GROUP BY 1, 2, 3"
            )
        assert EventCount.objects.count() == 12

        migrate(latest())

        if connection.vendor == "sqlite":  # the events table's triggers are the new ones
            with connection.cursor() as cursor:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                installed = dict(cursor.fetchall())
            for name, body in counts.SQLITE.triggers.items():
                assert body in installed[name], name
        else:
            assert "configcat_segment_count_insert" in triggers.existing_triggers(connection)
        counted = EventCount.objects.summed(["connection_id", "hour", "status"])
        # Four days folded (two dead, six delivered), two days and the hour in progress
        # hour by hour (five events).
        assert counted[source.pk, folding.FOLDED, "dead"] == 2
        assert counted[source.pk, folding.FOLDED, "delivered"] == 5
        assert sum(counted.values()) == 12
        assert EventCount.objects.filter(hour__gt=folding.FOLDED).count() == 5
        Event.objects.filter(created_at__lt=now - dt.timedelta(days=3)).delete()  # 5 folded
        assert EventCount.objects.summed(["status"]) == {("dead",): 3, ("delivered",): 4}
    finally:
        migrate(latest())
