"""A Segment connection: where events go, and the ConfigCat webhook that feeds it.

Two groups of its fields, with what changes them, live in modules of their own:
:mod:`.connection_status` (connected, healthy, paused) and :mod:`.evaluation_policy`
(what of the evaluations is sent).
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..evaluations import policies
from ..redaction import redact
from ..segment import regions
from ..validators import (
    validate_endpoint,
    validate_signing_key,
    validate_single_line,
    validate_write_key,
)
from .connection_status import ConnectionStatus
from .evaluation_policy import EvaluationPolicyFields


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


class SegmentConnection(ConnectionStatus, EvaluationPolicyFields):
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
    # Kept by reconciliation (configcat_segment.reconcile), never by a form.
    RECONCILE_FIELDS: ClassVar[tuple[str, ...]] = (
        "reconciled_until",
        "reconcile_checked_at",
        "reconcile_failing_since",
        "reconcile_error",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        _("name"), max_length=100, unique=True, validators=[validate_single_line]
    )
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
        validators=[validate_single_line],
        help_text=_("Used when a webhook's URL does not carry the product id."),
    )
    product_name = models.CharField(
        _("ConfigCat product name"),
        max_length=200,
        blank=True,
        validators=[validate_single_line],
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
    # What of the evaluations it sends: the fields of EvaluationPolicyFields; whether it
    # is connected and healthy: those of ConnectionStatus.
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
        problems = policies.field_problems(self)
        if problems:
            raise ValidationError(problems)

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
    def webhook_path(self) -> str | None:
        """The path ConfigCat must call, or None while the app's URLs are not installed."""
        try:
            return reverse("configcat_segment:webhook", kwargs={"connection_id": self.pk})
        except NoReverseMatch:
            return None
