"""Messages as the JSON text they are stored and sent as. Pure functions: no Django, no I/O.

A message becomes its final JSON text once, when it is written to the outbox
(:func:`encode_message`). The dispatcher reads the stored texts back and builds each
``/v1/batch`` body by joining them (:func:`batch_body`): nothing is loaded and dumped
again on the way out.

Texts are compact (no spaces) and UTF-8, made by ``orjson`` when it is installed (the
``fast`` extra) and by the standard library otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from ..constants import SEGMENT_MAX_MESSAGE_BYTES
from .payloads import fit

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library does the same, slower
    orjson = None  # type: ignore[assignment]


# json.dumps with ASCII escaping (what Segment's own libraries send, and how the local
# Segment-compatible server measures a message) writes at most 12 bytes for a character
# (an astral one, as two \\uXXXX escapes) and one more per separator: a text this short
# cannot be over the per-message limit however it is measured.
_SURELY_FITS = SEGMENT_MAX_MESSAGE_BYTES // 13


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON text of ``value`` (JSON-safe values, as payloads builds them)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # an integer over 64 bits, say: the standard library takes it
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_message(message: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``message`` shrunk to fit Segment's per-message limit, and its text.

    Raises :class:`~.payloads.MessageTooLarge` when it cannot be made to fit. A message
    that fits is unchanged; most are measured by their compact text alone.
    """
    text = dumps(message)
    if len(text) <= _SURELY_FITS:
        return text, dict(message)
    fitted = fit(message)
    return dumps(fitted), fitted


def batch_body(texts: Sequence[str], *, sent_at: str, write_key: str) -> bytes:
    """The ``/v1/batch`` body carrying the messages ``texts``: their texts joined."""
    tail = dumps({"sentAt": sent_at, "writeKey": write_key})
    return f'{{"batch":[{",".join(texts)}],{tail[1:]}'.encode()


def body_overhead(*, sent_at: str, write_key: str) -> int:
    """Bytes of :func:`batch_body` around the messages (their commas not included)."""
    return len(batch_body([], sent_at=sent_at, write_key=write_key))


class Messages(Sequence[Mapping[str, Any]]):
    """Stored message texts, readable as the messages they are.

    The transport sends :attr:`texts` as they are; a sender that wants the messages (a
    test's, say) reads them decoded, one at a time.
    """

    __slots__ = ("texts",)

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [loads(text) for text in self.texts[index]]
        return loads(self.texts[index])

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return (loads(text) for text in self.texts)

    def __repr__(self) -> str:
        return f"<Messages: {len(self.texts)}>"


def loads(text: str | bytes) -> Any:
    if orjson is not None:
        return orjson.loads(text)
    return json.loads(text)
