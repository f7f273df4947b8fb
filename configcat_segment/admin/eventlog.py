"""An "Event log" entry on the admin index that opens the event log page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, URLPattern, path, reverse

from ..models import EventLog


def event_log_url(*args: Any) -> str | None:
    """The event log page (or an event's page), or None while the app's URLs are not installed."""
    name = "configcat_segment:event_detail" if args else "configcat_segment:event_list"
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@admin.register(EventLog)
class EventLogAdmin(admin.ModelAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("configcat_segment.view_event") and bool(event_log_url())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(event_log_url() or reverse("admin:index"))
