"""Matching audit entries with the changes webhooks delivered: pure, so tested directly."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from configcat_segment.reconcile.answers import AuditEntry
from configcat_segment.reconcile.matching import ReceivedChange, Scope, ScopedEntry, match

T0 = dt.datetime(2026, 9, 21, 10, 0, tzinfo=dt.UTC)
TOLERANCE = dt.timedelta(minutes=10)
SCOPE = Scope("config-1", "env-1")
_ids = itertools.count(1)


def entry(seconds: float = 0, key: str = "flag", **fields) -> ScopedEntry:
    values = {"user_email": "jane@example.com", "user_name": "Jane Doe", "action_target": key}
    values.update(fields)
    scope = values.pop("scope", SCOPE)
    at = T0 + dt.timedelta(seconds=seconds)
    return ScopedEntry(AuditEntry(audit_log_id=next(_ids), at=at, **values), scope)


def change(seconds: float = 1, key: str = "flag", **fields) -> ReceivedChange:
    values = {
        "config_id": "config-1",
        "environment_id": "env-1",
        "user_email": "jane@example.com",
        "user_name": "Jane Doe",
        "setting_key": key,
    }
    values.update(fields)
    return ReceivedChange(event_id=next(_ids), at=T0 + dt.timedelta(seconds=seconds), **values)


def matched(entries, changes) -> list[bool]:
    found = match(entries, changes, TOLERANCE)
    return [found[e.entry.audit_log_id] is not None for e in entries]


def test_the_same_change_matches():
    assert matched([entry()], [change()]) == [True]


@pytest.mark.parametrize(
    "other",
    [
        {"config_id": "config-2"},
        {"environment_id": "env-2"},
        {"setting_key": "otherFlag"},
        {"user_email": "joe@example.com"},
    ],
)
def test_a_different_scope_key_or_changer_does_not(other):
    assert matched([entry()], [change(**other)]) == [False]


def test_the_tolerance_is_inclusive_both_ways():
    assert matched([entry()], [change(seconds=600)]) == [True]
    assert matched([entry()], [change(seconds=-600)]) == [True]
    assert matched([entry()], [change(seconds=601)]) == [False]


def test_each_webhook_change_accounts_for_one_entry_sent_after_it():
    early, late = entry(seconds=0), entry(seconds=120)
    webhook = change(seconds=100)  # sent before the late change was made: the early one's
    found = match([early, late], [webhook], TOLERANCE)
    assert found[early.entry.audit_log_id] == webhook
    assert found[late.entry.audit_log_id] is None

    webhook = change(seconds=125)  # the late change's, though the early one is in reach
    found = match([early, late], [webhook], TOLERANCE)
    assert found[late.entry.audit_log_id] == webhook
    assert found[early.entry.audit_log_id] is None


def test_the_order_of_the_webhook_changes_does_not_matter():
    entries = [entry(seconds=0), entry(seconds=30)]
    changes = [change(seconds=5), change(seconds=35)]
    assert match(entries, changes, TOLERANCE) == match(entries, changes[::-1], TOLERANCE)


def test_the_changer_by_email_ignoring_case_else_by_name_else_unknown():
    assert matched([entry()], [change(user_email="Jane@Example.com")]) == [True]
    assert matched([entry(user_email="")], [change(user_name="jane  doe")]) == [True]
    assert matched([entry(user_email="")], [change(user_name="Joe")]) == [False]
    assert matched([entry(user_email="", user_name="")], [change()]) == [True]


def test_what_a_bodyless_webhook_leaves_empty_matches_anything():
    bare = change(
        seconds=5, config_id="", environment_id="", setting_key="", user_email="", user_name=""
    )
    assert matched([entry(), entry(seconds=1)], [bare]) == [False, True]  # one: the nearest


def test_the_key_may_be_in_the_target_or_the_details():
    assert matched([entry(key="Flag 'flag' in Main config")], [change()]) == [True]
    assert matched([entry(key="", details="flag: false ➔ true")], [change()]) == [True]
    assert matched([entry(key="flagship")], [change()]) == [False]
    assert matched([entry(key="", details="my-flag: on")], [change()]) == [False]
