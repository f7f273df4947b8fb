"""Which HTTP headers are harmless and which carry credentials, by name. Pure.

Settings validation (``RECEIPT_HEADERS`` may not name a credential) and
:mod:`.redaction` (what a stored receipt keeps) both read these rules.
"""

from __future__ import annotations

from typing import Final

# Headers whose values are kept: what ConfigCat sends, and how the request came.
HARMLESS_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "user-agent",
        "x-configcat-webhook-id",
        "x-configcat-webhook-timestamp",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    }
)

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


# Words in a header's name that suggest a credential, whatever the header is called
# (ConfigCat lets users add custom headers to a webhook, e.g. "X-Webhook-Token").
_SECRET_NAME_PARTS: Final = ("auth", "cookie", "key", "password", "secret", "signature", "token")


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(part in lowered for part in _SECRET_NAME_PARTS)
