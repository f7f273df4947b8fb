"""The receipt admin's "reprocess" action: what failed or was ignored can be forwarded."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from configcat_segment.models import Event, WebhookReceipt

from ..conftest import CsrfClient
from .conftest import configcat_body

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/configcat_segment/webhookreceipt/"


def reprocess(client, *receipts):
    return client.post_form(
        LIST_URL,
        {"action": "reprocess_selected", "_selected_action": [str(r.pk) for r in receipts]},
        follow=True,
    )


def test_a_failed_receipt_is_reprocessed_into_events(
    staff_client, segment_connection, send, broken_parser
):
    assert send(segment_connection, configcat_body()).status_code == 503
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "failed"
    assert not Event.objects.exists()

    response = reprocess(staff_client, receipt)
    assert "1 webhook reprocessed (Processed)." in response.content.decode()
    receipt.refresh_from_db()
    assert receipt.outcome == "processed"
    assert Event.objects.filter(receipt=receipt).count() == 2
    assert LogEntry.objects.get(object_id=str(receipt.pk)).change_message == "Reprocessed"


def test_webhooks_ignored_while_disconnected_are_forwarded_after_reconnecting(
    staff_client, segment_connection, send
):
    segment_connection.disconnect()
    send(segment_connection, configcat_body())
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "ignored"
    segment_connection.connect()

    reprocess(staff_client, receipt)
    receipt.refresh_from_db()
    assert receipt.outcome == "processed"
    assert Event.objects.count() == 2
    # Twice is harmless: the messageIds are deterministic, nothing is created again.
    reprocess(staff_client, receipt)
    assert Event.objects.count() == 2


def test_processed_receipts_are_left_alone(staff_client, segment_connection, send):
    send(segment_connection, configcat_body())
    receipt = WebhookReceipt.objects.get()
    response = reprocess(staff_client, receipt)
    assert "Nothing to reprocess" in response.content.decode()
    assert Event.objects.count() == 2
    assert not LogEntry.objects.exists()


def test_reprocessing_needs_the_change_permission(segment_connection, send, broken_parser):
    send(segment_connection, configcat_body())
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookreceipt"))
    client = CsrfClient()
    client.force_login(user)
    assert "reprocess_selected" not in client.get(LIST_URL).content.decode()
    reprocess(client, WebhookReceipt.objects.get())
    assert WebhookReceipt.objects.get().outcome == "failed"
