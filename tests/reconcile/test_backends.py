"""The periodic run in every delivery backend, and a missed change reaching Segment once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.utils import timezone

from configcat_segment import tasks
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.delivery.runner import Runner
from configcat_segment.models import Event
from configcat_segment.reconcile import reconcile
from tests.delivery.conftest import SAFETY_SECONDS, wait_for
from tests.segment_server import SegmentServer
from tests.webhooks.conftest import CONFIG_ID, ENVIRONMENT_ID

from .conftest import LATER, NOW_DT, audit_entry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recent(reconciling):
    """The connection as the real clock sees it: made two days ago, with its scope."""
    reconciling.created_at = timezone.now() - dt.timedelta(days=2)
    reconciling.save()
    reconciling.webhook_scopes.create(config_id=CONFIG_ID, environment_id=ENVIRONMENT_ID)
    return reconciling


def missed_change(audit_log, **fields):
    return audit_entry(audit_log, at=timezone.now() - dt.timedelta(minutes=20), **fields)


def reconciler(runner):
    """The reconciliation job lifecycle registered with every runner."""
    return runner.periodic.get("reconcile")


def test_the_worker_loop_reconciles_on_a_thread_of_its_own(recent, audit_log):
    missed_change(audit_log, setting_key="newCheckout")
    runner = Runner(threads=1, poll_seconds=0.05)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: reconciler(runner) is not None and reconciler(runner).runs >= 1)
    finally:
        runner.stop()
        thread.join(SAFETY_SECONDS)
    assert Event.objects.filter(flag_key="newCheckout").count() == 1
    assert reconciler(runner) is not None
    assert reconciler(runner).errors == 0


def test_a_runner_delivering_until_idle_does_not_reconcile(recent, audit_log):
    missed_change(audit_log)
    Runner(threads=1, poll_seconds=0.05).run(until_idle=True)
    assert audit_log.requests == []


def test_the_celery_task_and_its_beat_entry(recent, audit_log):
    missed_change(audit_log, setting_key="newCheckout")
    entry = tasks.BEAT_SCHEDULE["configcat-segment-reconcile"]
    assert entry["task"] == tasks.RECONCILE_TASK_NAME == tasks.reconcile.name
    assert tasks.reconcile.apply().get() == {"connections": 1, "forwarded": 1, "errors": 0}
    assert tasks.reconcile.apply().get() == {"connections": 0, "forwarded": 0, "errors": 0}


def test_a_change_made_while_the_webhook_endpoint_was_down_reaches_segment_once(
    reconciling, audit_log, send_webhook
):
    with SegmentServer() as segment:
        reconciling.region, reconciling.custom_endpoint = "custom", segment.url
        reconciling.save()
        segment.write_keys.add(reconciling.write_key)
        send_webhook(reconciling)  # an earlier change, delivered
        audit_entry(audit_log)  # ...which the audit log has too
        lost = audit_entry(
            audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5)
        )  # made while the endpoint was down: ConfigCat gave up on its webhook

        reconcile(reconciling, now=LATER)
        reconcile(reconciling, now=LATER + dt.timedelta(minutes=30))  # and again: nothing new
        Dispatcher().deliver_due()

        sent = {m["properties"]["feature_flag_key"]: m for m in segment.accepted_messages}
        assert sorted(sent) == ["discountRate", "isAwesomeFeatureEnabled", "newCheckout"]
        assert segment.duplicates() == {}
        assert sent["newCheckout"]["properties"]["source"] == "audit_log"
        assert sent["newCheckout"]["properties"]["audit_log_id"] == lost["auditLogId"]
        assert "source" not in sent["isAwesomeFeatureEnabled"]["properties"]
