"""Events in the admin: read-only, filterable, and retried with an action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..eventlog import actions
from ..eventlog.display import pretty_json
from ..eventlog.filters import KINDS, EventFilter
from ..models import Event
from .eventlog import event_log_url
from .search import BoundedSearchAdmin


class KindFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(KINDS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if self.value() in KINDS:
            return EventFilter(kind=str(self.value())).apply(queryset)
        return queryset


FIELDS: tuple[str, ...] = (
    "event_log_link",
    "connection",
    "type",
    "event_name",
    "flag_key",
    "user_id",
    "message_id",
    "status",
    "attempts",
    "created_at",
    "queued_at",
    "next_attempt_at",
    "delivered_at",
    "last_error",
    "receipt",
    "message",
)


@admin.register(Event)
class EventAdmin(BoundedSearchAdmin):
    list_display = [
        "id",
        "created_at",
        "connection",
        "kind",
        "flag_key",
        "user_id",
        "status",
        "attempts",
        "short_error",
    ]
    list_display_links = ["id", "created_at"]
    # Only filters whose choices cost no query over the events table (no DISTINCT scans).
    list_filter = ["status", KindFilter, "connection", "created_at"]
    # Exact matches, so each search is an index lookup even with millions of events.
    search_fields = ["=flag_key", "=user_id", "=message_id"]
    search_help_text = _("An exact flag key, user id or Segment messageId.")
    list_select_related = ["connection"]
    show_full_result_count = False
    actions = ["retry_selected"]

    class Media:
        css = {"all": ["configcat_segment/eventlog.css"]}

    fields = FIELDS
    readonly_fields = FIELDS

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # As in the event log: the receipt (even its webhook id) only for who may see it.
        fields = super().get_fields(request, obj)
        if request.user.has_perm("configcat_segment.view_webhookreceipt"):
            return fields
        return [name for name in fields if name != "receipt"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        # The list never shows the message; the one page that does loads it when needed.
        return super().get_queryset(request).defer("payload")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.display(description=_("event"))
    def kind(self, obj: Event) -> str:
        return obj.kind

    @admin.display(description=_("last error"))
    def short_error(self, obj: Event) -> str:
        return Truncator(obj.last_error).chars(80)

    @admin.display(description=_("message sent to Segment"))
    def message(self, obj: Event) -> str:
        return format_html('<pre class="cs-json">{}</pre>', pretty_json(obj.payload))

    @admin.display(description=_("event log"))
    def event_log_link(self, obj: Event) -> str:
        url = event_log_url(obj.pk)
        return format_html('<a href="{}">{}</a>', url, _("Open in the event log")) if url else "—"

    @admin.action(description=_("Retry selected failed or dead events"), permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        count = actions.retry(queryset, request.user)
        self.message_user(
            request,
            ngettext(
                "%d event is queued again.",
                "%d events are queued again (failed and dead ones only).",
                count,
            )
            % count,
            messages.SUCCESS if count else messages.WARNING,
        )
