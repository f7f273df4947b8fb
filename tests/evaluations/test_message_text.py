"""The exact text of the messages a batch of evaluations becomes, pinned.

What is stored is what Segment receives, and a messageId must never change for the same
evaluation: the writer may get faster, never different. The expected texts, one a line
in ``data/pinned_messages.txt`` (the connection's number, a tab, the text), were made by
the writer before its per-batch caches. One batch covers the same ``User`` object in
several evaluations and for connections whose personal data policies differ, so a cache
that leaked one connection's view of the user into another's would show here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from configcatclient.user import User

from configcat_segment.evaluations.payloads import Evaluation, messages_for
from configcat_segment.evaluations.store import _build
from configcat_segment.models import SegmentConnection

PINNED = Path(__file__).parent / "data" / "pinned_messages.txt"

SHARED_USER = User(
    "ü-42",
    email=" Ada@Example.com ",
    country="HU",
    custom={"plan": "pro", "seats": 3, "ratio": 0.5, "beta": True, "nul": "a\x00b", "emoji": "😀"},
)
PLAIN_USER = User("u-7")


def connection(number: int, **policies: str) -> SegmentConnection:
    found = SegmentConnection(name=f"pinned {number}", write_key="k", **policies)
    found.pk = uuid.UUID(int=number)
    found.message_id_salt = f"pinned-salt-{number}"
    return found


CONNECTIONS = [
    connection(1),
    connection(2, personal_data="hashed", experiment_viewed="also"),
    connection(
        3,
        personal_data="allowlist",
        personal_data_attributes="Country, plan",
        experiment_viewed="instead",
    ),
    connection(
        4,
        exposure_policy="decided",
        personal_data="allowlist",
        personal_data_attributes="Identifier, Email",
    ),
]
REQUEST = {"page": {"url": "https://example.com/ü"}, "userAgent": "UA", "ip": "10.0.0.1"}


def evaluation(
    flag_key: str, value: Any, variation_id: str | None, at: float, **fields: Any
) -> Evaluation:
    defaults = {"user": None, "user_id": None, "anonymous_id": None, "context": None}
    return Evaluation(flag_key, value, variation_id, at, **{**defaults, **fields})


SHARED = {"user": SHARED_USER, "user_id": "ü-42", "window": 5882564}
EVALUATIONS = [
    evaluation(
        "checkoutVariant",
        "B",
        "v-b",
        1764769200.1239,
        **SHARED,
        anonymous_id="ajs-1",
        context=REQUEST,
        identify=True,
        by_percentage=True,
    ),
    evaluation("isPremium", True, "v-true", 1764769200.9999, **SHARED, by_rule=True),
    evaluation(
        "bannerJson",
        "x" * 300,
        "v-long",
        1764769201.0,
        user=PLAIN_USER,
        user_id="u-7",
        identify=True,
        nonce=12345678901234567890,
    ),
    evaluation(
        "maxItems",
        7.25,
        None,
        1764769202.5,
        anonymous_id="anon-1",
        context={"ip": "::1"},
        window=5882564,
        random_anonymous_id=True,
    ),
    evaluation(
        "discountRate",
        "t" * 300,
        None,
        1764769203.0,
        anonymous_id="anon-2",
        window=5882564,
        by_percentage=True,
    ),
]


def test_a_batch_is_stored_as_exactly_the_pinned_texts():
    built, unbuildable, _ = _build(EVALUATIONS, CONNECTIONS)
    assert unbuildable == []
    stored = [f"{row.connection_id.int}\t{row.text}" for _, rows in built for row in rows]
    assert stored == PINNED.read_text(encoding="utf-8").splitlines()


def test_messages_of_the_same_user_are_independent_dicts():
    """Built from what the batch shares, each message is still its own to change."""
    identify, first = messages_for(EVALUATIONS[0], salt="s", long_value_length=256)
    (second,) = messages_for(EVALUATIONS[1], salt="s", long_value_length=256)
    first["properties"]["user"]["plan"] = "changed"
    identify["traits"]["plan"] = "changed"
    first["context"]["library"]["name"] = "changed"
    assert second["properties"]["user"]["plan"] == "pro"
    assert second["context"]["library"]["name"] == "configcat_segment"
    (again,) = messages_for(EVALUATIONS[1], salt="s", long_value_length=256)
    assert again == second
