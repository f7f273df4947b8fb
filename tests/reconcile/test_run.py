"""Reconciling a connection with the audit log: matched, forwarded once, skipped, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from configcat_segment.constants import FLAG_CHANGED
from configcat_segment.models import Event, SegmentConnection, WebhookScope
from configcat_segment.reconcile import Busy, received, reconcile, run_due
from configcat_segment.reconcile.run import ALREADY_FORWARDED, OTHER_SCOPE
from configcat_segment.segment import payloads
from configcat_segment.segment.payloads import TRUNCATION_MARK
from configcat_segment.signals import flag_changed
from tests.webhooks.conftest import CONFIG_ID, ENVIRONMENT_ID, PRODUCT_ID

from .conftest import API_PASSWORD, LATER, NOW_DT, OTHER_ENVIRONMENT_ID, audit_entry

pytestmark = pytest.mark.django_db(transaction=True)


def audit_events() -> list[Event]:
    return list(Event.objects.filter(payload__properties__source="audit_log").order_by("id"))


def test_a_change_seen_by_webhook_and_audit_log_is_forwarded_once(
    reconciling, audit_log, send_webhook
):
    send_webhook(reconciling)
    audit_entry(audit_log, setting_key="isAwesomeFeatureEnabled")
    audit_entry(audit_log, setting_key="discountRate", details="discountRate: 10 ➔ 20")

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.entries, outcome.matched, outcome.forwarded) == (2, 2, 0)
    assert outcome.error == ""
    assert audit_events() == []
    assert Event.objects.filter(event_name=FLAG_CHANGED).count() == 2  # the webhook's
    reconciling.refresh_from_db()
    assert reconciling.reconciled_until == LATER - dt.timedelta(minutes=10)


def test_a_change_only_in_the_audit_log_is_forwarded_and_marked(
    reconciling, audit_log, send_webhook
):
    send_webhook(reconciling)  # an earlier change: teaches the connection its scope
    item = audit_entry(
        audit_log,
        at=NOW_DT + dt.timedelta(minutes=20),
        setting_key="newCheckout",
        details="\r\nnewCheckout: false ➔ true",
        why="Missed while deploying",
        user_email="joe@example.com",
        user_name="Joe Bloggs",
    )

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.entries, outcome.matched, outcome.forwarded) == (1, 0, 1)
    (event,) = audit_events()
    message = event.payload
    assert message["event"] == FLAG_CHANGED
    assert message["userId"] == "joe@example.com"
    assert message["messageId"] == payloads.message_id(
        reconciling.message_id_salt, f"audit-log:{item['auditLogId']}", 0
    )
    assert message["timestamp"] == payloads.isoformat(NOW_DT + dt.timedelta(minutes=20))
    assert message["properties"] == {
        "feature_flag_key": "newCheckout",
        "details": "newCheckout: false ➔ true",
        "change_notes": "Missed while deploying",
        "product_id": PRODUCT_ID,
        "product_name": "Shop",
        "config_id": CONFIG_ID,
        "config_name": "Main config",
        "environment_id": ENVIRONMENT_ID,
        "environment_name": "Production",
        "url": f"https://app.configcat.com/{PRODUCT_ID}/{CONFIG_ID}/{ENVIRONMENT_ID}",
        "user_email": "joe@example.com",
        "user_full_name": "Joe Bloggs",
        "source": "audit_log",
        "audit_log_id": item["auditLogId"],
    }
    assert event.flag_key == "newCheckout"
    assert event.receipt is None
    assert event.status == Event.Status.PENDING


def test_reconciling_again_never_duplicates(reconciling, audit_log, send_webhook):
    send_webhook(reconciling)
    audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5))
    reconcile(reconciling, now=LATER)

    again = reconcile(reconciling, now=LATER + dt.timedelta(minutes=1))
    assert again.entries == 0  # the point moved past it
    since = reconcile(reconciling, since=NOW_DT - dt.timedelta(hours=1), now=LATER)
    assert (since.entries, since.forwarded) == (1, 0)
    assert since.skipped == {ALREADY_FORWARDED: 1}
    assert len(audit_events()) == 1


def test_a_lost_second_change_to_the_same_flag_is_forwarded(reconciling, audit_log, send_webhook):
    """One webhook accounts for one entry: the nearest; the other change was missed."""
    send_webhook(reconciling)
    audit_entry(audit_log, at=NOW_DT - dt.timedelta(seconds=2))
    lost = audit_entry(audit_log, at=NOW_DT + dt.timedelta(seconds=90), details="back to false")

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.matched, outcome.forwarded) == (1, 1)
    assert [e.payload["properties"]["audit_log_id"] for e in audit_events()] == [lost["auditLogId"]]


def test_changes_elsewhere_in_the_product_are_skipped_and_counted(
    reconciling, audit_log, send_webhook
):
    send_webhook(reconciling)
    audit_entry(audit_log, environment_id=OTHER_ENVIRONMENT_ID, setting_key="newCheckout")
    audit_entry(audit_log, config_id="another-config", setting_key="newCheckout")

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.entries, outcome.forwarded) == (2, 0)
    assert outcome.skipped == {OTHER_SCOPE: 2}
    assert audit_events() == []


def test_truncated_entries_are_forwarded_with_their_cut_marked(
    reconciling, audit_log, send_webhook
):
    send_webhook(reconciling)
    audit_entry(
        audit_log,
        setting_key="bigRules",
        details="bigRules: 500 targeting rules…",
        truncated=True,
        at=NOW_DT + dt.timedelta(minutes=30),
    )

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.forwarded, outcome.truncated) == (1, 1)
    (event,) = audit_events()
    details = event.payload["properties"]["details"]
    assert details == f"bigRules: 500 targeting rules… {TRUNCATION_MARK}"


def test_a_dry_run_writes_nothing_and_lists_what_it_would_forward(
    reconciling, audit_log, send_webhook
):
    send_webhook(reconciling)
    item = audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5))
    WebhookScope.objects.all().delete()  # learned by the webhook? no: by reconciliation

    outcome = reconcile(reconciling, now=LATER, dry_run=True)

    assert outcome.forwarded == 1
    assert [c["audit_log_id"] for c in outcome.changes] == [item["auditLogId"]]
    assert audit_events() == []
    reconciling.refresh_from_db()
    assert reconciling.reconciled_until is None
    assert reconciling.reconcile_checked_at is None
    assert not WebhookScope.objects.exists()


def test_without_a_webhook_yet_nothing_is_known_to_be_forwarded(reconciling, audit_log):
    audit_entry(audit_log, setting_key="newCheckout")
    outcome = reconcile(reconciling, now=LATER)
    assert (outcome.entries, outcome.forwarded) == (1, 0)
    assert outcome.skipped == {OTHER_SCOPE: 1}


def test_scopes_are_learned_from_webhooks_with_their_names(reconciling, audit_log, send_webhook):
    send_webhook(reconciling)
    reconcile(reconciling, now=LATER)
    (scope,) = WebhookScope.objects.filter(connection=reconciling)
    assert (scope.config_id, scope.environment_id) == (CONFIG_ID, ENVIRONMENT_ID)
    assert (scope.config_name, scope.environment_name) == ("Main config", "Production")


def test_a_long_outage_is_read_in_windows_and_the_point_follows(
    reconciling, audit_log, send_webhook, api_settings
):
    api_settings(RECONCILE_WINDOW_SECONDS=24 * 3600)
    send_webhook(reconciling)
    reconciling.reconciled_until = NOW_DT - dt.timedelta(minutes=1)
    reconciling.save()
    for day in range(3):
        at = NOW_DT + dt.timedelta(days=day, hours=1)
        audit_entry(audit_log, setting_key=f"flag{day}", at=at)
    now = NOW_DT + dt.timedelta(days=3)

    outcome = reconcile(reconciling, now=now)

    assert (outcome.windows, outcome.forwarded) == (3, 3)
    reconciling.refresh_from_db()
    assert reconciling.reconciled_until == now - dt.timedelta(minutes=10)


def test_an_unreadable_answer_writes_nothing_and_keeps_the_point(
    reconciling, audit_log, send_webhook, api_settings
):
    api_settings(RECONCILE_WINDOW_SECONDS=24 * 3600)
    send_webhook(reconciling)
    reconciling.reconciled_until = NOW_DT - dt.timedelta(minutes=1)
    reconciling.save()
    audit_entry(audit_log, setting_key="day0", at=NOW_DT + dt.timedelta(hours=1))
    audit_entry(audit_log, setting_key="day1", at=NOW_DT + dt.timedelta(days=1, hours=1))
    first = reconcile(reconciling, now=NOW_DT + dt.timedelta(days=1))
    assert (first.forwarded, first.error) == (1, "")

    audit_log.cut()  # the next answer stops half way
    now = NOW_DT + dt.timedelta(days=2)
    second = reconcile(reconciling, now=now)

    assert second.error_kind == "malformed"
    assert "cut off" in second.error
    assert second.forwarded == 0
    reconciling.refresh_from_db()
    assert reconciling.reconciled_until == first.until
    assert reconciling.reconcile_error == second.error
    assert reconciling.reconcile_failing_since == now
    assert [e.flag_key for e in audit_events()] == ["day0"]

    healed = reconcile(reconciling, now=now + dt.timedelta(minutes=1))
    assert (healed.error, healed.forwarded) == ("", 1)
    reconciling.refresh_from_db()
    assert reconciling.reconcile_error == ""
    assert reconciling.reconcile_failing_since is None
    assert [e.flag_key for e in audit_events()] == ["day0", "day1"]


def test_bad_credentials_show_as_the_connections_reconciliation_health(reconciling, audit_log):
    reconciling.configcat_api_password = "wrong-password-0000"
    reconciling.save()

    outcome = reconcile(reconciling, now=LATER)

    assert outcome.error_kind == "credentials"
    assert "(401)" in outcome.error
    reconciling.refresh_from_db()
    assert reconciling.reconcile_healthy is False
    assert reconciling.reconciled_until is None
    assert API_PASSWORD not in outcome.error
    assert "wrong-password" not in outcome.error


def test_rate_limiting_longer_than_the_run_can_wait_stops_it_cleanly(
    reconciling, audit_log, send_webhook, fixed_clock
):
    send_webhook(reconciling)
    audit_log.fail(429, times=1, retry_after="1")
    audit_log.fail(429, times=1, retry_after="3600")

    outcome = reconcile(reconciling, now=LATER)

    assert fixed_clock == [1.0]  # the short wait was honoured, the long one reported
    assert outcome.error_kind == "rate_limited"
    reconciling.refresh_from_db()
    assert reconciling.reconciled_until is None
    # Not read again before ConfigCat's Retry-After has passed.
    assert reconciling.reconcile_checked_at == LATER + dt.timedelta(seconds=3600 - 600)
    assert run_due(now=LATER + dt.timedelta(seconds=3599)) == []


def test_run_due_reads_each_connection_once_per_interval(reconciling, audit_log, make_connection):
    make_connection(name="No credential", product_id=PRODUCT_ID)
    make_connection(
        name="Disconnected",
        product_id=PRODUCT_ID,
        configcat_api_user="u",
        configcat_api_password="p",
        connected=False,
    )
    assert [o.connection.name for o in run_due(now=LATER)] == ["Production"]
    assert run_due(now=LATER + dt.timedelta(minutes=9)) == []
    assert [o.connection.name for o in run_due(now=LATER + dt.timedelta(minutes=10))] == [
        "Production"
    ]


def test_a_connection_in_another_process_hands_is_busy(reconciling, audit_log):
    SegmentConnection.objects.filter(pk=reconciling.pk).update(
        reconcile_locked_until=LATER + dt.timedelta(minutes=1)
    )
    with pytest.raises(Busy):
        reconcile(reconciling, now=LATER)
    assert run_due(now=LATER) == []
    assert audit_log.requests == []


def test_an_unexpected_failure_is_recorded_never_taken_for_health(
    reconciling, audit_log, send_webhook, monkeypatch
):
    send_webhook(reconciling)
    audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(received, "received_changes", broken)
    outcome = reconcile(reconciling, now=LATER)

    assert outcome.error_kind == "internal"
    assert "RuntimeError" in outcome.error
    reconciling.refresh_from_db()
    assert reconciling.reconcile_failing_since == LATER
    assert reconciling.reconciled_until is None
    assert reconciling.reconcile_locked_until is None
    assert audit_events() == []


def test_forwarded_changes_send_flag_changed_once_written(reconciling, audit_log, send_webhook):
    send_webhook(reconciling)
    audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=20))
    heard = []

    def receiver(sender, connection, event, **kwargs):
        # After the commit: the event is in the database for any connection to read.
        heard.append((connection.pk, Event.objects.get(pk=event.pk).flag_key, event.source))

    flag_changed.connect(receiver)
    try:
        reconcile(reconciling, now=LATER, dry_run=True)
        assert heard == []
        reconcile(reconciling, now=LATER)
    finally:
        flag_changed.disconnect(receiver)
    assert heard == [(reconciling.pk, "newCheckout", "audit_log")]
