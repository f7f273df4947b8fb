"""Segment regions and custom endpoints. Pure functions, no Django I/O."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

US: Final = "us"
EU: Final = "eu"
CUSTOM: Final = "custom"

ENDPOINTS: Final = {
    US: "https://api.segment.io",
    EU: "https://events.eu1.segmentapis.com",
}


class InvalidEndpoint(ValueError):
    """A custom endpoint URL that cannot be a Segment-compatible base URL."""


def normalise_endpoint(url: str) -> str:
    """Validate a custom endpoint and return it without a trailing slash.

    The endpoint is a base URL: ``/v1/batch`` is appended to it when sending. A path is
    allowed as a prefix (``https://proxy.example.com/segment``), but not query strings,
    fragments, credentials or the API path itself.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidEndpoint(f"{text!r} is not a valid URL ({exc}).") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidEndpoint(f"{text!r} must start with http:// or https://.")
    if not parts.hostname:
        raise InvalidEndpoint(f"{text!r} has no host name.")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidEndpoint(f"{text!r} must not contain spaces or control characters.")
    if parts.username or parts.password:
        raise InvalidEndpoint(
            f"{text!r} must not contain credentials; the write key is the credential."
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidEndpoint(f"{text!r} must not have a query string or fragment.")
    path = parts.path.rstrip("/")
    if "/v1/" in path + "/":
        raise InvalidEndpoint(
            f"{text!r} includes the API path; give the base URL only "
            f"(/v1/batch is added when sending)."
        )
    return f"{parts.scheme}://{parts.netloc}{path}"


def parse_region(value: str) -> tuple[str, str]:
    """Read ``us``, ``eu`` or a custom URL into ``(region, custom_endpoint)``.

    Raises :class:`InvalidEndpoint` with a message fit to show to the user.
    """
    text = value.strip()
    if text.lower() in ENDPOINTS:
        return text.lower(), ""
    if "://" not in text:
        raise InvalidEndpoint(f"region must be 'us', 'eu' or an http(s) URL, not {value!r}.")
    return CUSTOM, normalise_endpoint(text)


def endpoint_for(region: str, custom_endpoint: str = "") -> str:
    """The base URL that events for this region are sent to."""
    if region == CUSTOM:
        return custom_endpoint
    return ENDPOINTS[region]
