"""A received webhook: the raw request, kept before it is read, and what came of it."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .connection import SegmentConnection


class WebhookReceipt(models.Model):
    """One webhook request whose signature verified, stored before it is parsed."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received, not processed yet")
        PROCESSED = "processed", _("Processed")
        PROCESSED_WITH_ERRORS = "processed_with_errors", _("Processed, with problems")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")
        DUPLICATE = "duplicate", _("Duplicate: ConfigCat's retry of an earlier webhook")

    # Receipts that produced no events: processing failed, or the connection was not
    # forwarding changes at the time (reprocessing forwards them if it is now).
    REPROCESSABLE: ClassVar[tuple[str, ...]] = (Outcome.FAILED, Outcome.IGNORED, Outcome.RECEIVED)
    # What the admin and the JSON API show of a receipt, besides its headers and body
    # (both shown scrubbed of secrets).
    SHOWN_FIELDS: ClassVar[tuple[str, ...]] = (
        "webhook_id",
        "webhook_timestamp",
        "received_at",
        "method",
        "remote_addr",
        "outcome",
        "error",
        "duplicate_of",
    )

    connection = models.ForeignKey(
        SegmentConnection, on_delete=models.CASCADE, related_name="receipts"
    )
    webhook_id = models.CharField(_("webhook id"), max_length=255, blank=True)
    webhook_timestamp = models.DateTimeField(_("webhook timestamp"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    method = models.CharField(max_length=10)
    headers = models.JSONField(_("headers (secrets removed)"), default=dict)
    body = models.BinaryField(_("raw body"), default=b"")
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, default=Outcome.RECEIVED)
    error = models.TextField(_("error"), blank=True)
    # ConfigCat may retry a webhook with a new id: an identical body received shortly
    # after another is that retry (see webhooks.retries), and links to the original.
    body_sha256 = models.CharField(_("SHA-256 of the body"), max_length=64, blank=True)
    duplicate_of = models.ForeignKey(
        "self",
        verbose_name=_("duplicate of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
    )

    class Meta:
        verbose_name = _("webhook receipt")
        verbose_name_plural = _("webhook receipts")
        ordering = ["-id"]
        constraints = [
            # Idempotency is a constraint, not a lookup: a redelivered webhook is refused
            # by the database, even when two deliveries race.
            models.UniqueConstraint(
                fields=["connection", "webhook_id"],
                condition=~Q(webhook_id=""),
                name="configcat_segment_receipt_unique_webhook",
            ),
        ]
        indexes = [
            models.Index(fields=["connection", "-received_at"], name="cs_receipt_conn_time"),
            # The search for the original of a retried webhook (its body's hash).
            models.Index(
                fields=["connection", "body_sha256", "-received_at"],
                condition=~Q(body_sha256=""),
                name="cs_receipt_conn_body",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook {self.webhook_id or self.pk} ({self.get_outcome_display()})"
