"""What personal data of the evaluated user leaves, per connection. Pure: no Django, no I/O.

The ConfigCat user reaches Segment three ways: the ``user`` property of "Feature Flag
Evaluated", the ``traits`` of ``identify``, and the message's ``userId``. A
:class:`PersonalData` policy governs all three alike, so a user's events still join up:

- ``"all"`` (the default, as ConfigCat's integration does): everything, as it is.
- ``"allowlist"``: only the attributes named (``Identifier``, ``Email``, ``Country`` or a
  custom attribute's name). When ``Identifier`` is not named, it leaves only as its
  pseudonym, as the ``userId``: Segment needs an identity, and the same user must keep
  the same one.
- ``"hashed"``: the identifier and the email leave as pseudonyms (the other attributes as
  they are); the ``userId`` is the identifier's pseudonym.

A pseudonym is the hex HMAC-SHA256 of the value, keyed with the connection's secret salt
(an email is trimmed and lower-cased first). It is stable, so a user is the same user in
every event of that connection, and nobody without the salt can compute it from a
guessed email. Different connections have different salts: their pseudonyms differ.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALL = "all"
ALLOWLIST = "allowlist"
HASHED = "hashed"
POLICIES = (ALL, ALLOWLIST, HASHED)

IDENTIFIER = "Identifier"
EMAIL = "Email"
_DOMAIN = b"configcat_segment.personal-data\x1f"  # never change it: pseudonyms would change


def pseudonym(salt: str, value: Any) -> str:
    """The pseudonym of ``value`` for a connection with secret ``salt`` (64 hex digits)."""
    return hmac.new(salt.encode(), _DOMAIN + str(value).encode(), hashlib.sha256).hexdigest()


def email_pseudonym(salt: str, email: Any) -> str:
    """The pseudonym of an email address: the same whatever its case or surrounding spaces."""
    return pseudonym(salt, str(email).strip().lower())


def policy_problem(policy: Any) -> str | None:
    if policy in POLICIES:
        return None
    return f"{policy!r} is not a personal data policy: use " + ", ".join(repr(p) for p in POLICIES)


def split_attribute_names(text: str) -> list[str]:
    """Attribute names typed into a text box: one per line, or separated by commas.

    Not by spaces: a custom attribute's name may contain one.
    """
    return [name.strip() for line in text.splitlines() for name in line.split(",") if name.strip()]


@dataclass(frozen=True)
class PersonalData:
    """A connection's personal data policy (see the module's docstring)."""

    policy: str = ALL
    attributes: frozenset[str] = frozenset()

    @classmethod
    def build(cls, policy: str = ALL, attributes: Iterable[str] = ()) -> PersonalData:
        return cls(policy, frozenset(attributes))

    @property
    def sends_everything(self) -> bool:
        return self.policy == ALL

    def user_id(self, identifier: str, salt: str) -> str:
        """The ``userId`` for the user with ``identifier``."""
        if self.policy == ALL or (self.policy == ALLOWLIST and IDENTIFIER in self.attributes):
            return identifier
        return pseudonym(salt, identifier)

    def user(self, user: Mapping[str, Any], salt: str) -> dict[str, Any]:
        """The user's attributes (as ConfigCat serialises them) that may leave, and how."""
        if self.policy == ALL:
            return dict(user)
        if self.policy == ALLOWLIST:
            return {name: value for name, value in user.items() if name in self.attributes}
        shown = dict(user)
        if shown.get(IDENTIFIER) is not None:
            shown[IDENTIFIER] = pseudonym(salt, shown[IDENTIFIER])
        if shown.get(EMAIL) is not None:
            shown[EMAIL] = email_pseudonym(salt, shown[EMAIL])
        return shown


EVERYTHING = PersonalData()
