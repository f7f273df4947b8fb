"""The event counts the overview reads stay equal to COUNT(*) of the events table, whatever
writes, settles, requeues or deletes events, one at a time or all at once."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from configcat_segment.database import counts, folding
from configcat_segment.delivery import outbox
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.eventlog import actions, overview
from configcat_segment.models import Event, EventCount, EventCountChange, SegmentConnection
from tests.delivery.conftest import FakeClock, connect_to, segment_server, track  # noqa: F401 - fixtures

from .bulk import generate_events, insert_events

WAIT = 60  # seconds; only a safety net


def truth() -> dict[tuple, int]:
    """COUNT(*) of the events per connection, hour (UTC) and status."""
    rows = (
        Event.objects.annotate(hour=TruncHour("created_at", tzinfo=dt.UTC))
        .values_list("connection_id", "hour", "status")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {(c, h, s): n for c, h, s, n in rows}


def kept() -> dict[tuple, int]:
    return EventCount.objects.summed(["connection_id", "hour", "status"])


@contextmanager
def snapshot() -> Iterator[None]:
    """One snapshot for every query inside (PostgreSQL: REPEATABLE READ)."""
    assert not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def kept_from() -> dt.datetime:
    """The first hour compared hour by hour: an hour after the database's window starts, so
    that an hour turning while a test runs folds nothing that it compares one by one."""
    this_hour = timezone.now().astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return this_hour - dt.timedelta(hours=folding.HOURS_KEPT - 1)


def folded(counted: dict[tuple, int]) -> dict[tuple, int]:
    """``counted`` with the hours before :func:`kept_from` added up, as the counts keep them."""
    first = kept_from()
    totals: dict[tuple, int] = defaultdict(int)
    for (connection_id, hour, status), n in counted.items():
        totals[connection_id, hour if hour >= first else folding.FOLDED, status] += n
    return {key: n for key, n in totals.items() if n}


def assert_exact() -> None:
    """The last two days hour by hour, every older hour together, equal to COUNT(*)."""
    assert folded(kept()) == folded(truth())


def unfolded_old_rows() -> list[EventCount]:
    """Count rows of an hour out of the window that are not the folded one (after the
    changes are added in, on PostgreSQL): none."""
    counts.add_changes()
    old = kept_from() - dt.timedelta(hours=2)  # the database's window starts an hour earlier
    return list(EventCount.objects.filter(hour__gt=folding.FOLDED, hour__lt=old))


def write(conn: SegmentConnection, numbers, created: dt.datetime, **kwargs) -> list[Event]:
    return outbox.enqueue(
        [
            outbox.build_event(conn, track(n, message_id=f"{conn.pk.hex[:8]}-{n}"), now=created)
            for n in numbers
        ],
        **kwargs,
    )


# -- one at a time, every way there is ------------------------------------------------------------


@pytest.mark.django_db
def test_counts_stay_exact_through_a_random_workload(
    segment_server,  # noqa: F811
    connect_to,  # noqa: F811
    superuser,
):
    rng = random.Random(13)
    clock = FakeClock()
    conns = [connect_to(segment_server) for _ in range(3)]
    dispatcher = Dispatcher(clock=clock, random=rng.random)
    numbers = itertools.count()
    now = timezone.now()

    def some(queryset, most=8):
        ids = list(queryset.values_list("pk", flat=True))
        return Event.objects.filter(pk__in=rng.sample(ids, min(len(ids), rng.randint(1, most))))

    def written():
        hours_ago = rng.choice([0, 0, 1, 5, 30, 47, 48, 49, 70, 400])
        created = now - dt.timedelta(hours=hours_ago, minutes=rng.randint(0, 59))
        write(rng.choice(conns), [next(numbers) for _ in range(rng.randint(1, 12))], created)

    def written_twice():  # duplicates are skipped by the database: not counted either
        existing = list(Event.objects.order_by("?")[:3])
        again = [outbox.build_event(e.connection, e.payload, now=now) for e in existing]
        new = outbox.build_event(conns[0], track(next(numbers)))
        outbox.enqueue([*again, new], ignore_conflicts=True)

    def delivered():
        if rng.random() < 0.3:
            segment_server.fail(rng.choice([500, 503, 429]), times=rng.randint(1, 3))
        pending = list(Event.objects.filter(status="pending").values_list("message_id", flat=True))
        if pending and rng.random() < 0.3:
            segment_server.poison(rng.choice(pending))
        dispatcher.deliver_due()
        clock.advance(rng.choice([1, 30, 600, 4000]))

    def retried():
        actions.retry(some(Event.objects.filter(status__in=["failed", "dead"])), superuser)

    def replayed():
        actions.replay(some(Event.objects.filter(status="delivered")), superuser)

    def requeued():
        outbox.requeue(some(Event.objects.all()))

    def pruned():
        old = timezone.now() - dt.timedelta(days=40)
        some(Event.objects.filter(status="delivered"), most=20).update(delivered_at=old)
        call_command("configcat_segment_prune", "--days", "30", stdout=io.StringIO())

    def changed_by_hand():  # raw updates: another hour, another connection, another status
        hours_ago = rng.choice([rng.randint(0, 48), rng.randint(40, 60), rng.randint(0, 500)])
        some(Event.objects.all()).update(created_at=now - dt.timedelta(hours=hours_ago))
        some(Event.objects.all()).update(connection=rng.choice(conns))
        some(Event.objects.all()).update(status=rng.choice(["dead", "failed", "delivered"]))

    def deleted_by_hand():
        some(Event.objects.all()).delete()

    def connection_deleted():
        victim = conns.pop(rng.randrange(len(conns)))
        victim.delete()  # its events go with it
        conns.append(connect_to(segment_server))

    steps = [written] * 6 + [delivered] * 4
    steps += [written_twice, retried, replayed, requeued, pruned, changed_by_hand]
    steps += [deleted_by_hand, counts.add_changes]
    seen = set()
    for _ in range(150):
        rng.choice(steps)()
        assert_exact()
        seen |= {status for (_, _, status) in truth()}
        if connection.vendor == "sqlite":  # folded as they are written
            assert unfolded_old_rows() == []
    connection_deleted()
    assert_exact()
    assert seen == {"pending", "delivered", "failed", "dead"}
    assert Event.objects.count() > 100
    assert unfolded_old_rows() == []
    assert EventCount.objects.filter(hour=folding.FOLDED).exists()

    # What the overview shows is the same.
    for row in overview.connection_health():
        for status in Event.WAITING:
            n = Event.objects.filter(connection=row.connection, status=status).count()
            assert getattr(row, status) == n
    hours = overview.events_per_hour()
    day = Event.objects.filter(created_at__gte=hours[0].start)
    assert sum(hour.total for hour in hours) == day.count()


@pytest.mark.django_db
def test_the_overview_reads_counts_not_events(make_event, make_connection):
    other = make_connection(name="Staging")
    make_event(status="dead", last_error="HTTP 400: first")
    newest = make_event(status="failed", last_error="HTTP 503: newest", connection=other)
    make_event(status="delivered")
    with CaptureQueriesContext(connection) as queries:
        health = overview.connection_health()
        overview.events_per_hour()
    assert len(queries) == 4  # connections with their probes, errors, counts, the chart
    for query in queries:
        # Nothing counts or groups the events table: its cost would grow with the table.
        assert not re.search(r'(COUNT|GROUP BY).*"configcat_segment_event"\.', query["sql"])
    staging = next(row for row in health if row.connection == other)
    assert (staging.failed, staging.last_error, staging.last_error_event_id) == (
        1,
        "HTTP 503: newest",
        newest.pk,
    )


@pytest.mark.django_db
def test_a_month_of_events_is_a_few_counts_and_stays_exact_as_old_events_change(
    make_connection,
):
    """Hours older than the window are folded into one count per connection and status,
    whatever later happens to their events: deleted, settled, requeued, moved in time,
    written late."""
    conns = [make_connection(name=f"Folded {n}") for n in range(2)]
    now = timezone.now()
    statuses = ["delivered", "delivered", "pending", "failed", "dead"]
    for conn in conns:  # one event every 20 minutes for 30 days
        insert_events(
            conn,
            30 * 72,
            status=lambda n: statuses[n % 5],
            created_at=lambda n: now - dt.timedelta(minutes=20 * n),
            prefix=f"month-{conn.name}",
        )
    assert_exact()
    assert unfolded_old_rows() == []
    # Two days hour by hour (and the hour in progress), the rest folded: 4 statuses each.
    assert EventCount.objects.count() <= len(conns) * 4 * (folding.HOURS_KEPT + 2)
    assert EventCount.objects.filter(hour=folding.FOLDED).count() == len(conns) * 4

    old = Event.objects.filter(created_at__lt=now - dt.timedelta(days=3))
    rng = random.Random(7)

    def some_old(n):
        ids = list(old.values_list("pk", flat=True))
        return Event.objects.filter(pk__in=rng.sample(ids, n))

    some_old(30).delete()
    assert_exact()
    some_old(30).update(status="dead")
    assert_exact()
    outbox.requeue(some_old(30))
    assert_exact()
    some_old(30).update(created_at=now)  # into the window
    assert_exact()
    recent = Event.objects.filter(created_at__gte=now - dt.timedelta(hours=2))
    Event.objects.filter(pk__in=list(recent.values_list("pk", flat=True)[:10])).update(
        created_at=now - dt.timedelta(days=9)  # out of it
    )
    assert_exact()
    write(conns[1], range(10_000, 10_020), now - dt.timedelta(days=12))  # written late
    assert_exact()
    some_old(30).update(connection=conns[0])
    assert_exact()
    assert unfolded_old_rows() == []

    counts.rebuild()
    assert_exact()
    assert unfolded_old_rows() == []
    for row in overview.connection_health():
        for status in Event.WAITING:
            n = Event.objects.filter(connection=row.connection, status=status).count()
            assert getattr(row, status) == n


@pytest.mark.django_db
def test_emptying_the_tables_in_any_order_leaves_no_count_behind(make_event):
    make_event(status="pending")
    make_event(status="dead")
    make_event(status="dead", created_at=timezone.now() - dt.timedelta(days=5))  # folded
    with connection.cursor() as cursor:  # as Django's test flush may: every table
        cursor.execute("DELETE FROM configcat_segment_eventcount")
        cursor.execute("DELETE FROM configcat_segment_event")
        # PostgreSQL's pending changes (emptied last, like the rest of the tables).
        cursor.execute("DELETE FROM configcat_segment_eventcountchange")
    assert kept() == {}
    make_event(status="pending")
    assert_exact()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # no deferred constraint checks pending
def test_truncating_the_events_table_forgets_the_counts(make_event):
    make_event(status="pending")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE configcat_segment_event")
    assert EventCount.objects.count() == EventCountChange.objects.count() == 0


@pytest.mark.django_db
def test_the_rebuild_command_recounts(make_event, capsys):
    make_event(status="pending")
    make_event(status="delivered")
    make_event(status="delivered")
    EventCount.objects.update(count=99)  # as if the triggers had been off for a while
    call_command("configcat_segment_rebuild_counts")
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == {"delivered": 2, "pending": 1}
    assert out["total"] == 3
    assert_exact()


# -- all at once (PostgreSQL) --------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_with_concurrent_workers_writers_retries_and_pruning(
    segment_server,  # noqa: F811
    connect_to,  # noqa: F811
    superuser,
):
    conns = [connect_to(segment_server) for _ in range(2)]
    generate_events(conns[0], 2_000)  # some history to prune
    segment_server.fail(503, times=3)
    stop = threading.Event()
    errors: list[BaseException] = []
    numbers = itertools.count()

    def thread(work, rounds=None):
        def run():
            try:
                for n in itertools.count() if rounds is None else range(rounds):
                    if rounds is None and stop.is_set():
                        break
                    work(n)
            except BaseException as exc:  # reported by the test
                errors.append(exc)
                stop.set()
            finally:
                connections.close_all()

        return threading.Thread(target=run)

    def writer(n):
        with transaction.atomic():
            conn = conns[n % 2]
            created = timezone.now() - dt.timedelta(hours=(n % 4) * 30)  # some folded
            write(conn, [next(numbers) for _ in range(20)], created)
        if n % 10 == 0:
            pending = Event.objects.filter(status="pending").values_list("message_id", flat=True)
            if first := pending.first():
                segment_server.poison(first)

    def worker(n):
        Dispatcher(random=random.Random(n).random).deliver_due()

    def retrier(n):  # the event log's actions: they lock the rows in order first
        failed = Event.objects.filter(status__in=["failed", "dead"]).values_list("pk", flat=True)
        actions.retry(Event.objects.filter(pk__in=list(failed[:30])), superuser)
        delivered = Event.objects.filter(status="delivered").order_by("?").values_list("pk")
        actions.replay(Event.objects.filter(pk__in=[pk for (pk,) in delivered[:10]]), superuser)

    def pruner(n):
        old = timezone.now() - dt.timedelta(days=40)
        with transaction.atomic():  # aged by hand, rows locked in order as the actions do
            ids = list(
                Event.objects.filter(status="delivered")
                .order_by("pk")
                .select_for_update()
                .values_list("pk", flat=True)[:200]
            )
            Event.objects.filter(pk__in=ids).update(delivered_at=old)
        call_command("configcat_segment_prune", "--days", "30", stdout=io.StringIO())

    def adder(n):
        counts.add_changes()

    finite = [thread(writer, 40), thread(writer, 40), thread(retrier, 15), thread(pruner, 8)]
    endless = [thread(worker) for _ in range(3)] + [thread(adder)]
    for t in finite + endless:
        t.start()
    checks = 0
    deadline = time.monotonic() + WAIT * 5
    while any(t.is_alive() for t in finite):
        with snapshot():  # counts and COUNT(*) at the same moment, mid-flight
            assert_exact()
        checks += 1
        assert time.monotonic() < deadline, "the workload never finished"
    stop.set()
    for t in finite + endless:
        t.join(WAIT)
    assert errors == [], [str(e) for e in errors]
    assert checks >= 3
    assert_exact()
    assert Event.objects.filter(status="delivered").exists()
    assert EventCountChange.objects.count() < 2_000  # added in as they come, not piling up
    assert unfolded_old_rows() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_folding_on_postgresql_makes_no_event_writer_wait(make_event, segment_connection):
    """The adder folds while holding its counts; writers, of old hours too, go on."""
    now = timezone.now()
    for days in (3, 4, 5):
        make_event(status="dead", created_at=now - dt.timedelta(days=days))
    folding, done = threading.Event(), threading.Event()
    folded: list[int] = []

    def adder() -> None:
        try:
            with transaction.atomic():
                folded.append(counts.add_changes())
                folding.set()
                done.wait(WAIT)  # holds the folded counts' row locks and the advisory lock
        finally:
            connections.close_all()

    thread = threading.Thread(target=adder)
    thread.start()
    try:
        assert folding.wait(WAIT)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")  # fails rather than waits
            write(segment_connection, range(100, 110), now - dt.timedelta(days=6))
            write(segment_connection, range(110, 120), now)
            Event.objects.filter(created_at__lt=now - dt.timedelta(days=4)).update(status="pending")
            Event.objects.filter(created_at__lt=now - dt.timedelta(days=5, hours=12)).delete()
    finally:
        done.set()
        thread.join(WAIT)
    assert len(folded) == 1
    assert folded[0] > 0  # it added in, and folded, the old hours
    assert_exact()
    assert unfolded_old_rows() == []
