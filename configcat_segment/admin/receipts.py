"""Received webhooks in the admin: read-only, with the raw body and safe headers."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..eventlog.display import body_text
from ..models import WebhookReceipt
from ..redaction import scrub_headers
from ..webhooks import receipts
from .search import BoundedSearchAdmin

FIELDS: tuple[str, ...] = (
    "connection",
    *WebhookReceipt.SHOWN_FIELDS,
    "request_headers",
    "raw_body",
)


@admin.register(WebhookReceipt)
class WebhookReceiptAdmin(BoundedSearchAdmin):
    list_display = ["received_at", "connection", "webhook_id", "outcome", "short_error"]
    list_filter = ["outcome", "connection", "received_at"]
    search_fields = ["=webhook_id"]
    search_help_text = _("An exact webhook id.")
    list_select_related = ["connection"]
    show_full_result_count = False
    actions = ["reprocess_selected"]
    fields = FIELDS
    readonly_fields = FIELDS

    class Media:
        css = {"all": ["configcat_segment/eventlog.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookReceipt]:
        return super().get_queryset(request).defer("body", "headers")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(
        description=_("Reprocess selected failed or ignored webhooks"), permissions=["reprocess"]
    )
    def reprocess_selected(self, request: HttpRequest, queryset: QuerySet[WebhookReceipt]) -> None:
        chosen = list(
            queryset.filter(outcome__in=WebhookReceipt.REPROCESSABLE).select_related("connection")
        )
        outcomes = [receipts.reprocess(receipt).get_outcome_display() for receipt in chosen]
        if chosen and request.user.pk is not None:
            LogEntry.objects.log_actions(
                request.user.pk,
                WebhookReceipt.objects.filter(pk__in=[r.pk for r in chosen]),
                CHANGE,
                "Reprocessed",
            )
        summary = ", ".join(sorted({str(o) for o in outcomes}))
        self.message_user(
            request,
            ngettext(
                "%(count)d webhook reprocessed (%(outcomes)s).",
                "%(count)d webhooks reprocessed (%(outcomes)s).",
                len(chosen),
            )
            % {"count": len(chosen), "outcomes": summary}
            if chosen
            else _("Nothing to reprocess: only failed or ignored webhooks can be."),
            messages.SUCCESS if chosen else messages.WARNING,
        )

    @admin.display(description=_("error"))
    def short_error(self, obj: WebhookReceipt) -> str:
        return Truncator(obj.error).chars(80)

    @admin.display(description=_("headers (credentials never stored)"))
    def request_headers(self, obj: WebhookReceipt) -> str:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            sorted(scrub_headers(obj.headers).items()),
        )
        return format_html('<table class="cs-headers">{}</table>', rows)

    @admin.display(description=_("raw body"))
    def raw_body(self, obj: WebhookReceipt) -> str:
        return format_html('<pre class="cs-json">{}</pre>', body_text(obj.body))
