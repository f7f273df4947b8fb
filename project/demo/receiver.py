"""A small Segment-compatible receiver, so the demo shows the whole path with no internet.

``POST <prefix>/v1/batch`` takes what Segment's Tracking API takes (HTTP Basic auth with
the write key as user name, or ``writeKey`` in the body; gzip allowed) and stores every
message; the debugger page lists them newest first, like a Segment source's debugger.
Errors are answered as Segment does, ``{"code": ..., "message": ...}``, so clients report
them precisely.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import zlib
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from configcat_segment.constants import SEGMENT_MAX_BATCH_BYTES
from configcat_segment.redaction import redact

from .models import ReceivedMessage

PAGE_SIZE = 100


class BadBatch(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(exc: BadBatch) -> JsonResponse:
    return JsonResponse(
        {"success": False, "code": exc.code, "message": str(exc)}, status=exc.status
    )


def _body(request: HttpRequest) -> bytes:
    raw = request.body
    if len(raw) > SEGMENT_MAX_BATCH_BYTES:
        raise BadBatch("The batch is larger than 500 KB.", status=413, code="too_large")
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unzipped:
                raw = unzipped.read(SEGMENT_MAX_BATCH_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadBatch(f"The body is not valid gzip: {exc}.") from None
        if len(raw) > SEGMENT_MAX_BATCH_BYTES:
            raise BadBatch("The batch is larger than 500 KB.", status=413, code="too_large")
    return raw


def _header_write_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return ""
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadBatch("The Authorization header is not valid Basic auth.", 401) from None
    return decoded.split(":", 1)[0]


def _messages(request: HttpRequest) -> tuple[str, list[dict[str, Any]]]:
    write_key = _header_write_key(request)
    raw = _body(request)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBatch(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadBatch('The body must be a JSON object with a "batch" list.')
    if not write_key and isinstance(body.get("writeKey"), str):
        write_key = body["writeKey"]
    if not write_key:
        raise BadBatch("No write key: send it as Basic auth user name.", 401, "unauthorized")
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise BadBatch('"batch" must be a list of messages.')
    for position, message in enumerate(batch):
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadBatch(f'Message {position} is not an object with a "type".')
        if not (message.get("userId") or message.get("anonymousId")):
            raise BadBatch(f"Message {position} has neither userId nor anonymousId.")
    return write_key, batch


@csrf_exempt
@require_POST
def batch(request: HttpRequest) -> JsonResponse:
    try:
        write_key, messages = _messages(request)
    except BadBatch as exc:
        return _error(exc)
    source = redact(write_key)
    ReceivedMessage.objects.bulk_create(
        ReceivedMessage(
            source=source,
            type=message["type"][:20],
            event=str(message.get("event") or "")[:200],
            user_id=str(message.get("userId") or "")[:255],
            anonymous_id=str(message.get("anonymousId") or "")[:255],
            message_id=str(message.get("messageId") or "")[:100],
            payload=message,
        )
        for message in messages
    )
    return JsonResponse({"success": True})


@staff_member_required
@permission_required("demo.view_receivedmessage", raise_exception=True)
def debugger(request: HttpRequest) -> HttpResponse:
    """What the receiver got: staff with "Can view received message" only (user data)."""
    received = list(ReceivedMessage.objects.all()[:PAGE_SIZE])
    for message in received:
        message.pretty = json.dumps(message.payload, indent=2, ensure_ascii=False)  # type: ignore[attr-defined]
    return render(
        request,
        "demo/debugger.html",
        {"received": received, "total": ReceivedMessage.objects.count()},
    )
