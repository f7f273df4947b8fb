"""The webhook's body as the exact bytes that arrived: what ConfigCat's signature covers.

:class:`RawBodyParser` is the webhook view's only REST framework parser: it decodes
nothing, accepts any content type, and refuses a body over ``WEBHOOK_MAX_BODY_BYTES``
(413, :class:`~configcat_segment.exceptions.BodyTooLarge`) without reading it whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.utils.datastructures import MultiValueDict
from rest_framework.parsers import BaseParser, DataAndFiles
from rest_framework.request import Request

from ..conf import get_settings
from ..exceptions import BodyTooLarge


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_within_limit(stream: Readable, *, declared: str, limit: int) -> bytes:
    """Everything ``stream`` holds, refused with 413 past ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything; otherwise
    at most ``limit + 1`` bytes are read, which also bounds bodies that declared less than
    they send, or nothing at all (chunked).
    """
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise BodyTooLarge(limit)
    return b"".join(chunks)


class RawBodyParser(BaseParser):
    """``request.data`` is the raw body, as bytes, whatever the content type."""

    media_type = "*/*"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles[bytes, MultiValueDict[str, Any]]:
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        body = read_within_limit(
            stream,
            declared=meta.get("CONTENT_LENGTH") or "",
            limit=get_settings().WEBHOOK_MAX_BODY_BYTES,
        )
        return DataAndFiles(body, MultiValueDict())


def raw_body(request: Request) -> bytes:
    """The request's raw body, read by :class:`RawBodyParser`.

    REST framework hands a parser nothing of a request without a Content-Length. Such a
    request has no body, unless it is chunked and the server marks its input as
    terminated (gunicorn does): then it is read here to its end, within the same limit.
    """
    data: object = request.data
    if isinstance(data, bytes):
        return data
    meta = request.META
    if not meta.get("CONTENT_LENGTH") and meta.get("wsgi.input_terminated"):
        limit = get_settings().WEBHOOK_MAX_BODY_BYTES
        return read_within_limit(meta["wsgi.input"], declared="", limit=limit)
    return b""
