"""Keeping secrets secret: redaction for display, and scrubbing for stored headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

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


def scrub_headers(headers: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``headers`` without credentials, signatures or cookies."""
    drop = SECRET_HEADERS | {name.lower() for name in extra}
    return {name: value for name, value in headers.items() if name.lower() not in drop}


# Words in a header's name that suggest a credential, whatever the header is called.
_SECRET_NAME_PARTS: Final = ("auth", "cookie", "key", "password", "secret", "signature", "token")


def displayable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` fit to show: stored headers are scrubbed already, and this also drops any
    header whose name looks like it carries a credential."""
    return {
        name: value
        for name, value in scrub_headers(headers).items()
        if not any(part in name.lower() for part in _SECRET_NAME_PARTS)
    }
