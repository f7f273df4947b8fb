"""The app's URLs, plus the yardstick: a bare DRF view that does one insert."""

from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from configcat_segment.constants import HEADER_WEBHOOK_ID
from configcat_segment.models import WebhookReceipt


class BareInsertView(APIView):
    """Reads the body and inserts one row: the least any webhook view must do."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes: list[Any] = []

    def post(self, request: Request, connection_id: Any) -> Response:
        receipt = WebhookReceipt.objects.create(
            connection_id=connection_id,
            webhook_id=request.headers.get(HEADER_WEBHOOK_ID, ""),
            method="POST",
            body=request.body,
        )
        return Response({"receipt": receipt.pk})


urlpatterns = [
    path("configcat-segment/", include("configcat_segment.urls")),
    path("bare/<uuid:connection_id>/", BareInsertView.as_view()),
]
