"""Retrying while a dispatcher delivers the same event, on real PostgreSQL row locks."""

import threading
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection, transaction
from django.utils import timezone

from configcat_segment.eventlog import actions
from configcat_segment.models import Event

WAIT = 30  # seconds; only a safety net, every wait ends on a condition


def blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_retry_waits_for_a_delivery_in_progress_and_does_not_replay_it(make_event, superuser):
    event = make_event(status="failed")
    locked, release = threading.Event(), threading.Event()
    retried: dict[str, int] = {}

    def dispatcher() -> None:  # holds the row, as a worker does while it records a delivery
        try:
            with transaction.atomic():
                Event.objects.select_for_update().get(pk=event.pk)
                locked.set()
                release.wait(WAIT)
                Event.objects.filter(pk=event.pk).update(
                    status="delivered", delivered_at=timezone.now()
                )
        finally:
            connection.close()

    def retry() -> None:
        try:
            retried["count"] = actions.retry(Event.objects.filter(pk=event.pk), superuser)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher), threading.Thread(target=retry)]
    threads[0].start()
    assert locked.wait(WAIT)
    threads[1].start()
    deadline = time.monotonic() + WAIT
    while not blocked_on_a_lock():  # the retry is waiting for the dispatcher's lock
        assert time.monotonic() < deadline, "the retry never waited for the row lock"
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert retried == {"count": 0}
    event.refresh_from_db()
    assert event.status == "delivered"  # delivered once, not queued again
    assert not LogEntry.objects.exists()
