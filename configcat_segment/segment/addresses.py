"""Which hosts a custom endpoint may point at. Pure functions, no Django, no DNS.

Events carry the write key, and a custom endpoint is typed by staff: pointed at this
machine, its private network or a cloud metadata service, the server would POST there
itself (server-side request forgery). So by default an endpoint must be publicly routable;
``CONFIGCAT_SEGMENT["ALLOWED_ENDPOINT_HOSTS"]`` lists the exceptions (host names, IP
addresses and networks), read into an :class:`EndpointPolicy`.

:meth:`EndpointPolicy.host_problem` judges a host as written (when an endpoint is saved,
and before sending); :meth:`EndpointPolicy.address_problem` judges each address a name
resolves to (when connecting, see :mod:`.network`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that mean this machine, whatever the resolver says.
LOCAL_NAMES: Final = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)
# Cloud metadata services by name (their addresses are link-local or private anyway).
METADATA_NAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)

# Where an IPv6 address carries an IPv4 one that is what the packet finally reaches.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# One part of an IPv4 address as inet_aton reads it: decimal, octal (leading 0) or hex.
_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_HOST_NAME = re.compile(r"\.?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def normalise_host(host: str) -> str:
    """``host`` lower-cased, without IPv6 brackets or the root's trailing dot."""
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells, in any form a resolver reads as one, else None.

    Besides the usual forms that means what ``inet_aton`` accepts: ``2130706433``,
    ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1.
    """
    text = normalise_host(host)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_part_value(p) for p in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _part_value(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    return int(part, 8 if part.startswith("0") else 10)


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped, NAT64 or 6to4."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(address: Address) -> str | None:
    """What makes ``address`` unfit for an endpoint ("a loopback address", ...), or None."""
    target = _embedded_ipv4(address) or address
    for test, words in (
        (target.is_unspecified, "an unspecified address"),
        (target.is_loopback, "a loopback address"),
        (target.is_link_local, "a link-local address (where cloud metadata services live)"),
        (target.is_multicast, "a multicast address"),
        (target.is_reserved, "a reserved address"),
        (target.is_private, "a private address"),
        (not target.is_global, "an address that is not publicly routable"),
    ):
        if test:
            return words
    return None


def parse_entry(entry: object) -> Network | str | None:
    """One allowlist entry as a network (addresses are /32 or /128) or a host name.

    A host name is kept lower-cased; a leading dot (``.corp.example``) also allows its
    subdomains. Returns None for anything else (a URL, a port, ``*``, a typo).
    """
    if not isinstance(entry, str) or not entry.strip():
        return None
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text.removeprefix("[").removesuffix("]"), strict=False)
    except ValueError:
        pass
    if "/" in text or ":" in text or literal_address(text) is not None:
        return None
    return text.rstrip(".") if _HOST_NAME.fullmatch(text) else None


@dataclass(frozen=True)
class EndpointPolicy:
    """The exceptions to "public addresses only": host names, and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[object]) -> EndpointPolicy:
        """The policy of a valid ``ALLOWED_ENDPOINT_HOSTS`` (invalid entries are skipped)."""
        parsed = [parse_entry(entry) for entry in entries]
        return cls(
            hosts=frozenset(p for p in parsed if isinstance(p, str)),
            networks=tuple(p for p in parsed if p is not None and not isinstance(p, str)),
        )

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is a name the allowlist names (it may then resolve to anything)."""
        name = normalise_host(host)
        return name in self.hosts or any(
            entry.startswith(".") and (name == entry[1:] or name.endswith(entry))
            for entry in self.hosts
        )

    def address_problem(self, address: Address) -> str | None:
        """What is wrong with connecting to ``address``, or None when it is allowed."""
        embedded = _embedded_ipv4(address)
        if any(a in network for a in (address, embedded) if a for network in self.networks):
            return None
        return address_problem(address)

    def host_problem(self, host: str) -> str | None:
        """What is wrong with ``host`` as written, without resolving it, or None.

        A name may still resolve to an address that is not allowed: that is checked when
        connecting.
        """
        if self.host_allowed(host):
            return None
        address = literal_address(host)
        if address is not None:
            return self.address_problem(address)
        name = normalise_host(host)
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            return "a name of this machine (loopback)"
        if name in METADATA_NAMES:
            return "a cloud metadata service"
        return None


def host_refusal(host: str, problem: str) -> str:
    """``2130706433 (127.0.0.1) is a loopback address``: a host as written, and why not."""
    address = literal_address(host)
    spelled = f"{host} ({address})" if address is not None and str(address) != host else host
    return f"{spelled} is {problem}"
