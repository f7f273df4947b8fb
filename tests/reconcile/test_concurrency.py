"""Two workers reconciling at once, on PostgreSQL: every missed change is forwarded once.

Barriers make both workers reach the contested statement together, so no timing decides
the outcome: the claim's conditional UPDATE in the first test, the events' unique
messageId (as when a claim ran out mid-way) in the second.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.models import Event
from configcat_segment.reconcile import claims, reconcile, run, run_due
from configcat_segment.reconcile.run import ALREADY_FORWARDED
from tests.segment_server import SegmentServer

from .conftest import LATER, NOW_DT, audit_entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def meet_before(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Make ``module.name`` wait until two threads are about to call it."""
    barrier = threading.Barrier(2, timeout=60)
    real = getattr(module, name)

    def wait_then_call(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wait_then_call)


def twice_at_once(work: Callable[[], Any]) -> list[Any]:
    def in_thread() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(in_thread) for _ in range(2)]
        return [future.result() for future in futures]


@pytest.fixture
def missed(reconciling, audit_log, send_webhook):
    send_webhook(reconciling)
    audit_entry(audit_log)  # delivered by that webhook
    return audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5))


def test_two_workers_reconcile_a_connection_once(reconciling, missed, audit_log, monkeypatch):
    meet_before(monkeypatch, claims, "claim")
    results = twice_at_once(lambda: run_due(now=LATER))

    assert sorted(len(outcomes) for outcomes in results) == [0, 1]  # one claimed it
    (outcome,) = [o for outcomes in results for o in outcomes]
    assert (outcome.matched, outcome.forwarded) == (1, 1)
    assert Event.objects.filter(flag_key="newCheckout").count() == 1
    with SegmentServer() as segment:
        reconciling.region, reconciling.custom_endpoint = "custom", segment.url
        reconciling.save()
        segment.write_keys.add(reconciling.write_key)
        Dispatcher().deliver_due()
        forwarded = [m for m in segment.accepted_messages if m["properties"].get("source")]
        assert [m["properties"]["audit_log_id"] for m in forwarded] == [missed["auditLogId"]]
        assert segment.duplicates() == {}


def test_when_both_read_the_same_window_the_messageid_keeps_one(reconciling, missed, monkeypatch):
    # As if a claim had run out: both hold it, as far as they know.
    monkeypatch.setattr(claims, "claim", lambda c, now, lease, _: claims.Claim(c.pk, now + lease))
    monkeypatch.setattr(claims, "renew", lambda *args: True)
    meet_before(monkeypatch, run.outbox, "enqueue")  # both looked: neither event exists
    results = twice_at_once(lambda: reconcile(reconciling, now=LATER))

    assert sorted(o.forwarded for o in results) == [0, 1]
    assert sorted(o.skipped[ALREADY_FORWARDED] for o in results) == [0, 1]
    assert Event.objects.filter(flag_key="newCheckout").count() == 1
