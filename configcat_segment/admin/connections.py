"""The admin is the console: connect, disconnect and reconnect Segment sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from ..constants import WEBHOOK_BODY_TEMPLATE
from ..forms import (
    CONFIGCAT_FIELDS,
    EXPOSURE_FIELDS,
    PERSONAL_DATA_FIELDS,
    REMOVABLE_SECRETS,
    REMOVE_BOXES,
    SECRET_FIELDS,
    SEGMENT_FIELDS,
    SegmentConnectionForm,
)
from ..models import SegmentConnection
from ..operations.admin import TestSendAdmin
from ..redaction import redact
from .search import BoundedSearchAdmin

sensitive_secrets = method_decorator(sensitive_post_parameters(*SECRET_FIELDS))

REDACTED_DISPLAYS = {name: f"{name}_redacted" for name in SECRET_FIELDS}


STATUS = _("Status")
# Kept by the buttons and the dispatcher, shown read-only.
STATUS_FIELDS = [
    "id",
    *SegmentConnection.HISTORY_FIELDS,
    *SegmentConnection.HEALTH_FIELDS,
    "reconciliation_health",
    "reconciled_until",
    "reconcile_checked_at",
    "webhook_scopes_display",
]
FIELDSETS: list[tuple[Any, Sequence[str]]] = [
    (None, SEGMENT_FIELDS),
    (_("ConfigCat"), CONFIGCAT_FIELDS),
    (_("What it forwards"), SegmentConnection.FORWARDING_FIELDS),
    (_("Which evaluations (exposures)"), EXPOSURE_FIELDS),
    (_("Personal data in evaluations"), PERSONAL_DATA_FIELDS),
    (STATUS, STATUS_FIELDS),
]


@admin.register(SegmentConnection)
class SegmentConnectionAdmin(TestSendAdmin, BoundedSearchAdmin):
    form = SegmentConnectionForm
    list_display = [
        "name",
        "region_display",
        "connected",
        "healthy",
        "reconciling",
        "forward_changes",
        "forward_evaluations",
        "connected_at",
    ]
    list_filter = ["connected", "region", "forward_changes", "forward_evaluations"]
    search_fields = ["name", "product_id", "product_name"]
    actions = ["connect_selected", "disconnect_selected", "send_test_events"]
    readonly_fields = STATUS_FIELDS

    @admin.display(description=_("region"), ordering="region")
    def region_display(self, obj: SegmentConnection) -> str:
        return obj.region_label

    @admin.display(description=_("healthy"), boolean=True)
    def healthy(self, obj: SegmentConnection) -> bool:
        return obj.is_healthy

    @admin.display(description=_("reconciled"), boolean=True)
    def reconciling(self, obj: SegmentConnection) -> bool | None:
        """Unknown (no credential), yes (the last reading worked) or no."""
        return obj.reconcile_healthy

    @admin.display(description=_("reconciliation with the audit log"))
    def reconciliation_health(self, obj: SegmentConnection) -> str:
        if not obj.can_reconcile:
            return gettext("Off: it needs the product id and a Public API credential.")
        if obj.reconcile_failing_since is not None:
            return gettext("Failing since %(since)s: %(error)s") % {
                "since": date_format(localtime(obj.reconcile_failing_since), "DATETIME_FORMAT"),
                "error": obj.reconcile_error,
            }
        if obj.reconcile_checked_at is None:
            return gettext("On; not read yet.")
        return gettext("Working.")

    @admin.display(description=_("configs and environments it receives webhooks for"))
    def webhook_scopes_display(self, obj: SegmentConnection) -> str:
        scopes = [str(scope) for scope in obj.webhook_scopes.all()]
        return ", ".join(scopes) if scopes else gettext("None yet (learned from its webhooks).")

    @admin.display(description=_("ConfigCat Public API username"))
    def configcat_api_user_redacted(self, obj: SegmentConnection) -> str:
        return redact(obj.configcat_api_user)

    @admin.display(description=_("ConfigCat Public API password"))
    def configcat_api_password_redacted(self, obj: SegmentConnection) -> str:
        return redact(obj.configcat_api_password)

    @admin.display(description=_("write key"))
    def write_key_redacted(self, obj: SegmentConnection) -> str:
        return redact(obj.write_key)

    @admin.display(description=_("webhook signing key"))
    def signing_key_redacted(self, obj: SegmentConnection) -> str:
        return redact(obj.signing_key)

    @admin.display(description=_("second webhook signing key"))
    def signing_key_secondary_redacted(self, obj: SegmentConnection) -> str:
        return redact(obj.signing_key_secondary)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), *REDACTED_DISPLAYS.values()]

    def get_fieldsets(self, request: HttpRequest, obj: SegmentConnection | None = None) -> Any:
        # The "remove this key" boxes only exist when there is a stored key to remove,
        # and a connection being added has no status yet.
        hidden = set(REMOVE_BOXES)
        if obj is not None:
            hidden -= {f"clear_{name}" for name in REMOVABLE_SECRETS if getattr(obj, name)}
        # Without the change permission every field is shown read-only, as its value:
        # secrets must then be shown through their redacted displays.
        shown = (
            REDACTED_DISPLAYS
            if obj is not None and not self.has_change_permission(request, obj)
            else {}
        )
        if shown:
            hidden |= set(REMOVE_BOXES)
        return [
            (title, {"fields": [shown.get(n, n) for n in names if n not in hidden]})
            for title, names in FIELDSETS
            if obj is not None or title != STATUS
        ]

    # -- pages -------------------------------------------------------------------------

    @sensitive_secrets
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {"title": _("Connect a Segment source"), **(extra_context or {})}
        return super().add_view(request, form_url, extra_context)

    @sensitive_secrets
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        context: dict[str, Any] = {"webhook_body_template": WEBHOOK_BODY_TEMPLATE}
        if obj is not None and obj.webhook_path:
            context["webhook_url"] = request.build_absolute_uri(obj.webhook_path)
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )

    def save_model(
        self, request: HttpRequest, obj: SegmentConnection, form: Any, change: bool
    ) -> None:
        if not change:
            obj.connected_by = request.user if request.user.is_authenticated else None
            super().save_model(request, obj, form, change)
            return
        # Only what the form edits: the connection's state and health are kept by others
        # (the buttons, the dispatcher) and may have changed since the form was loaded.
        edited = {f.name for f in obj._meta.concrete_fields} & set(form.cleaned_data)
        obj.save(update_fields=[*sorted(edited), "updated_at"])

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/connect/",
                self.admin_site.admin_view(self.connect_view),
                name="{}_{}_connect".format(*info),
            ),
            path(
                "<path:object_id>/disconnect/",
                self.admin_site.admin_view(self.disconnect_view),
                name="{}_{}_disconnect".format(*info),
            ),
            *super().get_urls(),
        ]

    # -- connect and disconnect --------------------------------------------------------

    def _switch(self, request: HttpRequest, connection: SegmentConnection, connect: bool) -> bool:
        changed = (connection.connect if connect else connection.disconnect)(by=request.user)
        if changed:
            self.log_change(request, connection, "Connected" if connect else "Disconnected")
        return changed

    def _switch_view(self, request: HttpRequest, object_id: str, connect: bool) -> HttpResponse:
        connection = get_object_or_404(SegmentConnection, pk=self._pk(object_id))
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        if self._switch(request, connection, connect):
            message = (
                _("“%(name)s” is connected again.")
                if connect
                else _("“%(name)s” is disconnected; it keeps its history and forwards nothing.")
            )
            self.message_user(request, message % {"name": connection.name}, messages.SUCCESS)
        else:
            state = _("connected") if connect else _("disconnected")
            self.message_user(
                request,
                _("“%(name)s” was already %(state)s.") % {"name": connection.name, "state": state},
                messages.INFO,
            )
        return HttpResponseRedirect(
            reverse("admin:configcat_segment_segmentconnection_change", args=[connection.pk])
        )

    def _pk(self, object_id: str) -> Any:
        field = self.opts.pk
        try:
            return field.to_python(object_id)
        except ValidationError as exc:  # a malformed id is a missing object, not a 500
            raise Http404(_("No Segment connection has this id.")) from exc

    @method_decorator(require_POST)
    def connect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._switch_view(request, object_id, connect=True)

    @method_decorator(require_POST)
    def disconnect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._switch_view(request, object_id, connect=False)

    def _switch_selected(
        self, request: HttpRequest, queryset: QuerySet[SegmentConnection], connect: bool
    ) -> None:
        count = sum(self._switch(request, c, connect=connect) for c in queryset)
        if connect:
            text = ngettext("%d connection connected.", "%d connections connected.", count)
        else:
            text = ngettext("%d connection disconnected.", "%d connections disconnected.", count)
        self.message_user(request, text % count, messages.SUCCESS)

    @admin.action(description=_("Connect / reconnect selected connections"), permissions=["change"])
    def connect_selected(self, request: HttpRequest, queryset: QuerySet[SegmentConnection]) -> None:
        self._switch_selected(request, queryset, connect=True)

    @admin.action(description=_("Disconnect selected connections"), permissions=["change"])
    def disconnect_selected(
        self, request: HttpRequest, queryset: QuerySet[SegmentConnection]
    ) -> None:
        self._switch_selected(request, queryset, connect=False)
