"""The configs and environments whose changes a connection receives by webhook."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookScope(models.Model):
    """A ConfigCat config + environment a connection has received a webhook for.

    ConfigCat sends a webhook per config and environment; the audit log says neither on
    its entries, so reconciliation asks it about each scope a connection is known to
    forward (learned from the webhooks it received, with the names they carried).
    """

    connection = models.ForeignKey(
        "configcat_segment.SegmentConnection",
        on_delete=models.CASCADE,
        related_name="webhook_scopes",
    )
    config_id = models.CharField(_("config id"), max_length=255)
    environment_id = models.CharField(_("environment id"), max_length=255)
    config_name = models.CharField(_("config name"), max_length=255, blank=True)
    environment_name = models.CharField(_("environment name"), max_length=255, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook scope")
        verbose_name_plural = _("webhook scopes")
        ordering = ["config_name", "environment_name", "config_id", "environment_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "config_id", "environment_id"],
                name="configcat_segment_scope_unique",
            ),
        ]

    def __str__(self) -> str:
        config = self.config_name or self.config_id
        environment = self.environment_name or self.environment_id
        return f"{config} / {environment}"
