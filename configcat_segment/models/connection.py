"""A Segment connection: where events go, and the ConfigCat webhook that feeds it."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import secrets
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..redaction import redact
from ..segment import regions
from ..signals import connection_healthy, connection_unhealthy
from ..validators import validate_endpoint, validate_signing_key, validate_write_key


def _new_salt() -> str:
    return secrets.token_hex(16)


class Region(models.TextChoices):
    US = regions.US, _("US — api.segment.io")
    EU = regions.EU, _("EU — events.eu1.segmentapis.com")
    CUSTOM = regions.CUSTOM, _("Custom endpoint")


class SegmentConnectionQuerySet(models.QuerySet["SegmentConnection"]):
    def connected(self) -> SegmentConnectionQuerySet:
        return self.filter(connected=True)

    def forwarding_evaluations(self) -> SegmentConnectionQuerySet:
        return self.filter(connected=True, forward_evaluations=True)


class SegmentConnection(models.Model):
    """A Segment source that events are sent to, and the ConfigCat webhook that feeds it."""

    # Groups of fields, named once for the admin, its form and the JSON shapes.
    # Write-only: never shown, never sent back; only their redacted hints are.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "write_key",
        "signing_key",
        "signing_key_secondary",
        "configcat_api_user",
        "configcat_api_password",
    )
    # A ConfigCat Public API credential (both or neither), for reconciliation.
    API_CREDENTIAL_FIELDS: ClassVar[tuple[str, ...]] = (
        "configcat_api_user",
        "configcat_api_password",
    )
    # What ConfigCat does not say in its webhooks, added to every change.
    PRODUCT_FIELDS: ClassVar[tuple[str, ...]] = ("product_id", "product_name")
    FORWARDING_FIELDS: ClassVar[tuple[str, ...]] = ("forward_changes", "forward_evaluations")
    # Kept by the connect / disconnect buttons and by the dispatcher, never by a form.
    HISTORY_FIELDS: ClassVar[tuple[str, ...]] = (
        "connected",
        "connected_at",
        "connected_by",
        "disconnected_at",
        "disconnected_by",
    )
    HEALTH_FIELDS: ClassVar[tuple[str, ...]] = (
        "unhealthy_since",
        "unhealthy_reason",
        "delivery_paused_until",
    )
    # Kept by reconciliation (configcat_segment.reconcile), never by a form.
    RECONCILE_FIELDS: ClassVar[tuple[str, ...]] = (
        "reconciled_until",
        "reconcile_checked_at",
        "reconcile_failing_since",
        "reconcile_error",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=100, unique=True)
    write_key = models.CharField(_("write key"), max_length=255, validators=[validate_write_key])
    region = models.CharField(_("region"), max_length=10, choices=Region.choices, default=Region.US)
    custom_endpoint = models.CharField(
        _("custom endpoint"),
        max_length=500,
        blank=True,
        validators=[validate_endpoint],
        help_text=_(
            "Base URL of a Segment-compatible API, used when the region is “Custom”; "
            "/v1/batch is added when sending."
        ),
    )

    product_id = models.CharField(
        _("ConfigCat product id"),
        max_length=100,
        blank=True,
        help_text=_("Used when a webhook's URL does not carry the product id."),
    )
    product_name = models.CharField(
        _("ConfigCat product name"),
        max_length=200,
        blank=True,
        help_text=_("Webhooks carry no product name; this one is sent as product_name."),
    )
    signing_key = models.CharField(
        _("webhook signing key"), max_length=255, blank=True, validators=[validate_signing_key]
    )
    signing_key_secondary = models.CharField(
        _("second webhook signing key"),
        max_length=255,
        blank=True,
        validators=[validate_signing_key],
        help_text=_("While rotating keys, ConfigCat signs with both."),
    )
    # A ConfigCat Public API credential: with the product id, reconciliation reads the
    # product's audit log for changes no webhook delivered (configcat_segment.reconcile).
    configcat_api_user = models.CharField(
        _("ConfigCat Public API username"), max_length=255, blank=True
    )
    configcat_api_password = models.CharField(
        _("ConfigCat Public API password"), max_length=255, blank=True
    )

    forward_changes = models.BooleanField(
        _("forward flag changes"), default=True, help_text=_("“Feature Flag Changed” events.")
    )
    forward_evaluations = models.BooleanField(
        _("forward flag evaluations"),
        default=True,
        help_text=_("“Feature Flag Evaluated” events and identify calls."),
    )

    connected = models.BooleanField(_("connected"), default=True)
    connected_at = models.DateTimeField(
        _("connected at"), null=True, blank=True, default=timezone.now
    )
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("connected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    disconnected_at = models.DateTimeField(_("disconnected at"), null=True, blank=True)
    disconnected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("disconnected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # Set when Segment refuses the write key (401/403); events wait until it is fixed.
    unhealthy_since = models.DateTimeField(_("unhealthy since"), null=True, blank=True)
    unhealthy_reason = models.TextField(_("unhealthy because"), blank=True)
    # Set when Segment is unavailable (5xx, 429, no answer) or refuses the connection: no
    # request is made for it before then, whatever events are written meanwhile.
    delivery_paused_until = models.DateTimeField(
        _("delivery paused until"), null=True, blank=True, editable=False
    )

    # Reconciliation with ConfigCat's audit log: every change up to ``reconciled_until``
    # has been read (advanced only after a window was read and written whole); the
    # others are kept by the reconciliation run (see configcat_segment.reconcile.run).
    reconciled_until = models.DateTimeField(
        _("reconciled until"), null=True, blank=True, editable=False
    )
    reconcile_checked_at = models.DateTimeField(
        _("audit log last read"), null=True, blank=True, editable=False
    )
    reconcile_failing_since = models.DateTimeField(
        _("reconciliation failing since"), null=True, blank=True, editable=False
    )
    reconcile_error = models.TextField(_("reconciliation error"), blank=True, editable=False)
    # A process reconciling this connection holds it until then (a claim, not a lock).
    reconcile_locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    # Secret salt for deterministic Segment messageIds: Segment dedupes messageIds across
    # all workspaces, so ids derived from public data alone could collide with strangers'.
    message_id_salt = models.CharField(max_length=64, default=_new_salt, editable=False)

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = SegmentConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("Segment connection")
        verbose_name_plural = _("Segment connections")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(region=Region.CUSTOM) | ~Q(custom_endpoint=""),
                name="configcat_segment_connection_custom_needs_endpoint",
                violation_error_message=_("A custom region needs a custom endpoint URL."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<SegmentConnection {self.pk} {self.name!r}>"

    def clean(self) -> None:
        super().clean()
        if self.region == Region.CUSTOM:
            if not self.custom_endpoint:
                raise ValidationError(
                    {"custom_endpoint": _("Enter the endpoint URL for a custom region.")}
                )
            # When the URL is invalid, the field's own validator reports it.
            with contextlib.suppress(regions.InvalidEndpoint):
                self.custom_endpoint = regions.normalise_endpoint(self.custom_endpoint)
        else:
            self.custom_endpoint = ""

    @property
    def endpoint(self) -> str:
        """The base URL events are posted to (``/v1/batch`` is added)."""
        return regions.endpoint_for(self.region, self.custom_endpoint)

    @property
    def region_label(self) -> str:
        """``us``, ``eu`` or the custom URL: how commands and the API show the region."""
        return self.custom_endpoint if self.region == Region.CUSTOM else self.region

    @property
    def signing_keys(self) -> list[str]:
        return [key for key in (self.signing_key, self.signing_key_secondary) if key]

    @property
    def can_reconcile(self) -> bool:
        """Whether it has what reading ConfigCat's audit log takes: a product and an API
        credential."""
        return bool(self.product_id and self.configcat_api_user and self.configcat_api_password)

    @property
    def reconcile_healthy(self) -> bool | None:
        """None when it cannot reconcile; else whether its last reconciliation worked."""
        if not self.can_reconcile:
            return None
        return self.reconcile_failing_since is None

    @property
    def write_key_hint(self) -> str:
        return redact(self.write_key)

    @property
    def is_healthy(self) -> bool:
        return self.unhealthy_since is None

    def is_paused(self, now: dt.datetime) -> bool:
        """Whether delivery waits (backoff, ``Retry-After`` or a probe) at ``now``."""
        return self.delivery_paused_until is not None and self.delivery_paused_until > now

    @property
    def webhook_path(self) -> str | None:
        """The path ConfigCat must call, or None while the app's URLs are not installed."""
        try:
            return reverse("configcat_segment:webhook", kwargs={"connection_id": self.pk})
        except NoReverseMatch:
            return None

    def connect(self, by: Any = None) -> bool:
        """Connect (or reconnect). Returns False when it already was connected."""
        if self.connected:
            return False
        self.connected = True
        self.connected_at = timezone.now()
        self.connected_by = by if getattr(by, "pk", None) else None
        self.save(update_fields=["connected", "connected_at", "connected_by", "updated_at"])
        return True

    def disconnect(self, by: Any = None) -> bool:
        """Stop forwarding; history stays. Returns False when it already was disconnected."""
        if not self.connected:
            return False
        self.connected = False
        self.disconnected_at = timezone.now()
        self.disconnected_by = by if getattr(by, "pk", None) else None
        self.save(update_fields=["connected", "disconnected_at", "disconnected_by", "updated_at"])
        return True

    def mark_unhealthy(self, reason: str) -> None:
        """Record that Segment refused this connection's credentials."""
        now = timezone.now()
        became = (
            type(self)
            .objects.filter(pk=self.pk, unhealthy_since__isnull=True)
            .update(unhealthy_since=now)
        )
        type(self).objects.filter(pk=self.pk).update(unhealthy_reason=reason, updated_at=now)
        self.refresh_from_db(fields=["unhealthy_since", "unhealthy_reason", "updated_at"])
        if became:
            self._send_after_commit(connection_unhealthy, reason=reason)

    def mark_healthy(self) -> None:
        if self.unhealthy_since is None:
            return
        recovered = (
            type(self)
            .objects.filter(pk=self.pk, unhealthy_since__isnull=False)
            .update(unhealthy_since=None, unhealthy_reason="", updated_at=timezone.now())
        )
        self.unhealthy_since, self.unhealthy_reason = None, ""
        if recovered:
            self._send_after_commit(connection_healthy)

    def _send_after_commit(self, signal: Signal, **kwargs: Any) -> None:
        """Send ``signal`` (robustly) once the current transaction commits."""
        send = functools.partial(signal.send_robust, sender=type(self), connection=self, **kwargs)
        transaction.on_commit(send, using=router.db_for_write(type(self), instance=self))
