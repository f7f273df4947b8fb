"""The only place that talks HTTP to Segment: one ``/v1/batch`` request per call.

It uses segment-analytics-python's own transport (``segment.analytics.request.post``:
Basic auth with the write key, its user agent, gzip), under the endpoint policy of
:mod:`.network` (no private addresses unless allowed, no redirects followed), and turns
whatever happens into an :class:`Answer` instead of an exception, so the dispatcher
decides what to do with it.

What the other side said is kept short and plain: Segment's own ``code`` and ``message``
(trimmed), or for any other answer only its status, reason and what it was. A page an
endpoint answers with is never kept: ``last_error`` is shown to every event viewer.
"""

from __future__ import annotations

import base64
import gzip as gzip_module
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segment.analytics import request as segment_request
from segment.analytics.version import VERSION as SEGMENT_VERSION

from ..compat import close_segment_connections, segment_session
from ..conf import endpoint_policy
from ..redaction import redact
from . import network
from .retry import Verdict, classify
from .wire import Messages, batch_body

logger = logging.getLogger(__name__)

# The longest error text kept; the parts that come from the other side are shorter still.
MAX_ERROR_CHARS = 300
# The start of an answer's body kept for people to read (the admin's test send); not stored.
_BODY_CHARS = 2000
_REMOTE_CODE_CHARS = 40
_REMOTE_TEXT_CHARS = 160


@dataclass(frozen=True)
class Answer:
    """What came back from one request."""

    status: int | None  # None: no HTTP answer (refused, reset, timed out, ...)
    error: str = ""  # what went wrong, fit for ``Event.last_error``; never a secret
    retry_after: str | None = None  # the raw ``Retry-After`` header, if any
    refused: bool = False  # not sent: the endpoint policy does not allow the address
    # The start of the answer's body, as text (never a secret): for people to read, so
    # left out of comparisons.
    body: str = field(default="", compare=False)

    @property
    def verdict(self) -> Verdict:
        """What the dispatcher does next; a refused endpoint is a misconfiguration."""
        return Verdict.UNHEALTHY if self.refused else classify(self.status)


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
    """POST ``messages`` to ``{endpoint}/v1/batch``.

    Stored texts (:class:`~.wire.Messages`) are joined into the body as they are;
    anything else is encoded by segment-analytics-python.
    """
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
        with network.guarded(endpoint_policy()):
            if isinstance(messages, Messages):
                response = _post_texts(
                    messages.texts,
                    endpoint=endpoint,
                    write_key=write_key,
                    sent_at=sent_at,
                    gzip=gzip,
                    timeout=timeout,
                )
            else:
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
        text = f"Segment answered {exc.status} {_remote_text(exc)}"
        return Answer(
            exc.status,
            _clean(text, write_key),
            headers.get("Retry-After"),
            body=_body(exc.response, write_key),
        )
    except network.EndpointRefused as exc:
        text = f"Not sent to {endpoint}: {exc}. {network.ALLOW_HINT}"
        return Answer(None, _clean(text, write_key), refused=True)
    except Exception as exc:  # the network's many ways of failing all mean "no answer"
        return Answer(None, _clean(f"No answer from {endpoint}: {exc}", write_key))
    return Answer(response.status_code, body=_body(response, write_key))


def _post_texts(
    texts: Sequence[str], *, endpoint: str, write_key: str, sent_at: str, gzip: bool, timeout: float
) -> Any:
    """What ``segment.analytics.request.post`` does (its session, headers and errors), with
    a body joined from stored message texts and compressed once."""
    data = batch_body(texts, sent_at=sent_at, write_key=write_key)
    credentials = base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"analytics-python/{SEGMENT_VERSION}",
        "Authorization": f"Basic {credentials}",
    }
    if gzip:
        headers["Content-Encoding"] = "gzip"
        data = gzip_module.compress(data, compresslevel=6, mtime=0)
    url = endpoint.rstrip("/") + "/v1/batch"
    response = segment_session().post(url, data=data, headers=headers, timeout=timeout)
    status = response.status_code
    if 200 <= status < 300:
        return response
    if 300 <= status < 400:
        raise segment_request.APIError(status, "redirect", response.reason, response)
    try:
        answer = response.json()
        code, message = answer["code"], answer["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "unknown", response.text
    raise segment_request.APIError(status, code, message, response)


def _remote_text(exc: segment_request.APIError) -> str:
    """What the other side said: Segment's code and message, or only what it was."""
    response = exc.response
    if exc.code == "unknown" and response is not None:
        # Not Segment's JSON: a page from a proxy, or from whatever the endpoint is.
        kind = _short(response.headers.get("Content-Type", "").split(";")[0], 40) or "no type"
        reason = _short(str(response.reason or ""), _REMOTE_CODE_CHARS)
        size = len(response.content or b"")
        return f"{reason} (not a Segment answer: {kind}, {size:,} bytes)".lstrip()
    code = _short(str(exc.code), _REMOTE_CODE_CHARS)
    return f"{code}: {_short(str(exc.message), _REMOTE_TEXT_CHARS)}"


def _short(text: str, limit: int) -> str:
    """``text`` as one line of printable characters, at most ``limit`` long."""
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def after_fork() -> None:
    """In a ``fork()``ed child: drop the pooled connections inherited from the parent.

    The transport keeps one ``requests`` session for the process; a kept-alive socket
    shared by parent and child would interleave their requests. The session stays usable.
    """
    close_segment_connections()


def _body(response: Any, write_key: str) -> str:
    """The start of ``response``'s body as text (empty without one), cleaned like errors."""
    try:
        text = response.text[:_BODY_CHARS]
    except Exception:  # no response, or a body that cannot be read or decoded
        return ""
    return _clean(text, write_key, _BODY_CHARS) if isinstance(text, str) else ""


def _clean(text: str, write_key: str, limit: int = MAX_ERROR_CHARS) -> str:
    if write_key:
        # The key as given, and as the Authorization header carries it (Basic "key:").
        basic = base64.b64encode(f"{write_key}:".encode()).decode()
        for secret in (write_key, basic, basic.rstrip("=")):
            text = text.replace(secret, redact(write_key))
    return _short(text, limit)


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
