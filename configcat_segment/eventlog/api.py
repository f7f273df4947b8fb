"""The event log's JSON API: what the page shows, for scripts and for its live refresh.

Staff only, signed in through the admin (session authentication, so unsafe methods would
need the CSRF token; there are none). Same filters, same cursor, same permission
(``configcat_segment.view_event``) as the page.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Event
from ..serializers import EventDetailSerializer, EventSerializer, connection_json
from .listing import list_events
from .overview import ConnectionHealth, connection_health
from .views import VIEW


class CanViewEvents(BasePermission):
    message = "You need the “Can view event” permission (configcat_segment.view_event)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm(VIEW))


class EventLogAPIView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser, CanViewEvents]


class EventListAPI(EventLogAPIView):
    """``GET``: a page of events, newest first, with ``next`` and ``previous`` links."""

    def get(self, request: Request) -> Response:
        listing = list_events(request.query_params)
        if listing.errors:
            return Response({"errors": listing.errors}, status=400)
        page = listing.page
        path = request.build_absolute_uri(request.path)
        return Response(
            {
                "next": path + listing.query_string(page.next) if page.next else None,
                "previous": path + listing.query_string(page.previous) if page.previous else None,
                "results": EventSerializer(page.items, many=True).data,
            }
        )


class EventDetailAPI(EventLogAPIView):
    """``GET``: one event, with the message sent and the webhook receipt it came from."""

    def get(self, request: Request, pk: int) -> Response:
        event = get_object_or_404(Event.objects.select_related("connection", "receipt"), pk=pk)
        return Response(EventDetailSerializer(event).data)


class ConnectionHealthAPI(EventLogAPIView):
    """``GET``: every connection, whether it forwards, and what is waiting or failed."""

    def get(self, request: Request) -> Response:
        return Response({"connections": [health_json(row) for row in connection_health()]})


def health_json(row: ConnectionHealth) -> dict[str, Any]:
    return connection_json(
        row.connection,
        last_delivery=row.last_delivery,
        counts={"pending": row.pending, "failed": row.failed, "dead": row.dead},
        last_error=row.last_error,
        last_error_event=row.last_error_event_id,
    )
