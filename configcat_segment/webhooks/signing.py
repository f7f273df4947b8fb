"""Verifying ConfigCat webhook signatures (V1). Pure functions: no Django I/O.

Verification is a chain of small validators, run in order; the first that fails raises
:class:`~configcat_segment.exceptions.WebhookRejected` (a REST framework exception), which
carries the HTTP status, a machine-readable code and a message naming the problem:

1. :func:`read_headers`: the id, timestamp and signature headers are present;
2. :func:`check_timestamp`: the timestamp is a Unix time within the tolerance, in the past
   or the future (a replayed or a forged-for-later request);
3. :func:`check_signature`: one of the received signatures matches one of the keys.

:func:`verify` runs the chain; :func:`sign` and :func:`signature_headers` sign as
ConfigCat does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..constants import HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP
from ..exceptions import WebhookRejected


@dataclass(frozen=True)
class SignedHeaders:
    """The three signature headers, as received (stripped of surrounding spaces)."""

    webhook_id: str
    timestamp: str
    signatures: str


@dataclass(frozen=True)
class VerifiedWebhook:
    """What verification established: the webhook's id and when ConfigCat sent it.

    Both are empty for an unsigned request that did not send them.
    """

    webhook_id: str = ""
    timestamp: dt.datetime | None = None


def signed_content(webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes ConfigCat signs: id, timestamp and raw body, with no separator."""
    return (webhook_id + timestamp).encode() + body


def sign(key: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The V1 signature: base64 of HMAC-SHA256 keyed with the whole key string as UTF-8."""
    digest = hmac.new(key.encode(), signed_content(webhook_id, timestamp, body), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def signature_headers(
    keys: Sequence[str], body: bytes, *, webhook_id: str, timestamp: str
) -> dict[str, str]:
    """The headers ConfigCat sends with ``body``: one signature per key, comma-separated.

    With no keys there is no signature header (an unsigned request).
    """
    headers = {HEADER_WEBHOOK_ID: webhook_id, HEADER_WEBHOOK_TIMESTAMP: timestamp}
    if keys:
        headers[HEADER_WEBHOOK_SIGNATURE] = ",".join(
            sign(key, webhook_id, timestamp, body) for key in keys
        )
    return headers


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return ""


def read_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The signature headers; raises ``missing_header`` naming every one that is absent."""
    found = SignedHeaders(
        webhook_id=_header(headers, HEADER_WEBHOOK_ID),
        timestamp=_header(headers, HEADER_WEBHOOK_TIMESTAMP),
        signatures=_header(headers, HEADER_WEBHOOK_SIGNATURE),
    )
    missing = [
        name
        for name, value in (
            (HEADER_WEBHOOK_ID, found.webhook_id),
            (HEADER_WEBHOOK_TIMESTAMP, found.timestamp),
            (HEADER_WEBHOOK_SIGNATURE, found.signatures),
        )
        if not value
    ]
    if missing:
        raise WebhookRejected(
            "missing_header",
            f"Missing or empty header{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.",
        )
    return found


def check_timestamp(timestamp: str, *, now: float, tolerance: int) -> dt.datetime:
    """The timestamp as an aware UTC datetime, if it is within ``tolerance`` s of ``now``."""
    # Twelve digits reach the year 33658; more is milliseconds, or not a time at all.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookRejected(
            "invalid_timestamp",
            f"{HEADER_WEBHOOK_TIMESTAMP} must be a Unix time in whole seconds, "
            f"not {timestamp[:40]!r}.",
        )
    age = now - int(timestamp)
    if age > tolerance:
        raise WebhookRejected(
            "stale_timestamp",
            f"{HEADER_WEBHOOK_TIMESTAMP} is {age:.0f} s old; at most {tolerance} s is accepted.",
            status=403,
        )
    if -age > tolerance:
        raise WebhookRejected(
            "future_timestamp",
            f"{HEADER_WEBHOOK_TIMESTAMP} is {-age:.0f} s in the future; at most {tolerance} s "
            "of clock difference is accepted.",
            status=403,
        )
    return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)


def check_signature(keys: Sequence[str], headers: SignedHeaders, body: bytes) -> None:
    """Accept when any comma-separated received signature matches any key.

    Every pair is compared, in constant time, so the time taken tells nothing about which
    key or which signature came close.
    """
    received = [s.strip().encode() for s in headers.signatures.split(",") if s.strip()]
    expected = [sign(key, headers.webhook_id, headers.timestamp, body).encode() for key in keys]
    matched = False
    for signature in received:
        for candidate in expected:
            matched |= hmac.compare_digest(signature, candidate)
    if not matched:
        raise WebhookRejected(
            "bad_signature",
            f"No signature in {HEADER_WEBHOOK_SIGNATURE} matches this webhook's signing keys "
            "(the body, id or timestamp was changed, or the key is wrong).",
            status=403,
        )


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Sequence[str],
    now: float,
    tolerance: int,
    allow_unsigned: bool = False,
) -> VerifiedWebhook:
    """Run the validators in order and return what they established.

    ``keys`` are the connection's signing keys. With none, requests are refused unless
    ``allow_unsigned``; an unsigned request's id and timestamp are then optional, but a
    timestamp that is sent must still be within the tolerance.
    """
    if not keys:
        if not allow_unsigned:
            raise WebhookRejected(
                "no_signing_key",
                "This webhook has no signing key configured, and unsigned webhooks are not "
                "allowed. Add ConfigCat's signing key to the Segment connection.",
                status=403,
            )
        timestamp = _header(headers, HEADER_WEBHOOK_TIMESTAMP)
        return VerifiedWebhook(
            webhook_id=_header(headers, HEADER_WEBHOOK_ID),
            timestamp=check_timestamp(timestamp, now=now, tolerance=tolerance)
            if timestamp
            else None,
        )
    signed = read_headers(headers)
    moment = check_timestamp(signed.timestamp, now=now, tolerance=tolerance)
    check_signature(keys, signed, body)
    return VerifiedWebhook(webhook_id=signed.webhook_id, timestamp=moment)
