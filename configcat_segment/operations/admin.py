"""The admin's "Send test event": a button on a connection's page and a list action.

Both need the change permission, write a ``LogEntry`` per connection with Segment's answer,
and show the answer inline (status, body, time taken) with what it means in words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..models import SegmentConnection
from . import probe

# Each test may wait HTTP_TIMEOUT_SECONDS for an answer, one after the other.
MAX_CONNECTIONS_PER_TEST = 10
TEMPLATE = "admin/configcat_segment/segmentconnection/test_send.html"

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[SegmentConnection]
else:  # generic only in the stubs
    ModelAdmin = admin.ModelAdmin


class TestSendAdmin(ModelAdmin):
    """A ``ModelAdmin`` for ``SegmentConnection`` that can send test events."""

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_send_view),
                name="{}_{}_test".format(*info),
            ),
            *super().get_urls(),
        ]

    @method_decorator(never_cache)
    @method_decorator(require_POST)
    def test_send_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        try:
            pk = self.opts.pk.to_python(object_id)
        except ValidationError as exc:  # a malformed id is a missing object, not a 500
            raise Http404(_("No Segment connection has this id.")) from exc
        connection = get_object_or_404(SegmentConnection, pk=pk)
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        return self.show_test_results(request, [connection])

    @admin.action(description=_("Send a test event to Segment"), permissions=["change"])
    def send_test_events(
        self, request: HttpRequest, queryset: QuerySet[SegmentConnection]
    ) -> HttpResponse | None:
        connections = list(queryset.order_by("name")[: MAX_CONNECTIONS_PER_TEST + 1])
        if len(connections) > MAX_CONNECTIONS_PER_TEST:
            self.message_user(
                request,
                _("Select at most %(n)d connections to test at once.")
                % {"n": MAX_CONNECTIONS_PER_TEST},
                messages.ERROR,
            )
            return None
        return self.show_test_results(request, connections)

    def show_test_results(
        self, request: HttpRequest, connections: list[SegmentConnection]
    ) -> HttpResponse:
        results = []
        for connection in connections:
            result = probe.send_test_events(connection)
            self.log_change(request, connection, result.summary())
            results.append(result)
        title = (
            _("Test of “%(name)s”") % {"name": connections[0].name}
            if len(connections) == 1
            else _("Test of %(n)d connections") % {"n": len(connections)}
        )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "results": results,
            "test_event": probe.TEST_EVENT,
            "test_user_id": probe.TEST_USER_ID,
        }
        return TemplateResponse(request, TEMPLATE, context)
