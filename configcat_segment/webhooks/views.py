"""ConfigCat change webhooks: verified, stored first, then turned into events.

A request is verified (:mod:`.signing`) before anything is written; a verified request is
stored as a :class:`WebhookReceipt` (raw body, headers without secrets) before its body is
read; then :func:`process` turns it into "Feature Flag Changed" events (:mod:`.changes`)
and writes the outcome back to the receipt. Receipt and events commit together.
:func:`reprocess` runs a stored receipt again (a redelivery after a failure, or an admin).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import get_settings, setting_path
from ..delivery import outbox
from ..models import Event, SegmentConnection, WebhookReceipt
from ..redaction import scrub_headers
from ..signals import flag_changed
from . import body as changes
from .signing import VerifiedWebhook, WebhookRejected, verify

logger = logging.getLogger(__name__)

Outcome = WebhookReceipt.Outcome


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def connection_user_id(connection: SegmentConnection) -> str:
    """The ``userId`` of a change whose changer has no email: stable per connection."""
    return f"configcat-segment:{connection.pk}"


# -- reading the request ------------------------------------------------------------------


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes without reading it whole.

    A declared Content-Length over the limit is refused before reading anything; otherwise
    at most ``limit + 1`` bytes are read, which also bounds bodies that declared less than
    they send, or nothing at all (chunked).
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    stream: _Readable = request
    if not declared and request.META.get("wsgi.input_terminated"):
        # A chunked request: Django reads nothing without a Content-Length, but a server
        # that marks its input as terminated (gunicorn does) lets it be read to the end.
        stream = request.META["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> WebhookRejected:
    return WebhookRejected(
        "body_too_large",
        f"The body is larger than {limit:,} bytes ({setting_path('WEBHOOK_MAX_BODY_BYTES')}).",
        status=413,
    )


def _remote_addr(request: HttpRequest) -> str | None:
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return None


def _stored_webhook_id(webhook_id: str) -> str:
    """The id as the unique column holds it: ids that cannot fit are stored as a hash."""
    if len(webhook_id) <= 255 and "\x00" not in webhook_id:
        return webhook_id
    return "sha256:" + hashlib.sha256(webhook_id.encode("utf-8", "replace")).hexdigest()


# -- storing and processing -----------------------------------------------------------------


class AlreadyReceived(Exception):
    """The connection already has a receipt with this webhook id."""


def store(
    connection: SegmentConnection,
    verified: VerifiedWebhook,
    request: HttpRequest,
    body: bytes,
) -> WebhookReceipt:
    """Save the receipt, or raise :class:`AlreadyReceived` for a redelivered webhook.

    The database decides what is a redelivery: the per-connection unique webhook id
    refuses a second insert, even from a concurrent request (which waits for the first to
    commit). Call it inside ``transaction.atomic()``: the refused insert rolls that block
    back, and only that block, so an ``ATOMIC_REQUESTS`` transaction stays usable.
    """
    receipt = WebhookReceipt(
        connection=connection,
        webhook_id=_stored_webhook_id(verified.webhook_id),
        webhook_timestamp=verified.timestamp,
        method=request.method or "",
        headers=scrub_headers(dict(request.headers)),
        body=body,
        remote_addr=_remote_addr(request),
    )
    try:
        receipt.save(force_insert=True)
    except IntegrityError:
        if not receipt.webhook_id:
            raise
        raise AlreadyReceived(receipt.webhook_id) from None
    return receipt


def process(receipt: WebhookReceipt, *, again: bool = False) -> list[Event]:
    """Turn a stored receipt into events and write the outcome back to it.

    Call it inside the transaction that stored the receipt, so both commit together (or
    use :func:`reprocess`). Problems in the body are recorded, not raised; an unexpected
    error rolls the events back and leaves the receipt ``failed`` with the traceback.
    With ``again``, events that already exist are not created twice. Returns the events
    created.
    """
    created: list[Event] = []
    try:
        with transaction.atomic():
            outcome, error, created = _forward(receipt, again=again)
    except Exception:
        logger.exception("configcat_segment: processing webhook receipt %s failed", receipt.pk)
        outcome, error = Outcome.FAILED, traceback.format_exc()
    receipt.outcome, receipt.error = outcome, error
    WebhookReceipt.objects.filter(pk=receipt.pk).update(outcome=outcome, error=error)
    if created:
        transaction.on_commit(functools.partial(_announce, receipt.connection, created))
    return created


def reprocess(receipt: WebhookReceipt) -> WebhookReceipt:
    """Process a stored receipt again; returns it updated.

    For a redelivered webhook whose processing failed, or an admin's "reprocess": the
    messageIds are deterministic, so events that were created before are not duplicated,
    and the connection is taken as it is now. The receipt's row is locked meanwhile, so
    two concurrent reprocessings of it run one after the other.
    """
    with transaction.atomic():
        locked = (
            WebhookReceipt.objects.select_for_update()
            .select_related("connection")
            .get(pk=receipt.pk)
        )
        process(locked, again=True)
    return locked


def _forward(receipt: WebhookReceipt, *, again: bool) -> tuple[str, str, list[Event]]:
    connection = receipt.connection
    if not connection.connected:
        return Outcome.IGNORED, "The connection is disconnected: nothing was forwarded.", []
    if not connection.forward_changes:
        return Outcome.IGNORED, "The connection does not forward flag changes.", []
    change, problems = changes.parse(
        bytes(receipt.body), max_changes=get_settings().MAX_CHANGES_PER_WEBHOOK
    )
    built = changes.flag_changed_messages(
        change,
        key=receipt.webhook_id or f"receipt-{receipt.pk}",
        timestamp=receipt.webhook_timestamp or receipt.received_at,
        salt=connection.message_id_salt,
        product_id=connection.product_id,
        product_name=connection.product_name,
        fallback_user_id=connection_user_id(connection),
    )
    events = [
        outbox.build_event(connection, item.message, flag_key=item.flag_key, receipt=receipt)
        for item in built
    ]
    if again:
        # Only this receipt makes these ids, and its row is locked: the lookup cannot race.
        existing = set(
            Event.objects.filter(message_id__in=[e.message_id for e in events]).values_list(
                "message_id", flat=True
            )
        )
        events = [e for e in events if e.message_id not in existing]
    created = outbox.enqueue(events)
    outcome = Outcome.PROCESSED_WITH_ERRORS if problems else Outcome.PROCESSED
    return outcome, "\n".join(problems), created


def _announce(connection: SegmentConnection, events: Sequence[Event]) -> None:
    for event in events:
        flag_changed.send_robust(sender=SegmentConnection, connection=connection, event=event)


# -- the view -------------------------------------------------------------------------------


def _error(status: int, code: str, detail: str) -> Response:
    return Response({"error": code, "detail": detail}, status=status)


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


def _unknown_connection() -> Response:
    return _error(404, "unknown_connection", "No Segment connection has this webhook URL.")


def _answer_redelivery(connection: SegmentConnection, webhook_id: str) -> Response:
    receipt = WebhookReceipt.objects.filter(connection=connection, webhook_id=webhook_id).first()
    if receipt is None:  # the insert was refused because the connection is gone
        return _unknown_connection()
    if receipt.outcome == Outcome.FAILED:
        # Processing crashed last time: this delivery is the retry it asked for.
        receipt = reprocess(receipt)
        return _answer(receipt, receipt.events.count())
    detail = "This webhook was received before; nothing new was created."
    return Response({"status": "duplicate", "receipt": receipt.pk, "detail": detail})


class _JSONOnly(BaseContentNegotiation):
    """Always answer JSON, whatever ``Accept`` says: a signed webhook must never be refused
    by content negotiation (406) before it is stored."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class WebhookView(APIView):
    """``POST`` (or ``GET``) ``webhooks/<connection id>/``: one ConfigCat change webhook.

    No authentication classes, hence no CSRF check (ConfigCat has no token): the
    signature is the authentication. No parsers: the raw body is what is signed.
    """

    # None of the project's REST framework policies apply: the signature is the
    # authentication, and nothing (throttling, versioning, Accept) may refuse a verified
    # webhook before it is stored.
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []
    parser_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnly
    versioning_class = None
    http_method_names = ["post", "get"]

    # Seconds since the epoch; tests replace it.
    clock: Callable[[], float] = staticmethod(time.time)

    def post(self, request: Request, connection_id: Any) -> Response:
        try:
            connection = SegmentConnection.objects.get(pk=connection_id)
        except SegmentConnection.DoesNotExist:
            return _unknown_connection()
        settings = get_settings()
        http_request = request._request
        try:
            body = read_body(http_request, settings.WEBHOOK_MAX_BODY_BYTES)
            verified = verify(
                http_request.headers,
                body,
                keys=connection.signing_keys,
                now=self.clock(),
                tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
                allow_unsigned=settings.ALLOW_UNSIGNED_WEBHOOKS,
            )
        except WebhookRejected as rejected:
            return _error(rejected.status, rejected.code, rejected.message)
        try:
            with transaction.atomic():
                receipt = store(connection, verified, http_request, body)
                return _answer(receipt, len(process(receipt)))
        except AlreadyReceived as duplicate:
            return _answer_redelivery(connection, str(duplicate))
        except IntegrityError:
            # Foreign keys are checked at commit: the connection was deleted meanwhile.
            if SegmentConnection.objects.filter(pk=connection.pk).exists():
                raise
            return _unknown_connection()

    # ConfigCat can be told to use GET; such a webhook has no body but is signed all the same.
    get = post
