"""Keeping secrets secret: redaction for display, and scrubbing for stored headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .text import clean

REDACTED: Final = "…"

# Headers that carry credentials or signatures; they are never stored or shown.
SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-configcat-webhook-signature-v1",
        "x-api-key",
    }
)


def redact(secret: str | None) -> str:
    """Show a secret as ``…abcd``: enough to tell keys apart, never enough to use one.

    Short values show nothing at all, since four characters of a short key are most of it.
    """
    if not secret:
        return ""
    return REDACTED + secret[-4:] if len(secret) >= 16 else REDACTED


# Words in a header's name that suggest a credential, whatever the header is called
# (ConfigCat lets users add custom headers to a webhook, e.g. "X-Webhook-Token").
_SECRET_NAME_PARTS: Final = ("auth", "cookie", "key", "password", "secret", "signature", "token")


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(part in lowered for part in _SECRET_NAME_PARTS)


def scrub_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` fit to store and to show: no credentials, signatures or
    cookies (by name, and anything whose name looks like one), values storable as text."""
    return {
        clean(name): clean(value) for name, value in headers.items() if not is_secret_header(name)
    }
