"""The only place that talks HTTP to Segment: one ``/v1/batch`` request per call.

It uses segment-analytics-python's own transport (``segment.analytics.request.post``:
Basic auth with the write key, its user agent, gzip), and turns whatever happens into an
:class:`Answer` instead of an exception, so the dispatcher decides what to do with it.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    # The start of the answer's body, as text (never a secret): for people to read, so
    # left out of comparisons.
    body: str = field(default="", compare=False)


# Called after every request with (endpoint, answer, seconds it took, messages sent):
# metrics count requests here (configcat_segment.operations.metrics).
Observer = Callable[[str, Answer, float, int], None]
_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    """Call ``observer`` after every request. Adding one twice is a no-op.

    It runs in the sending thread: keep it cheap. Its errors are logged, never raised.
    """
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


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
    started = time.monotonic()
    answer = _post(
        messages,
        endpoint=endpoint,
        write_key=write_key,
        sent_at=sent_at,
        gzip=gzip,
        timeout=timeout,
    )
    seconds = time.monotonic() - started
    for observer in list(_observers):
        try:
            observer(endpoint, answer, seconds, len(messages))
        except Exception:
            logger.exception("configcat_segment: a transport observer failed")
    return answer


def _post(
    messages: Sequence[Mapping[str, Any]],
    *,
    endpoint: str,
    write_key: str,
    sent_at: str,
    gzip: bool,
    timeout: float,
) -> Answer:
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
        return Answer(
            exc.status,
            _clean(text, write_key),
            headers.get("Retry-After"),
            _body(exc.response, write_key),
        )
    except Exception as exc:  # the network's many ways of failing all mean "no answer"
        return Answer(None, _clean(f"No answer from {endpoint}: {exc}", write_key))
    return Answer(response.status_code, body=_body(response, write_key))


def after_fork() -> None:
    """In a ``fork()``ed child: drop the pooled connections inherited from the parent.

    The transport keeps one ``requests`` session for the process; a kept-alive socket
    shared by parent and child would interleave their requests. The session stays usable.
    """
    close_segment_connections()


def _body(response: Any, write_key: str) -> str:
    """The start of ``response``'s body as text (empty without one), cleaned like errors."""
    try:
        text = response.text[: _ERROR_CHARS * 2]
    except Exception:  # no response, or a body that cannot be read or decoded
        return ""
    return _clean(text, write_key) if isinstance(text, str) else ""


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
