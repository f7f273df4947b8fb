"""Keeping secrets secret: redaction for display, and scrubbing for stored headers.

Webhook headers are kept by allowlist: the values of headers known to be harmless
(:data:`HARMLESS_HEADERS`, plus ``RECEIPT_HEADERS``), only the names of the others
(ConfigCat lets users add any header to a webhook, and one may carry a credential whatever
it is called), and not even the names of those that look like credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .conf import get_settings
from .header_names import HARMLESS_HEADERS, SECRET_HEADERS, is_secret_header
from .text import clean

__all__ = [
    "HARMLESS_HEADERS",
    "NOT_STORED",
    "REDACTED",
    "SECRET_HEADERS",
    "is_secret_header",
    "redact",
    "scrub_headers",
]

REDACTED: Final = "…"

# What a header's value is stored and shown as when it is not kept.
NOT_STORED: Final = "(not stored)"


def redact(secret: str | None) -> str:
    """Show a secret as ``…abcd``: enough to tell keys apart, never enough to use one.

    Short values show nothing at all, since four characters of a short key are most of it.
    """
    if not secret:
        return ""
    return REDACTED + secret[-4:] if len(secret) >= 16 else REDACTED


def scrub_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` fit to store and to show: the values of harmless headers (as
    storable text), :data:`NOT_STORED` for the others, and no credentials, signatures or
    cookies at all (by name, and anything whose name looks like one).

    Applied when a receipt is stored and again when it is shown, so rows stored under a
    looser rule are shown under the current one.
    """
    kept = HARMLESS_HEADERS | {name.lower() for name in get_settings().RECEIPT_HEADERS}
    return {
        clean(name): clean(value) if name.lower() in kept else NOT_STORED
        for name, value in headers.items()
        if not is_secret_header(name)
    }
