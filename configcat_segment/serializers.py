"""JSON shapes of the app's objects, shared by the management commands and the JSON API.

Secrets never appear: the write key only as its redacted hint.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import SegmentConnection
from .redaction import redact


class SegmentConnectionSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_label")
    endpoint = serializers.CharField()
    webhook_path = serializers.CharField(allow_null=True)
    write_key = serializers.CharField(source="write_key_hint")
    signing_keys = serializers.SerializerMethodField()
    healthy = serializers.BooleanField(source="is_healthy")

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
            "product_id",
            "product_name",
            "forward_changes",
            "forward_evaluations",
            "connected",
            "connected_at",
            "disconnected_at",
            "healthy",
            "unhealthy_since",
            "unhealthy_reason",
        ]
        read_only_fields = fields

    def get_signing_keys(self, obj: SegmentConnection) -> list[str]:
        return [redact(key) for key in obj.signing_keys]


def connection_json(connection: SegmentConnection, **extra: Any) -> dict[str, Any]:
    """A connection as plain JSON-ready data (UUIDs and datetimes as strings)."""
    data = dict(SegmentConnectionSerializer(connection).data)
    data.update(extra)
    return data
