"""What the demo's Segment-compatible receiver got (a stand-in for Segment's debugger)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ReceivedMessage(models.Model):
    received_at = models.DateTimeField(default=timezone.now)
    # The write key it came with, redacted: enough to tell sources apart, never usable.
    source = models.CharField(max_length=20, blank=True)
    type = models.CharField(max_length=20)
    event = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=255, blank=True)
    anonymous_id = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event}".strip()
