"""The event log pages: the list with its overview, one event, and the repair actions.

They live outside the admin's URLs but behave like admin pages: the same login (through
the project's default admin site), the same base template and context, and the model
permissions ``configcat_segment.view_event`` to look and ``change_event`` to act. What
belongs to other models is shown only with their own view permission, as in the admin:
the webhook receipt behind an event (``view_webhookreceipt``) and the details of a
connection beyond its name (``view_segmentconnection``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..models import Event, EventClaim
from ..redaction import scrub_headers
from . import actions, chart, export, overview
from .display import body_text, pretty_json
from .filters import KINDS
from .listing import list_events, read_filter
from .rows import event_rows, row_template_is_packaged, rows_html

VIEW = "configcat_segment.view_event"
CHANGE = "configcat_segment.change_event"
VIEW_RECEIPTS = "configcat_segment.view_webhookreceipt"
VIEW_CONNECTIONS = "configcat_segment.view_segmentconnection"

View = Callable[..., HttpResponseBase]

CHART_SERIES = [(status, dict(Event.Status.choices)[status]) for status in overview.CHART_STATUSES]


def staff_view(permission: str) -> Callable[[View], View]:
    """Admin login for anyone not signed in as staff, 403 for staff without ``permission``."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        @never_cache
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not admin.site.has_permission(request):
                login = reverse("admin:login", current_app=admin.site.name)
                return redirect_to_login(request.get_full_path(), login)
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def render_page(
    request: HttpRequest, template: str, title: str, context: dict[str, Any]
) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": title,
        "can_change": request.user.has_perm(CHANGE),
        "can_view_connections": request.user.has_perm(VIEW_CONNECTIONS),
        "opts": Event._meta,
        **context,
    }
    return TemplateResponse(request, [f"configcat_segment/{template}"], context)


def local_minute(moment: dt.datetime) -> str:
    """``moment`` as the filter's inputs (``datetime-local``) write it, in the current zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def list_url(query: str = "") -> str:
    return reverse("configcat_segment:event_list") + (query if query != "?" else "")


# -- the list ------------------------------------------------------------------------------


@staff_view(VIEW)
def event_list(request: HttpRequest) -> HttpResponse:
    listing = list_events(request.GET)
    rows = event_rows(listing.page.items)
    health = overview.connection_health()
    return render_page(
        request,
        "event_list.html",
        _("Event log"),
        {
            "listing": listing,
            "events": listing.page.items,
            "rows": rows,
            # Written in Python unless a project overrides the row's template.
            "rows_html": rows_html(rows) if row_template_is_packaged() else None,
            "filter": listing.filter,
            "errors": listing.errors,
            "health": health,
            "evaluation_counters": overview.evaluation_counters(),
            "chart": hourly_chart(overview.events_per_hour()),
            "chart_series": CHART_SERIES,
            "connections": [row.connection for row in health],
            "kinds": KINDS.items(),
            "statuses": Event.Status.choices,
            "next_url": listing.query_string(listing.page.next) if listing.page.next else None,
            "previous_url": (
                listing.query_string(listing.page.previous) if listing.page.previous else None
            ),
            "first_url": listing.query_string() if "cursor" in request.GET else None,
            "filter_query": listing.query_string(),
            "api_url": reverse("configcat_segment:api_events") + listing.query_string(),
            "export_urls": [
                (label, reverse("configcat_segment:event_export", args=[fmt]) + query)
                for fmt, label, query in [
                    ("csv", _("CSV"), listing.query_string()),
                    ("jsonl", _("JSON Lines"), listing.query_string()),
                ]
            ],
            "health_api_url": reverse("configcat_segment:api_connections"),
        },
    )


@staff_view(VIEW)
def event_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """Every event the filter shows (not only a page), as CSV or JSON Lines."""
    event_filter, errors = read_filter(request.GET)
    if errors:
        # Never widen a download because part of the filter could not be read.
        return HttpResponseBadRequest(
            _("Nothing was exported: the filter is not valid (%(errors)s).")
            % {"errors": " ".join(errors.values())},
            content_type="text/plain; charset=utf-8",
        )
    return export.response(event_filter, fmt)


def hourly_chart(hours: list[overview.HourlyCounts]) -> str:
    """The overview's chart: a bar per hour, linking to that hour's events."""
    bars = [
        chart.Bar(
            label=formats.time_format(hour.start, "H:i"),
            title=_("%(start)s to %(end)s")
            % {
                "start": formats.date_format(hour.start, "D H:i"),
                "end": formats.time_format(hour.end, "H:i"),
            },
            counts=hour.counts,
            href=list_url(
                "?"
                + urlencode({"since": local_minute(hour.start), "until": local_minute(hour.end)})
            ),
        )
        for hour in hours
    ]
    return chart.stacked_bars(
        bars,
        [(key, str(label)) for key, label in CHART_SERIES],
        title=_("Events per hour over the last 24 hours, by status"),
        number=lambda n: formats.number_format(n, force_grouping=True),
    )


# -- one event -----------------------------------------------------------------------------


@staff_view(VIEW)
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("connection", "receipt"), pk=pk)
    history = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Event), object_id=str(event.pk)
    ).select_related("user")
    receipt = event.receipt if request.user.has_perm(VIEW_RECEIPTS) else None
    # The dispatcher's lease lives in the claims table, not in the row: a live one means
    # the event is being sent right now, an expired one a worker that stopped mid-send.
    claim = EventClaim.objects.filter(event_id=event.pk).first()
    in_flight = claim is not None and claim.lease_until > timezone.now()
    return render_page(
        request,
        "event_detail.html",
        _("Event %(id)s") % {"id": event.pk},
        {
            "event": event,
            "payload_json": pretty_json(event.payload),
            "audit_log_id": (event.payload.get("properties") or {}).get("audit_log_id"),
            "receipt": receipt,
            "receipt_hidden": receipt is None and event.receipt_id is not None,
            "receipt_body": body_text(receipt.body) if receipt else "",
            "receipt_headers": sorted(scrub_headers(receipt.headers).items()) if receipt else [],
            "history": history,
            "claim": claim,
            "in_flight": in_flight,
            "can_retry": event.status in Event.RETRYABLE and not in_flight,
            "can_replay": event.status in Event.REPLAYABLE,
            "back_url": list_url(),
        },
    )


# -- actions -------------------------------------------------------------------------------


@require_POST
@staff_view(CHANGE)
def retry_event(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_one(request, pk, actions.retry, _("retried"), Event.RETRYABLE)


@require_POST
@staff_view(CHANGE)
def replay_event(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_one(request, pk, actions.replay, _("replayed"), Event.REPLAYABLE)


def _act_on_one(
    request: HttpRequest,
    pk: int,
    action: Callable[..., int],
    done: str,
    statuses: tuple[str, ...],
) -> HttpResponse:
    event = get_object_or_404(Event, pk=pk)
    if action(Event.objects.filter(pk=pk), request.user):
        messages.success(
            request,
            _("Event %(id)s is %(done)s: it is queued again with the same messageId.")
            % {"id": pk, "done": done},
        )
    else:
        labels = dict(Event.Status.choices)
        messages.warning(
            request,
            _("Event %(id)s is %(status)s; only %(allowed)s events can be %(done)s.")
            % {
                "id": pk,
                "status": str(labels[event.status]).lower(),
                "allowed": _(" or ").join(str(labels[s]).lower() for s in statuses),
                "done": done,
            },
        )
    return HttpResponseRedirect(reverse("configcat_segment:event_detail", args=[pk]))


@staff_view(CHANGE)
def bulk_retry(request: HttpRequest) -> HttpResponse:
    """GET: how many events the filter would retry; POST: retry them."""
    params = request.POST if request.method == "POST" else request.GET
    event_filter, errors = read_filter(params)
    back = list_url("?" + urlencode(event_filter.params) if event_filter.params else "")
    if errors:
        # Never widen a bulk action because part of the filter could not be read.
        messages.error(
            request,
            _("Nothing was retried: the filter is not valid (%(errors)s).")
            % {"errors": " ".join(errors.values())},
        )
        return HttpResponseRedirect(back)
    queryset = event_filter.apply(Event.objects.all())
    if request.method == "POST":
        count = actions.retry(queryset, request.user)
        messages.success(
            request,
            ngettext(
                "%(count)s event is queued again.", "%(count)s events are queued again.", count
            )
            % {"count": formats.number_format(count, force_grouping=True)},
        )
        return HttpResponseRedirect(back)
    return render_page(
        request,
        "event_bulk_retry.html",
        _("Retry events"),
        {
            "filter": event_filter,
            "count": queryset.filter(status__in=Event.RETRYABLE).count(),
            "hidden_params": sorted(event_filter.params.items()),
            "back_url": back,
        },
    )
