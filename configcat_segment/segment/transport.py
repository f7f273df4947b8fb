"""The only place that talks HTTP to Segment: one ``/v1/batch`` request per call.

It uses segment-analytics-python's own transport (``segment.analytics.request.post``:
Basic auth with the write key, its user agent, gzip), and turns whatever happens into an
:class:`Answer` instead of an exception, so the dispatcher decides what to do with it.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segment.analytics import request as segment_request

from ..compat import close_segment_connections
from ..redaction import redact

logger = logging.getLogger(__name__)

_ERROR_CHARS = 1000


@dataclass(frozen=True)
class Answer:
    """What came back from one request."""

    status: int | None  # None: no HTTP answer (refused, reset, timed out, ...)
    error: str = ""  # what went wrong, fit for ``Event.last_error``; never a secret
    retry_after: str | None = None  # the raw ``Retry-After`` header, if any


def send(
    messages: Sequence[Mapping[str, Any]],
    *,
    endpoint: str,
    write_key: str,
    sent_at: str,
    gzip: bool,
    timeout: float,
) -> Answer:
    """POST ``messages`` to ``{endpoint}/v1/batch``."""
    try:
        response = segment_request.post(
            write_key,
            host=endpoint,
            gzip=gzip,
            timeout=timeout,
            batch=list(messages),
            sentAt=sent_at,
        )
    except segment_request.APIError as exc:
        headers = getattr(exc.response, "headers", None) or {}
        text = f"Segment answered {exc.status} {exc.code}: {exc.message}"
        return Answer(exc.status, _clean(text, write_key), headers.get("Retry-After"))
    except Exception as exc:  # the network's many ways of failing all mean "no answer"
        return Answer(None, _clean(f"No answer from {endpoint}: {exc}", write_key))
    return Answer(response.status_code)


def after_fork() -> None:
    """In a ``fork()``ed child: drop the pooled connections inherited from the parent.

    The transport keeps one ``requests`` session for the process; a kept-alive socket
    shared by parent and child would interleave their requests. The session stays usable.
    """
    close_segment_connections()


def _clean(text: str, write_key: str) -> str:
    if write_key:
        # The key as given, and as the Authorization header carries it (Basic "key:").
        basic = base64.b64encode(f"{write_key}:".encode()).decode()
        for secret in (write_key, basic, basic.rstrip("=")):
            text = text.replace(secret, redact(write_key))
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


_WRITE_KEY_IN_BODY = re.compile(r'("writeKey"\s*:\s*)"(?:[^"\\]|\\.)*"')


class RedactWriteKeys(logging.Filter):
    """Removes write keys from the ``segment`` logger's records.

    segment-analytics-python logs every request body at DEBUG, and the body carries the
    write key. Check ``configcat_segment.W001`` warns about that logger's level; this
    filter is the second line of defence, installed on it when the app is ready.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _WRITE_KEY_IN_BODY.sub(r'\1"…"', message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_filter() -> None:
    """Put :class:`RedactWriteKeys` on the ``segment`` logger (once)."""
    segment_logger = logging.getLogger("segment")
    if not any(isinstance(f, RedactWriteKeys) for f in segment_logger.filters):
        segment_logger.addFilter(RedactWriteKeys())
