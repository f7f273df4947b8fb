"""JSON shapes of the app's objects, shared by the management commands and the JSON API.

Secrets never appear: the write key and the signing keys only as their redacted hints.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from .models import Event, SegmentConnection, WebhookReceipt
from .redaction import redact, scrub_headers


class SegmentConnectionSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_label")
    endpoint = serializers.CharField()
    webhook_path = serializers.CharField(allow_null=True)
    write_key = serializers.CharField(source="write_key_hint")
    signing_keys = serializers.SerializerMethodField()
    healthy = serializers.BooleanField(source="is_healthy")
    reconciliation = serializers.SerializerMethodField()

    class Meta:
        model = SegmentConnection
        fields = [
            "id",
            "name",
            "region",
            "endpoint",
            "webhook_path",
            "write_key",
            "signing_keys",
            *SegmentConnection.PRODUCT_FIELDS,
            *SegmentConnection.FORWARDING_FIELDS,
            "connected",
            "connected_at",
            "disconnected_at",
            "healthy",
            *SegmentConnection.HEALTH_FIELDS,
            "reconciliation",
        ]
        read_only_fields = fields

    def get_reconciliation(self, obj: SegmentConnection) -> dict[str, Any]:
        """Reconciliation with ConfigCat's audit log: on or off, and its health."""
        field = serializers.DateTimeField()

        def moment(value: Any) -> Any:
            return None if value is None else field.to_representation(value)

        return {
            "enabled": obj.can_reconcile,
            "configcat_api_user": redact(obj.configcat_api_user),
            "healthy": obj.reconcile_healthy,
            "reconciled_until": moment(obj.reconciled_until),
            "last_read_at": moment(obj.reconcile_checked_at),
            "failing_since": moment(obj.reconcile_failing_since),
            "error": obj.reconcile_error,
        }

    def get_signing_keys(self, obj: SegmentConnection) -> list[str]:
        return [redact(key) for key in obj.signing_keys]


def connection_json(connection: SegmentConnection, **extra: Any) -> dict[str, Any]:
    """A connection as plain JSON-ready data (UUIDs and datetimes as strings)."""
    data = dict(SegmentConnectionSerializer(connection).data)
    data.update(extra)
    return data


class SegmentConnectionSummarySerializer(serializers.ModelSerializer):
    """What anyone who may see a connection's events sees of it: no endpoint, no key
    hints, no error text (``view_segmentconnection`` shows those)."""

    healthy = serializers.BooleanField(source="is_healthy")

    class Meta:
        model = SegmentConnection
        fields = ["id", "name", "connected", "healthy"]
        read_only_fields = fields


def connection_summary_json(connection: SegmentConnection, **extra: Any) -> dict[str, Any]:
    """A connection as :func:`connection_json`, without its details."""
    data = dict(SegmentConnectionSummarySerializer(connection).data)
    data.update(extra)
    return data


class EventSerializer(serializers.ModelSerializer):
    """An event as the event log's JSON API lists it (without the message it carries)."""

    connection = serializers.SerializerMethodField()
    kind = serializers.CharField()
    # Where a change came from ("webhook", "audit_log"); "source" is a Field attribute.
    change_source = serializers.CharField(source="source")
    source_display = serializers.CharField()
    status_display = serializers.CharField(source="get_status_display")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = [
            "id",
            "url",
            "created_at",
            "connection",
            "kind",
            "change_source",
            "source_display",
            "type",
            "event_name",
            "flag_key",
            "user_id",
            "message_id",
            "status",
            "status_display",
            "attempts",
            "next_attempt_at",
            "last_error",
            "queued_at",
            "delivered_at",
        ]
        read_only_fields = fields

    def get_connection(self, obj: Event) -> dict[str, str]:
        return {"id": str(obj.connection_id), "name": obj.connection.name}

    def get_url(self, obj: Event) -> str:
        """The event's page in the event log."""
        return reverse("configcat_segment:event_detail", args=[obj.pk])


class WebhookReceiptSerializer(serializers.ModelSerializer):
    headers = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()

    class Meta:
        model = WebhookReceipt
        fields = ["id", *WebhookReceipt.SHOWN_FIELDS, "headers", "body"]
        read_only_fields = fields

    def get_headers(self, obj: WebhookReceipt) -> dict[str, str]:
        return scrub_headers(obj.headers)

    def get_body(self, obj: WebhookReceipt) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")


class EventDetailSerializer(EventSerializer):
    """One event with the exact message sent to Segment and the webhook it came from."""

    payload = serializers.JSONField()
    receipt = WebhookReceiptSerializer(allow_null=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "payload", "receipt"]
        read_only_fields = fields
