"""The pure pieces: dedup memory, anonymous ids, sampling, message building."""

from __future__ import annotations

import json
import uuid

import pytest
from configcatclient.user import User

from configcat_segment.constants import FLAG_EVALUATED, INTEGRATION
from configcat_segment.evaluations.context import parse_anonymous_id, session_anonymous_id
from configcat_segment.evaluations.dedup import DedupCache
from configcat_segment.evaluations.evaluated_user import traits, user_properties
from configcat_segment.evaluations.payloads import (
    Evaluation,
    event_value,
    in_sample,
    messages_for,
    new_nonce,
)

from ..threads import run_together


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_dedup_sends_a_key_once_per_window_and_hits_do_not_extend_it():
    clock = Clock()
    cache = DedupCache(window=300, max_keys=10, clock=clock)
    assert cache.first_seen("a")
    clock.now += 299
    assert not cache.first_seen("a")
    clock.now += 1
    assert cache.first_seen("a"), "the window counts from the send, not from the last hit"
    assert not cache.first_seen("a")


def test_dedup_window_zero_remembers_nothing():
    cache = DedupCache(window=0, max_keys=10)
    assert all(cache.first_seen("a") for _ in range(5))
    assert len(cache) == 0


def test_dedup_is_bounded_and_forgets_the_least_recently_used():
    clock = Clock()
    cache = DedupCache(window=300, max_keys=3, clock=clock)
    for key in "abc":
        assert cache.first_seen(key)
    assert not cache.first_seen("a")  # a is now the most recently used
    assert cache.first_seen("d")  # evicts b
    assert len(cache) == 3
    assert not cache.first_seen("a")
    assert cache.first_seen("b"), "b was forgotten, so it is new again"


def test_dedup_rejects_a_zero_size():
    with pytest.raises(ValueError, match="max_keys"):
        DedupCache(window=1, max_keys=0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc-123", "abc-123"),
        ('"abc-123"', "abc-123"),
        ("%22abc-123%22", "abc-123"),
        ("  abc  ", "abc"),
        ("", None),
        (None, None),
        ('"unterminated', None),
        ("%22%22", None),
        ("42", "42"),
        ('"\\u0000bad"', None),
        ("x" * 256, None),
        ("[1, 2]", "[1, 2]"),
        ('"' + "x" * 10 + '"', "x" * 10),
        ("%5B1%5D", "[1]"),
        ("1e3", "1e3"),
    ],
)
def test_parse_anonymous_id(raw, expected):
    assert parse_anonymous_id(raw) == expected


def test_a_json_non_string_cookie_is_ignored():
    assert parse_anonymous_id('"x"') == "x"
    assert parse_anonymous_id("%22%5B%5D") is None  # '"[]' is not JSON


def test_session_anonymous_id_is_stable_uuid_shaped_and_hides_the_key():
    key = "s3cr3tsessionkey0123456789abcdef"
    first = session_anonymous_id(key)
    assert first == session_anonymous_id(key)
    assert first != session_anonymous_id(key + "x")
    assert str(uuid.UUID(first)) == first
    assert key not in first
    assert key[:8] not in first.replace("-", "")


def test_sampling_is_deterministic_per_user_and_close_to_the_rate():
    users = [f"user-{n}" for n in range(20_000)]
    chosen = [u for u in users if in_sample(u, 0.25)]
    assert chosen == [u for u in users if in_sample(u, 0.25)]
    assert 0.23 < len(chosen) / len(users) < 0.27
    assert all(in_sample(u, 1.0) for u in users[:100])
    assert not any(in_sample(u, 0.0) for u in users[:100])
    # A higher rate keeps everyone a lower rate kept: raising it never drops a user.
    assert set(chosen) <= {u for u in users if in_sample(u, 0.5)}


def test_long_text_is_sent_as_its_variation_id_and_cut_without_one():
    assert event_value("x" * 257, "v-1", 256) == "v-1"
    assert event_value("x" * 256, "v-1", 256) == "x" * 256
    assert event_value("x" * 300, None, 256) == "x" * 256 + "… [truncated]", "as fit() cuts"
    assert event_value(True, "v-1", 1) is True
    assert event_value(12345, "v-1", 2) == 12345


def test_user_properties_are_configcat_json_not_private_fields():
    user = User("u1", email="a@example.com", country="HU", custom={"plan": "pro", "age": 42})
    assert user_properties(user) == {
        "Identifier": "u1",
        "Email": "a@example.com",
        "Country": "HU",
        "plan": "pro",
        "age": 42,
    }
    assert traits(user_properties(user)) == {
        "email": "a@example.com",
        "country": "HU",
        "plan": "pro",
        "age": 42,
    }


def test_a_user_str_cannot_serialise_keeps_the_predefined_attributes():
    user = User("u1", email="a@example.com", custom={"id": uuid.UUID(int=1)})
    assert user_properties(user) == {"Identifier": "u1", "Email": "a@example.com"}


def evaluation(**fields):
    values = {
        "flag_key": "isPremium",
        "value": True,
        "variation_id": "v-on",
        "timestamp": 1_700_000_000.25,
        "user": User("u1", email="a@example.com"),
        "user_id": "u1",
        "anonymous_id": None,
        "context": None,
        "identify": False,
        "window": 5_666_666,
        "nonce": new_nonce(),  # as the recorder draws one for every evaluation it records
    }
    values.update(fields)
    return Evaluation(**values)


def test_messages_for_builds_the_seed_event():
    (track,) = messages_for(evaluation(), salt="salt", long_value_length=256)
    assert track["type"] == "track"
    assert track["event"] == FLAG_EVALUATED
    assert track["userId"] == "u1"
    assert "anonymousId" not in track
    assert track["properties"] == {
        "feature_flag_key": "isPremium",
        "value": True,
        "variation_id": "v-on",
        "user": {"Identifier": "u1", "Email": "a@example.com"},
    }
    assert track["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert track["context"]["integration"] == INTEGRATION
    assert len(track["messageId"]) <= 100


def test_identify_comes_first_with_traits():
    identify, track = messages_for(evaluation(identify=True), salt="s", long_value_length=256)
    assert identify["type"] == "identify"
    assert identify["userId"] == "u1"
    assert identify["traits"] == {"email": "a@example.com"}
    assert track["type"] == "track"


def test_message_ids_are_deterministic_per_window_and_salt():
    def ids(**fields):
        messages = messages_for(
            evaluation(identify=True, **fields), salt="s", long_value_length=256
        )
        return [message["messageId"] for message in messages]

    assert ids() == ids()
    assert ids() != ids(window=5_666_667)
    assert ids() != ids(variation_id="v-off", value=False)
    assert ids(window=None) != ids(window=None), "without a window every id is random"
    first = messages_for(evaluation(), salt="one", long_value_length=256)[0]["messageId"]
    second = messages_for(evaluation(), salt="two", long_value_length=256)[0]["messageId"]
    assert first != second


def test_no_user_and_no_request_gets_a_random_anonymous_id():
    (track,) = messages_for(evaluation(user=None, user_id=None), salt="s", long_value_length=256)
    assert "userId" not in track
    assert str(uuid.UUID(track["anonymousId"])) == track["anonymousId"]
    assert "user" not in track["properties"]


def test_request_context_goes_into_the_message():
    context = {"page": {"url": "http://x/a?b=1", "path": "/a", "referrer": ""}, "userAgent": "UA"}
    (track,) = messages_for(
        evaluation(user=None, user_id=None, anonymous_id="anon-1", context=context),
        salt="s",
        long_value_length=256,
    )
    assert track["anonymousId"] == "anon-1"
    assert track["context"]["page"] == context["page"]
    assert track["context"]["userAgent"] == "UA"
    assert json.loads(json.dumps(track)) == track


def test_dedup_sends_a_key_once_even_when_threads_race():
    cache = DedupCache(window=300, max_keys=1000)

    def race() -> list[bool]:
        return [cache.first_seen(("u1", "flag", n % 4)) for n in range(400)]

    results = [seen for raced in run_together(race, [()] * 16) for seen in raced]
    assert results.count(True) == 4


def test_dedup_keeps_hot_keys_when_full():
    """Under pressure from one-off keys, a key that keeps recurring is not re-sent."""
    clock = Clock()
    cache = DedupCache(window=300, max_keys=100, clock=clock)
    sends_of_hot = 0
    for n in range(10_000):
        sends_of_hot += cache.first_seen("hot")
        cache.first_seen(("one-off", n))
    assert sends_of_hot == 1
    assert len(cache) == 100


def test_a_log_throttle_lets_one_message_through_per_interval_and_counts_the_rest(caplog):
    import logging

    from configcat_segment.logthrottle import LogThrottle

    clock = Clock()
    throttle = LogThrottle(60, clock)
    log = logging.getLogger("tests.throttle")
    with caplog.at_level(logging.WARNING, logger="tests.throttle"):
        assert throttle.log(log, logging.WARNING, "problem %s", 1)
        clock.now += 59
        assert not throttle.log(log, logging.WARNING, "problem %s", 2)
        assert not throttle.log(log, logging.WARNING, "problem %s", 3)
        clock.now += 1
        assert throttle.log(log, logging.ERROR, "problem %s", 4)
        clock.now += 60
        assert throttle.log(log, logging.WARNING, "problem %s", 5)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "problem 1"),
        (logging.ERROR, "problem 4 (2 more like this since the last message)"),
        (logging.WARNING, "problem 5"),
    ]
