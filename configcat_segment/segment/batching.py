"""Splitting messages into Segment ``/v1/batch`` requests. Pure functions: no Django, no I/O.

Segment refuses a request over 500 KB, with more than 2,500 messages, or with a message
over 32 KB. The request is measured exactly as the transport will encode it:
``segment.analytics.request.post`` sends ``{"batch": [...], "sentAt": ..., "writeKey": ...}``
through ``json.dumps`` with its default separators, so the write key and ``sentAt`` count
too. (The limit applies to the JSON, not to the gzipped bytes on the wire.)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..constants import (
    SEGMENT_MAX_BATCH_BYTES,
    SEGMENT_MAX_BATCH_MESSAGES,
    SEGMENT_MAX_MESSAGE_BYTES,
)
from .payloads import encoded_size
from .wire import body_overhead

T = TypeVar("T")

# json.dumps puts ", " between list items.
_SEPARATOR_BYTES = 2


@dataclass(frozen=True)
class Limits:
    request_bytes: int = SEGMENT_MAX_BATCH_BYTES
    messages: int = SEGMENT_MAX_BATCH_MESSAGES
    message_bytes: int = SEGMENT_MAX_MESSAGE_BYTES


@dataclass
class Plan(Generic[T]):
    """The requests to send, in order, and the items no request may carry."""

    batches: list[list[T]] = field(default_factory=list)
    oversized: list[T] = field(default_factory=list)


def request_body(messages: Sequence[Mapping[str, Any]], *, sent_at: str, write_key: str) -> str:
    """The JSON body ``segment.analytics.request.post`` sends for these messages."""
    return json.dumps({"batch": list(messages), "sentAt": sent_at, "writeKey": write_key})


def request_overhead(*, sent_at: str, write_key: str) -> int:
    """Bytes of a request body with an empty batch."""
    return len(request_body([], sent_at=sent_at, write_key=write_key).encode())


def plan_batches(
    items: Sequence[T],
    message_of: Callable[[T], Mapping[str, Any]] | None = None,
    *,
    sent_at: str,
    write_key: str,
    limits: Limits = Limits(),
    text_size: Callable[[T], int] | None = None,
) -> Plan[T]:
    """Pack ``items`` (in order) into as few requests as Segment's limits allow.

    ``message_of(item)`` is the message an item sends, measured as ``json.dumps`` would
    encode it; or ``text_size(item)`` is the size in bytes of its stored text, which
    :func:`~.wire.batch_body` joins. An item whose message alone is over the per-message
    limit, or too big for a request of its own, goes to ``oversized``: it must never reach
    Segment, where it would make the whole request fail.
    """
    if text_size is not None:
        overhead, separator = body_overhead(sent_at=sent_at, write_key=write_key), 1
        size_of = text_size
    elif message_of is not None:
        overhead = request_overhead(sent_at=sent_at, write_key=write_key)
        separator = _SEPARATOR_BYTES
        size_of = functools.partial(_message_size, message_of)
    else:
        raise TypeError("plan_batches() needs message_of or text_size")
    plan: Plan[T] = Plan()
    current: list[T] = []
    current_bytes = overhead
    for item in items:
        size = size_of(item)
        if size > limits.message_bytes or overhead + size > limits.request_bytes:
            plan.oversized.append(item)
            continue
        added = size + (separator if current else 0)
        if current and (
            len(current) >= limits.messages or current_bytes + added > limits.request_bytes
        ):
            plan.batches.append(current)
            current, current_bytes, added = [], overhead, size
        current.append(item)
        current_bytes += added
    if current:
        plan.batches.append(current)
    return plan


def _message_size(message_of: Callable[[T], Mapping[str, Any]], item: T) -> int:
    return encoded_size(message_of(item))
