"""``webhooks/<connection id>/``: the ConfigCat change webhook, a REST framework view.

It uses REST framework's own extension points: :class:`.parsers.RawBodyParser` reads the
raw body the signature covers, :class:`.authentication.ConfigCatSignatureAuthentication`
verifies the signature, and refusals are
:class:`~configcat_segment.exceptions.WebhookRejected` exceptions, answered as
``{"error": code, "detail": message}``. A verified request is stored as a receipt before
its body is read, and processed in the same transaction (:mod:`.receipts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.db import IntegrityError, transaction
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from ..exceptions import UnknownConnection, WebhookRejected
from ..models import SegmentConnection, WebhookReceipt
from . import receipts, retries
from .authentication import ConfigCatSignatureAuthentication, SignedWebhook
from .parsers import RawBodyParser

Outcome = WebhookReceipt.Outcome


class JSONOnlyNegotiation(BaseContentNegotiation):
    """The raw body, and a JSON answer, whatever ``Content-Type`` and ``Accept`` say: a
    signed webhook must never be refused by content negotiation (415, 406) before it is
    stored."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser:
        return next(iter(parsers))

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class WebhookView(APIView):
    """``POST`` (or ``GET``) ``webhooks/<connection id>/``: one ConfigCat change webhook."""

    # The signature is the authentication, and all of it; none of the project's REST
    # framework policies apply: nothing (permissions, throttling, versioning, Accept) may
    # refuse a verified webhook before it is stored.
    authentication_classes = [ConfigCatSignatureAuthentication]
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    parser_classes = [RawBodyParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    versioning_class = None
    http_method_names = ["post", "get"]

    # Seconds since the epoch; tests replace it.
    clock: Callable[[], float] = staticmethod(time.time)

    def get_connection(self) -> SegmentConnection:
        try:
            return SegmentConnection.objects.get(pk=self.kwargs["connection_id"])
        except SegmentConnection.DoesNotExist:
            raise UnknownConnection from None

    def perform_authentication(self, request: Request) -> None:
        """Authenticate lazily, when the handler reads ``request.auth``: a method that is
        not allowed is answered 405 without its body being read."""

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        project_handler = super().get_exception_handler()

        def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
            if isinstance(exc, WebhookRejected):
                set_rollback()
                return Response({"error": exc.code, "detail": exc.message}, status=exc.status)
            response: Response | None = project_handler(exc, context)
            return response

        return handle

    def post(self, request: Request, connection_id: Any) -> Response:
        # Authenticated here, on first use (see perform_authentication).
        webhook = cast(SignedWebhook, request.auth)
        connection = webhook.connection
        try:
            with transaction.atomic():
                received = receipts.receive(
                    connection,
                    webhook.verified,
                    webhook.raw_body,
                    method=request.method or "",
                    headers=request.headers,
                    remote_addr=request.META.get("REMOTE_ADDR"),
                )
                if received.original is not None:
                    return retries.absorb(received.receipt, received.original)
                return _answer(received.receipt, len(received.created))
        except receipts.AlreadyReceived as duplicate:
            return _answer_redelivery(connection, str(duplicate))
        except IntegrityError:
            # Foreign keys are checked at commit: the connection was deleted meanwhile.
            if SegmentConnection.objects.filter(pk=connection.pk).exists():
                raise
            raise UnknownConnection from None

    # ConfigCat can be told to use GET; such a webhook has no body but is signed all the same.
    get = post


def _answer(receipt: WebhookReceipt, events: int) -> Response:
    data: dict[str, Any] = {"status": receipt.outcome, "receipt": receipt.pk}
    if receipt.outcome == Outcome.FAILED:
        data["detail"] = (
            "The webhook was stored but processing it failed; it is processed again when "
            "it is delivered again."
        )
        return Response(data, status=503)
    if receipt.outcome == Outcome.IGNORED:
        data["detail"] = receipt.error
    else:
        data["events"] = events
        data["problems"] = receipt.error.splitlines()
    return Response(data)


def _answer_redelivery(connection: SegmentConnection, webhook_id: str) -> Response:
    receipt = WebhookReceipt.objects.filter(connection=connection, webhook_id=webhook_id).first()
    if receipt is None:  # the insert was refused because the connection is gone
        raise UnknownConnection
    if receipt.outcome == Outcome.FAILED:
        # Processing crashed last time: this delivery is the retry it asked for.
        receipt = receipts.reprocess(receipt)
        return _answer(receipt, receipt.events.count())
    detail = "This webhook was received before; nothing new was created."
    return Response({"status": "duplicate", "receipt": receipt.pk, "detail": detail})
