"""ConfigCat's retries absorbed: an identical signed body with a new webhook id creates
nothing, and its receipt links to the original. And the event log shows each change's
source, with its receipt."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from configcat_segment.management.commands.configcat_segment_sample_webhook import send
from configcat_segment.models import Event, WebhookReceipt
from configcat_segment.reconcile import reconcile
from tests.webhooks.conftest import broken_parser as broken_parser  # a fixture
from tests.webhooks.conftest import configcat_body, headers_for

from .conftest import LATER, NOW_DT, audit_entry

Outcome = WebhookReceipt.Outcome


@pytest.fixture
def post(client):
    def post(connection, body: bytes, **sign):
        response = client.post(
            connection.webhook_path,
            data=body,
            content_type="application/json",
            headers=headers_for(body, **sign),
        )
        return response.status_code, json.loads(response.content)

    return post


@pytest.mark.django_db
def test_a_retry_with_a_new_id_creates_nothing_and_links_to_the_original(segment_connection, post):
    body = configcat_body()
    first = post(segment_connection, body)
    status, answer = post(segment_connection, body)  # a new webhook id each time

    assert first[1]["status"] == "processed"
    assert status == 200
    assert answer["status"] == "duplicate"
    assert answer["duplicate_of"] == first[1]["receipt"]
    retry = WebhookReceipt.objects.get(pk=answer["receipt"])
    assert retry.outcome == Outcome.DUPLICATE
    assert retry.duplicate_of_id == first[1]["receipt"]
    assert Event.objects.count() == 2  # the original's two settings, once


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", ["after the tolerance", "another body", "switched off", "original failed"]
)
def test_what_is_not_a_retry(segment_connection, post, settings, case, broken_parser):
    body = configcat_body()
    if case != "original failed":
        broken_parser.append(b"")  # the parser works from the first call on
    first_status, _first = post(segment_connection, body)
    if case == "after the tolerance":
        WebhookReceipt.objects.update(
            received_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
        )
    elif case == "another body":
        body = configcat_body({"ChangeNotes": "Another change"})
    elif case == "switched off":
        settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "WEBHOOK_DUPLICATE_SECONDS": 0}
    else:
        assert first_status == 503

    status, answer = post(segment_connection, body)

    assert (status, answer["status"]) == (200, "processed")
    assert WebhookReceipt.objects.filter(outcome=Outcome.DUPLICATE).count() == 0


@pytest.mark.django_db(transaction=True)
def test_identical_changes_within_the_window_are_recovered_by_reconciliation(
    reconciling, audit_log, send_webhook
):
    """The trade-off: the second of two identical changes is taken for a retry; the audit
    log has both, and reconciliation forwards the one no webhook accounts for."""
    send_webhook(
        reconciling,
        details=[{"settingKey": "isAwesomeFeatureEnabled", "event": "changed", "details": "on"}],
    )
    second = send_webhook(
        reconciling,
        details=[{"settingKey": "isAwesomeFeatureEnabled", "event": "changed", "details": "on"}],
    )
    assert second.json()["status"] == "duplicate"
    audit_entry(audit_log, details="on", at=NOW_DT - dt.timedelta(seconds=2))
    audit_entry(audit_log, details="on", at=NOW_DT + dt.timedelta(seconds=30))

    outcome = reconcile(reconciling, now=LATER)

    assert (outcome.matched, outcome.forwarded) == (1, 1)
    assert Event.objects.filter(flag_key="isAwesomeFeatureEnabled").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_bodies_at_once_make_one_original(live_server, make_connection):
    connection = make_connection()
    body = configcat_body()
    url = live_server.url + connection.webhook_path

    def deliver(_: int):
        headers = {"Content-Type": "application/json", **headers_for(body)}  # new id each
        return send(url, headers, body, 60)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(deliver, range(2)))

    assert sorted(answer["status"] for _, answer in results) == ["duplicate", "processed"]
    assert Event.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_event_log_shows_each_changes_source_and_links_its_receipt(
    reconciling, audit_log, send_webhook, staff_client
):
    first = send_webhook(reconciling).json()
    retry = send_webhook(reconciling).json()
    assert retry["status"] == "duplicate"
    item = audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=5))
    reconcile(reconciling, now=LATER)
    from_webhook = Event.objects.filter(receipt_id=first["receipt"]).first()
    from_audit_log = Event.objects.get(flag_key="newCheckout")

    page = staff_client.get(reverse("configcat_segment:event_list")).content.decode()
    assert page.count('data-field="source_display">audit log<') == 1
    assert page.count('data-field="source_display">webhook<') == 2

    detail = staff_client.get(reverse("configcat_segment:event_detail", args=[from_audit_log.pk]))
    assert f"ConfigCat's audit log (entry {item['auditLogId']})" in detail.content.decode()
    detail = staff_client.get(reverse("configcat_segment:event_detail", args=[from_webhook.pk]))
    receipt_url = reverse("admin:configcat_segment_webhookreceipt_change", args=[first["receipt"]])
    assert detail.content.decode().count(f'href="{receipt_url}"') == 2
    assert "1 retry absorbed" in detail.content.decode()

    api = staff_client.get(reverse("configcat_segment:api_events")).json()
    sources = {row["flag_key"]: row["change_source"] for row in api["results"]}
    assert sources == {
        "newCheckout": "audit_log",
        "isAwesomeFeatureEnabled": "webhook",
        "discountRate": "webhook",
    }


@pytest.mark.django_db
def test_get_webhooks_are_never_taken_for_retries(segment_connection, client):
    """A GET webhook has no body: all are alike, so none is compared with another."""
    answers = [
        client.get(segment_connection.webhook_path, headers=headers_for(b"")).json()
        for _ in range(2)
    ]
    assert [(a["status"], a["events"]) for a in answers] == [("processed_with_errors", 1)] * 2
    assert not WebhookReceipt.objects.filter(outcome=Outcome.DUPLICATE).exists()
    assert set(WebhookReceipt.objects.values_list("body_sha256", flat=True)) == {""}
