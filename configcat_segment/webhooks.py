"""ConfigCat change webhooks (issue #3 builds the real view)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def post(self, request: Request, connection_id: Any) -> Response:
        return Response({"error": "webhooks are not implemented yet"}, status=501)
