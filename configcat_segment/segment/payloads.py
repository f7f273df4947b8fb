"""Building Segment messages. Pure functions: no Django, no I/O.

Every message this app sends is built here, so they all carry the same ``context``
(``integration`` as ConfigCat's own events, ``library`` naming this app), ISO-8601 UTC
timestamps, JSON-safe values and a ``messageId`` that fits Segment's 100 characters.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from ..constants import INTEGRATION, SEGMENT_MAX_MESSAGE_BYTES
from ..text import clean
from ..version import __version__

LIBRARY = {"name": "configcat_segment", "version": __version__}

# Text properties that may be cut, longest first, when a message must shrink to fit.
_CUTTABLE_TEXT = ("details", "change_notes", "value", "url")
TRUNCATION_MARK = "… [truncated]"


class MessageTooLarge(ValueError):
    """A message that stays over Segment's per-message limit after shrinking."""


def message_id(salt: str, *parts: object) -> str:
    """A deterministic Segment ``messageId`` for a natural key.

    Segment dedupes messageIds across all workspaces, so the key is mixed with a secret
    per-connection ``salt``: the same webhook sent to two connections, or by two
    installations, never collides. 68 characters, within Segment's 100.
    """
    return MessageIds(salt)(*parts)


class MessageIds:
    """:func:`message_id` for one ``salt``, for many messages.

    The HMAC key is set up once (``hmac.new`` hashes the key's inner and outer blocks
    each time); every id starts from a copy of it. The ids are :func:`message_id`'s.
    """

    __slots__ = ("_keyed",)

    def __init__(self, salt: str) -> None:
        self._keyed = hmac.new(salt.encode(), digestmod=hashlib.sha256)

    def __call__(self, *parts: object) -> str:
        keyed = self._keyed.copy()
        keyed.update("\x1f".join([str(part) for part in parts]).encode())
        return "ccs-" + keyed.hexdigest()


def random_message_id() -> str:
    """A ``messageId`` for a message without a natural key."""
    return "ccs-" + uuid.uuid4().hex


def isoformat(moment: dt.datetime) -> str:
    """UTC ISO-8601 with milliseconds, as Segment's libraries write timestamps."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_safe(value: Any) -> Any:
    """``value`` with everything JSON (and the database) cannot carry made into what it can.

    segment-analytics-python silently drops values it cannot serialise (``uuid.UUID``,
    for one); this never drops anything: unknown objects become their ``str()``.
    """
    kind = type(value)  # the usual exact types first: this runs for every value sent
    if kind is str:
        return value if value.isascii() and "\x00" not in value else clean(value)
    if kind is dict:
        return {
            k if type(k) is str and k.isascii() and "\x00" not in k else clean(str(k)): (
                v if type(v) is int or type(v) is bool or v is None else json_safe(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, str):
        return clean(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {clean(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(v) for v in items]
    if isinstance(value, dt.datetime):
        return isoformat(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, bytes):
        return clean(value.decode("utf-8", errors="replace"))
    return clean(str(value))


def _context(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = json_safe(dict(extra)) if extra else {}
    context["integration"] = dict(INTEGRATION)
    context["library"] = dict(LIBRARY)
    return context


def _message(
    fields: dict[str, Any],
    *,
    timestamp: dt.datetime,
    message_id: str,
    user_id: str | None,
    anonymous_id: str | None,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What every message has around its own ``fields``: who, when, which id, context."""
    if not user_id and not anonymous_id:
        raise ValueError("a Segment message needs a userId or an anonymousId")
    message = fields
    if user_id:
        message["userId"] = clean(str(user_id))
    if anonymous_id:
        message["anonymousId"] = clean(str(anonymous_id))
    message["timestamp"] = isoformat(timestamp)
    message["messageId"] = message_id
    message["context"] = _context(context)
    return message


def track(
    *,
    event: str,
    properties: Mapping[str, Any],
    timestamp: dt.datetime,
    message_id: str,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Segment ``track`` message."""
    return _message(
        {"type": "track", "event": clean(event), "properties": json_safe(properties)},
        timestamp=timestamp,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        context=context,
    )


def identify(
    *,
    traits: Mapping[str, Any],
    timestamp: dt.datetime,
    message_id: str,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Segment ``identify`` message."""
    return _message(
        {"type": "identify", "traits": json_safe(traits)},
        timestamp=timestamp,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        context=context,
    )


def encoded_size(message: Mapping[str, Any]) -> int:
    """Bytes of ``message`` as the transport encodes it (``json.dumps`` defaults)."""
    return len(json.dumps(message).encode())


def fit(message: Mapping[str, Any], limit: int = SEGMENT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """``message``, shrunk when needed to fit Segment's per-message limit.

    In order, until it fits: a long text ``value`` becomes its variation id (as the seed
    documents ask); the evaluated user's custom attributes are dropped, largest first;
    long text properties are cut. Raises :class:`MessageTooLarge` when it still does not
    fit. A message that fits is returned unchanged.
    """
    if encoded_size(message) <= limit:
        return dict(message)
    shrunk = copy.deepcopy(dict(message))
    properties = shrunk.get("properties")
    if isinstance(properties, dict):
        variation = properties.get("variation_id")
        if isinstance(properties.get("value"), str) and variation:
            properties["value"] = variation
            if encoded_size(shrunk) <= limit:
                return shrunk
    for holder in _user_objects(shrunk):
        if _trim_user(holder, shrunk, limit):
            return shrunk
    if isinstance(properties, dict) and _cut_text(properties, shrunk, limit):
        return shrunk
    raise MessageTooLarge(
        f"The message is {encoded_size(shrunk):,} bytes after shrinking; Segment accepts at "
        f"most {limit:,} bytes per message."
    )


def _user_objects(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluated user's attribute dicts in ``message``: ``properties.user`` and traits."""
    found = []
    properties = message.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("user"), dict):
        found.append(properties["user"])
    if isinstance(message.get("traits"), dict):
        found.append(message["traits"])
    return found


_USER_CORE = frozenset({"Identifier", "Email", "Country", "id", "email", "country"})


def _trim_user(user: dict[str, Any], message: dict[str, Any], limit: int) -> bool:
    """Drop custom attributes, largest first, until ``message`` fits. True when it does."""
    custom = sorted(
        (key for key in user if key not in _USER_CORE),
        key=lambda key: len(json.dumps(user[key])),
        reverse=True,
    )
    for key in custom:
        del user[key]
        user["_trimmed"] = True
        if encoded_size(message) <= limit:
            return True
    return encoded_size(message) <= limit


def _cut_text(properties: dict[str, Any], message: dict[str, Any], limit: int) -> bool:
    """Cut the long text properties, longest first, until ``message`` fits."""
    for key in sorted(
        (k for k in _CUTTABLE_TEXT if isinstance(properties.get(k), str)),
        key=lambda k: len(properties[k]),
        reverse=True,
    ):
        if encoded_size(message) <= limit:
            return True
        text: str = properties[key]
        # The longest prefix that fits, by binary search (escaping makes sizes uneven).
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            properties[key] = text[:middle] + TRUNCATION_MARK
            if encoded_size(message) <= limit:
                low = middle
            else:
                high = middle - 1
        properties[key] = text[:low] + TRUNCATION_MARK
    return encoded_size(message) <= limit
