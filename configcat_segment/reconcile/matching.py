"""Which audit-log entries a webhook already delivered. Pure functions: no Django, no I/O.

An audit entry (one setting's value changed in one config and environment) and a change
received by webhook are the same change when they name the same environment, config and
setting key, the same changer, and are at most the tolerance apart. Each webhook change
accounts for one entry at most, so two quick changes to the same flag with one webhook
lost still forward the lost one: pairs are made nearest first, a webhook sent after the
change (as ConfigCat sends them) before one that would have been sent before it.

What a webhook leaves empty (a GET webhook has no body: no setting, no changer) matches
anything: the webhook says something changed, and counts for one entry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .answers import AuditEntry


@dataclass(frozen=True)
class Scope:
    """A config + environment, with the names the webhooks gave them."""

    config_id: str
    environment_id: str
    config_name: str = ""
    environment_name: str = ""


@dataclass(frozen=True)
class ScopedEntry:
    """An audit entry and the config + environment it was found under."""

    entry: AuditEntry
    scope: Scope


@dataclass(frozen=True)
class ReceivedChange:
    """One setting change a webhook delivered (one "Feature Flag Changed" event)."""

    event_id: int
    at: dt.datetime
    config_id: str = ""
    environment_id: str = ""
    setting_key: str = ""
    user_email: str = ""
    user_name: str = ""


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def same_changer(entry: AuditEntry, change: ReceivedChange) -> bool:
    """By email when both have one, else by name when both have one, else unknown: yes."""
    if entry.user_email and change.user_email:
        return _same_text(entry.user_email, change.user_email)
    if entry.user_name and change.user_name:
        return _same_text(entry.user_name, change.user_name)
    return True


def names_setting(entry: AuditEntry, key: str) -> bool:
    """Whether ``entry`` is about the setting ``key``.

    ConfigCat documents ``actionTarget`` only as "what was changed": the setting's key, or
    a text that contains it. So: the key itself, or the key as a whole word in the target
    or, when the target is empty, in the details ("key: false ➔ true").
    """
    if not key or _same_text(entry.action_target, key):
        return True
    word = re.compile(r"(?<![\w-])" + re.escape(key) + r"(?![\w-])")
    if word.search(entry.action_target):
        return True
    return not entry.action_target and bool(word.search(entry.details))


def matches(scoped: ScopedEntry, change: ReceivedChange, tolerance: dt.timedelta) -> bool:
    scope = scoped.scope
    return (
        abs(change.at - scoped.entry.at) <= tolerance
        and change.config_id in ("", scope.config_id)
        and change.environment_id in ("", scope.environment_id)
        and names_setting(scoped.entry, change.setting_key)
        and same_changer(scoped.entry, change)
    )


def match(
    entries: Sequence[ScopedEntry],
    received: Iterable[ReceivedChange],
    tolerance: dt.timedelta,
) -> dict[int, ReceivedChange | None]:
    """For each entry (by ``auditLogId``), the webhook change that delivered it, or None.

    Matching pairs are taken cheapest first: the time from the change to its webhook, or,
    for a webhook stamped before the change (clocks differ), that gap plus the tolerance.
    Ties go to the older entry and change, so the result does not depend on input order.
    """
    changes = sorted(received, key=lambda c: (c.at, c.event_id))
    ordered = sorted(entries, key=lambda s: (s.entry.at, s.entry.audit_log_id))

    def cost(scoped: ScopedEntry, change: ReceivedChange) -> dt.timedelta:
        gap = change.at - scoped.entry.at
        return gap if gap >= dt.timedelta(0) else -gap + tolerance

    pairs = sorted(
        (
            (cost(scoped, change), e, c)
            for e, scoped in enumerate(ordered)
            for c, change in enumerate(changes)
            if matches(scoped, change, tolerance)
        ),
        key=lambda pair: pair[:3],
    )
    found: dict[int, ReceivedChange | None] = {s.entry.audit_log_id: None for s in ordered}
    used: set[int] = set()
    for _, e, c in pairs:
        entry_id = ordered[e].entry.audit_log_id
        if found[entry_id] is None and c not in used:
            found[entry_id] = changes[c]
            used.add(c)
    return found
