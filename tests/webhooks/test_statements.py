"""What a signed webhook costs the database: five statements, the raw receipt first."""

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from configcat_segment.models import Event, WebhookReceipt

from .conftest import configcat_body

pytestmark = pytest.mark.django_db(transaction=True)

# The transaction's own boundaries, which any write needs (SQLite's BEGIN IMMEDIATE is
# sent as a statement, PostgreSQL's BEGIN is not).
BOUNDARIES = ("BEGIN", "COMMIT")


def statements(captured):
    sql = [q["sql"] for q in captured.captured_queries]
    return [s for s in sql if not s.upper().startswith(BOUNDARIES)]


def shape(captured):
    return [
        s.split()[0] + (" " + s.split()[2] if s.startswith("INSERT") else "")
        for s in statements(captured)
    ]


LEAN = [
    "SELECT",  # the connection
    'INSERT "configcat_segment_webhookreceipt"',  # the raw receipt, before the events
    "SAVEPOINT",  # so that a failed events insert leaves the receipt, with the error
    'INSERT "configcat_segment_event"',  # every event in one statement
    "RELEASE",
]


def test_a_signed_webhook_that_creates_events_takes_five_statements(
    segment_connection, send, settings
):
    settings.CONFIGCAT_SEGMENT = {**settings.CONFIGCAT_SEGMENT, "WEBHOOK_DUPLICATE_SECONDS": 0}
    segment_connection.refresh_from_db()
    with CaptureQueriesContext(db_connection) as captured:
        response = send(segment_connection, configcat_body())
    assert response.status_code == 200
    assert Event.objects.count() == 2
    assert shape(captured) == LEAN
    receipt = WebhookReceipt.objects.get()
    assert (receipt.outcome, receipt.error) == ("processed", "")


def test_absorbing_configcat_retries_costs_two_more(segment_connection, send):
    """WEBHOOK_DUPLICATE_SECONDS (on by default): the connection's webhooks one at a time
    (a lock), and the lookup of an identical body received recently."""
    segment_connection.refresh_from_db()
    with CaptureQueriesContext(db_connection) as captured:
        response = send(segment_connection, configcat_body())
    assert response.status_code == 200
    assert Event.objects.count() == 2
    assert shape(captured) == [*LEAN[:2], "SELECT", "SELECT", *LEAN[2:]]


def test_a_webhook_whose_events_cannot_be_written_keeps_its_receipt_with_the_error(
    segment_connection, send, monkeypatch
):
    from configcat_segment.delivery import outbox

    def refuse(events, **kwargs):
        Event.objects.create(connection=segment_connection, type="track", message_id="x")
        Event.objects.create(connection=segment_connection, type="track", message_id="x")

    monkeypatch.setattr(outbox, "enqueue", refuse)
    response = send(segment_connection, configcat_body(), webhook_id="w-1")
    assert response.status_code == 503
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "failed"
    assert "IntegrityError" in receipt.error
    assert not Event.objects.exists()  # rolled back to the savepoint, the receipt kept
