"""What a test send's answer means, in words. Pure: no Django, no I/O.

Segment answers 200 to nearly any well-formed request and reports problems only in the
source's debugger, so even success comes with a thing to check: data sent to the wrong
region is accepted and then dropped without a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ..segment import regions

SUCCESS: Final = "success"
WARNING: Final = "warning"
ERROR: Final = "error"

DEBUGGER = "Connections → Sources → your source → Debugger"
API_KEYS = "Connections → Sources → your source → Settings → API Keys"

_TIMEOUT_WORDS = ("timed out", "timeout")
_TLS_WORDS = ("ssl", "certificate", "tls")
_DNS_WORDS = (
    "name or service not known",
    "nodename nor servname",
    "failed to resolve",
    "nameresolutionerror",
    "getaddrinfo failed",
    "temporary failure in name resolution",
)
_REFUSED_WORDS = ("connection refused", "errno 111", "actively refused")


@dataclass(frozen=True)
class Advice:
    level: str  # SUCCESS, WARNING or ERROR
    headline: str
    details: tuple[str, ...] = ()


def advise(
    status: int | None, error: str, *, region: str, endpoint: str, timeout: float, event: str
) -> Advice:
    """Explain Segment's answer (``status``, or ``None`` and the transport's ``error``)."""
    host = urlsplit(endpoint).netloc or endpoint
    if status is None:
        return _no_answer(error, host=host, timeout=timeout)
    if 200 <= status < 300:
        return Advice(
            SUCCESS, f"Accepted: {host} answered {status}.", _check_arrival(region, event)
        )
    if status in (401, 403):
        return Advice(
            ERROR,
            f"The write key was refused ({status}).",
            (
                f"Copy the write key again from Segment ({API_KEYS}), paste it into this "
                "connection and save: its waiting events are then sent at once.",
                "A write key belongs to one source in one region: check that the region "
                "here is the one of the Segment workspace (EU workspaces need the EU "
                "region).",
            ),
        )
    if 300 <= status < 400:
        return Advice(
            ERROR,
            f"The endpoint redirects ({status}) instead of answering.",
            (
                "Use the address it redirects to as the custom endpoint (often https:// "
                "instead of http://, or a different host name).",
            ),
        )
    if status in (404, 405):
        return Advice(
            ERROR,
            f"There is no Tracking API at this endpoint ({status}).",
            (
                f"{endpoint}/v1/batch does not exist. For a custom endpoint give the base "
                "URL only (/v1/batch is added), and check that it is a Segment-compatible API.",
            ),
        )
    if status == 429:
        return Advice(
            WARNING,
            "Segment is rate limiting this source (429).",
            (
                "Events are kept and sent when Segment allows (its Retry-After is honoured). "
                "Try the test again in a minute.",
            ),
        )
    if status >= 500:
        return Advice(
            WARNING,
            f"{host} is unavailable ({status}).",
            (
                "Events are kept and retried with backoff until it answers. Check "
                "status.segment.com, or the proxy in front of the endpoint.",
            ),
        )
    return Advice(
        ERROR,
        f"The request was refused ({status}).",
        (
            "Segment refuses requests it cannot read (400): test events never should be. "
            "With a custom endpoint, check that it is a Segment-compatible Tracking API.",
        ),
    )


def _check_arrival(region: str, event: str) -> tuple[str, ...]:
    look = (
        f"Segment accepts nearly any well-formed request, so check that the events arrived: "
        f"open the source in Segment ({DEBUGGER}) and look for “{event}”."
    )
    if region == regions.US:
        return (
            look,
            "If it is not there within a minute, the workspace is probably in the EU: an EU "
            "workspace's write key sent to the US endpoint is accepted, then silently "
            "dropped. Switch this connection's region to EU.",
        )
    if region == regions.EU:
        return (
            look,
            "If it is not there within a minute, the workspace is probably in the US: a US "
            "workspace's write key sent to the EU endpoint is accepted, then silently "
            "dropped. Switch this connection's region to US.",
        )
    return (
        f"The custom endpoint accepted them. Check that “{event}” arrived where it forwards "
        "them (its destination, or Segment's debugger behind it).",
    )


def _no_answer(error: str, *, host: str, timeout: float) -> Advice:
    text = error.lower()
    if "allowed_endpoint_hosts" in text:  # segment.network refused the address
        return Advice(
            ERROR,
            f"Not sent: {host} is not a public address.",
            (
                "Events go to loopback, private or link-local addresses (where cloud "
                'metadata services live) only when CONFIGCAT_SEGMENT["ALLOWED_ENDPOINT_HOSTS"] '
                "allows them (docs/security.md). Allow this host or its network there if the "
                "endpoint is intended; otherwise use Segment's US or EU region.",
            ),
        )
    if any(word in text for word in _TIMEOUT_WORDS):
        return Advice(
            ERROR,
            f"No answer from {host} within {timeout:g} s (HTTP_TIMEOUT_SECONDS).",
            (
                f"Check that this server may reach {host}: an outbound firewall, or a proxy "
                "it must use (HTTPS_PROXY). If it usually works, Segment may be having an "
                "incident (status.segment.com); events are kept and retried meanwhile.",
            ),
        )
    if any(word in text for word in _TLS_WORDS):
        return Advice(
            ERROR,
            f"The TLS connection to {host} failed.",
            (
                "Usually a certificate this server does not trust: a proxy that inspects "
                "TLS, or a custom endpoint with a private certificate authority (point "
                "REQUESTS_CA_BUNDLE at its certificate). A server clock far off breaks TLS "
                "too.",
            ),
        )
    if any(word in text for word in _DNS_WORDS):
        return Advice(
            ERROR,
            f"The host name {host} could not be resolved.",
            ("Check its spelling, and this server's DNS.",),
        )
    if any(word in text for word in _REFUSED_WORDS):
        return Advice(
            ERROR,
            f"{host} refused the connection.",
            (
                "Nothing accepts connections at that address and port: check the custom "
                "endpoint's host and port, and that the service behind it is running.",
            ),
        )
    return Advice(
        ERROR,
        f"No answer from {host}.",
        ("The connection failed before an answer came; the error below says how.",),
    )
