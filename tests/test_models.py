from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from configcat_segment.models import Event, SegmentConnection, WebhookReceipt

pytestmark = pytest.mark.django_db


def make_event(connection, message_id, **fields):
    values = {
        "connection": connection,
        "type": Event.Type.TRACK,
        "event_name": "Feature Flag Evaluated",
        "message_id": message_id,
        "payload": {"type": "track"},
    }
    values.update(fields)
    return Event.objects.create(**values)


def test_new_connection_is_connected_with_a_secret_salt(segment_connection):
    assert segment_connection.connected
    assert segment_connection.connected_at is not None
    assert len(segment_connection.message_id_salt) == 32
    other = SegmentConnection.objects.create(name="Other", write_key="x" * 20)
    assert other.message_id_salt != segment_connection.message_id_salt


def test_endpoint_follows_region(make_connection):
    assert make_connection(region="us").endpoint == "https://api.segment.io"
    assert make_connection(region="eu").endpoint == "https://events.eu1.segmentapis.com"
    custom = make_connection(region="custom", custom_endpoint="http://127.0.0.1:9000")
    assert custom.endpoint == "http://127.0.0.1:9000"
    assert custom.region_label == "http://127.0.0.1:9000"


def test_custom_region_without_endpoint_is_refused_by_the_database(make_connection):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_connection(region="custom", custom_endpoint="")


def test_clean_normalises_the_endpoint_and_clears_it_for_named_regions():
    c = SegmentConnection(
        name="A", write_key="k" * 20, region="custom", custom_endpoint=" https://x.example/seg/ "
    )
    c.full_clean()
    assert c.custom_endpoint == "https://x.example/seg"
    c.region = "eu"
    c.full_clean()
    assert c.custom_endpoint == ""


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"write_key": "has space inside"}, "write_key"),
        ({"write_key": "short"}, "write_key"),
        ({"signing_key": "not-a-configcat-key"}, "signing_key"),
        ({"signing_key_secondary": "configcat_whsk_"}, "signing_key_secondary"),
        ({"region": "custom", "custom_endpoint": ""}, "custom_endpoint"),
        ({"region": "custom", "custom_endpoint": "ftp://x"}, "custom_endpoint"),
        ({"region": "mars"}, "region"),
    ],
)
def test_validation_names_the_field(fields, error_field):
    values = {"name": "A", "write_key": "k" * 20, **fields}
    with pytest.raises(ValidationError) as info:
        SegmentConnection(**values).full_clean()
    assert error_field in info.value.message_dict


def test_connect_and_disconnect_record_when_and_who(segment_connection, superuser):
    assert segment_connection.disconnect(by=superuser) is True
    assert segment_connection.disconnect(by=superuser) is False
    segment_connection.refresh_from_db()
    assert not segment_connection.connected
    assert segment_connection.disconnected_by == superuser
    assert segment_connection.disconnected_at is not None
    assert segment_connection.connect(by=superuser) is True
    segment_connection.refresh_from_db()
    assert segment_connection.connected
    assert segment_connection.connected_by == superuser


def test_querysets_select_what_forwards(make_connection):
    a = make_connection()
    b = make_connection(forward_evaluations=False)
    c = make_connection(forward_changes=False)
    d = make_connection()
    d.disconnect()
    assert set(SegmentConnection.objects.forwarding_evaluations()) == {a, c}
    assert set(SegmentConnection.objects.connected()) == {a, b, c}


def test_health(segment_connection):
    assert segment_connection.is_healthy
    segment_connection.mark_unhealthy("401 Unauthorized")
    first_since = segment_connection.unhealthy_since
    segment_connection.mark_unhealthy("403 Forbidden")
    segment_connection.refresh_from_db()
    assert not segment_connection.is_healthy
    assert segment_connection.unhealthy_since == first_since
    assert segment_connection.unhealthy_reason == "403 Forbidden"
    segment_connection.mark_healthy()
    segment_connection.refresh_from_db()
    assert segment_connection.is_healthy
    assert segment_connection.unhealthy_reason == ""


def test_repr_and_str_never_show_the_write_key(segment_connection):
    assert segment_connection.write_key not in repr(segment_connection)
    assert segment_connection.write_key not in str(segment_connection)


def test_message_id_is_unique_across_connections(make_connection):
    a, b = make_connection(), make_connection()
    make_event(a, "m-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_event(b, "m-1")


def test_webhook_id_is_unique_per_connection_but_may_be_blank(make_connection):
    a, b = make_connection(), make_connection()
    WebhookReceipt.objects.create(connection=a, webhook_id="w1", method="POST")
    WebhookReceipt.objects.create(connection=b, webhook_id="w1", method="POST")
    WebhookReceipt.objects.create(connection=a, webhook_id="", method="POST")
    WebhookReceipt.objects.create(connection=a, webhook_id="", method="POST")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookReceipt.objects.create(connection=a, webhook_id="w1", method="POST")


def test_receipt_keeps_raw_bytes(segment_connection):
    body = b'{"x": "\xe2\x9e\x94"}\x00\xff'
    receipt = WebhookReceipt.objects.create(connection=segment_connection, method="POST", body=body)
    receipt.refresh_from_db()
    assert bytes(receipt.body) == body


def test_due_selects_pending_and_failed_whose_time_has_come(segment_connection):
    now = timezone.now()
    pending = make_event(segment_connection, "p")
    failed_due = make_event(
        segment_connection, "f1", status="failed", next_attempt_at=now - timedelta(seconds=1)
    )
    make_event(segment_connection, "f2", status="failed", next_attempt_at=now + timedelta(hours=1))
    make_event(segment_connection, "d", status="delivered")
    make_event(segment_connection, "x", status="dead")
    assert set(Event.objects.due()) == {pending, failed_due}


@pytest.mark.parametrize(
    ("status", "queued"),
    [("pending", True), ("failed", True), ("delivered", False), ("dead", False)],
)
def test_an_event_is_queued_while_pending_or_failed(status, queued):
    assert Event(status=status).is_queued is queued


def test_newest_first_and_kind(segment_connection):
    first = make_event(segment_connection, "1", event_name="Feature Flag Changed")
    second = make_event(segment_connection, "2", type="identify", event_name="")
    third = make_event(segment_connection, "3")
    assert list(Event.objects.all()) == [third, second, first]
    assert [e.kind for e in (first, second, third)] == ["changed", "identify", "evaluated"]


def test_deleting_a_connection_removes_its_history(segment_connection):
    make_event(segment_connection, "1")
    WebhookReceipt.objects.create(connection=segment_connection, method="POST")
    segment_connection.delete()
    assert Event.objects.count() == 0
    assert WebhookReceipt.objects.count() == 0
