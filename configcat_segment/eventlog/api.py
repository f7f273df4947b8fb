"""The event log's JSON API: what the page shows, for scripts and for its live refresh.

Staff only, signed in through the admin (session authentication, so unsafe methods would
need the CSRF token; there are none). Same filters, same cursor, same permissions as the
page: ``configcat_segment.view_event`` for everything, ``view_webhookreceipt`` for an
event's receipt, ``view_segmentconnection`` for a connection's details. Never cached.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.cache import add_never_cache_headers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Event
from ..serializers import EventDetailSerializer, connection_json, connection_summary_json
from .listing import list_events
from .overview import ConnectionHealth, connection_health
from .rows import JSON_FIELDS, events_json
from .views import VIEW, VIEW_CONNECTIONS, VIEW_RECEIPTS


class CanViewEvents(BasePermission):
    message = "You need the “Can view event” permission (configcat_segment.view_event)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm(VIEW))


class EventLogAPIView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser, CanViewEvents]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Like the pages: what staff see is nobody else's, not even a shared cache's.
        finalized = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(finalized)
        return finalized


class EventListAPI(EventLogAPIView):
    """``GET``: a page of events, newest first, with ``next`` and ``previous`` links.

    The events are ``EventSerializer``'s shape, built by :func:`.rows.events_json` from
    the page's values: the serializer's per-field machinery, and building model instances,
    run for every row, cost more than the page's query.
    """

    def get(self, request: Request) -> Response:
        listing = list_events(request.query_params, fields=JSON_FIELDS)
        if listing.errors:
            return Response({"errors": listing.errors}, status=400)
        page = listing.page
        path = request.build_absolute_uri(request.path)
        return Response(
            {
                "next": path + listing.query_string(page.next) if page.next else None,
                "previous": path + listing.query_string(page.previous) if page.previous else None,
                "results": events_json(page.items),
            }
        )


class EventDetailAPI(EventLogAPIView):
    """``GET``: one event, with the message sent and the webhook receipt it came from."""

    def get(self, request: Request, pk: int) -> Response:
        event = get_object_or_404(Event.objects.select_related("connection", "receipt"), pk=pk)
        data = dict(EventDetailSerializer(event).data)
        if not request.user.has_perm(VIEW_RECEIPTS):
            del data["receipt"]
        return Response(data)


class ConnectionHealthAPI(EventLogAPIView):
    """``GET``: every connection, whether it forwards, and what is waiting or failed."""

    def get(self, request: Request) -> Response:
        details = request.user.has_perm(VIEW_CONNECTIONS)
        rows = [health_json(row, details=details) for row in connection_health()]
        return Response({"connections": rows})


def health_json(row: ConnectionHealth, *, details: bool = True) -> dict[str, Any]:
    """A connection's health; with ``details``, everything the connection shows too."""
    shown = connection_json if details else connection_summary_json
    return shown(
        row.connection,
        last_delivery=row.last_delivery,
        counts={"pending": row.pending, "failed": row.failed, "dead": row.dead},
        last_error=row.last_error,
        last_error_event=row.last_error_event_id,
    )
