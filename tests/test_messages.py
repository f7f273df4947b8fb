import datetime as dt
import decimal
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configcat_segment import text
from configcat_segment.constants import INTEGRATION, SEGMENT_MAX_MESSAGE_BYTES
from configcat_segment.segment import payloads as messages

WHEN = dt.datetime(2026, 11, 21, 10, 30, 5, 123456, tzinfo=dt.UTC)


def test_message_id_is_deterministic_salted_and_short():
    a = messages.message_id("salt-a", "webhook-1", 0)
    assert a == messages.message_id("salt-a", "webhook-1", 0)
    assert a != messages.message_id("salt-b", "webhook-1", 0)
    assert a != messages.message_id("salt-a", "webhook-1", 1)
    # Parts are separated: ("ab", "c") and ("a", "bc") are different keys.
    assert messages.message_id("s", "ab", "c") != messages.message_id("s", "a", "bc")
    assert len(a) <= 100
    assert a.startswith("ccs-")


def test_random_message_ids_differ():
    assert messages.random_message_id() != messages.random_message_id()
    assert len(messages.random_message_id()) <= 100


def test_isoformat_is_utc_with_milliseconds():
    assert messages.isoformat(WHEN) == "2026-11-21T10:30:05.123Z"
    cet = dt.timezone(dt.timedelta(hours=1))
    assert messages.isoformat(WHEN.astimezone(cet)) == "2026-11-21T10:30:05.123Z"
    assert messages.isoformat(WHEN.replace(tzinfo=None)) == "2026-11-21T10:30:05.123Z"


def test_track_message_shape():
    message = messages.track(
        event="Feature Flag Evaluated",
        properties={"feature_flag_key": "f", "value": True},
        user_id="u1",
        timestamp=WHEN,
        message_id="m1",
        context={"userAgent": "ua"},
    )
    assert message == {
        "type": "track",
        "event": "Feature Flag Evaluated",
        "userId": "u1",
        "properties": {"feature_flag_key": "f", "value": True},
        "timestamp": "2026-11-21T10:30:05.123Z",
        "messageId": "m1",
        "context": {
            "userAgent": "ua",
            "integration": INTEGRATION,
            "library": {"name": "configcat_segment", "version": messages.LIBRARY["version"]},
        },
    }


def test_context_cannot_override_integration():
    message = messages.identify(
        traits={},
        anonymous_id="a",
        timestamp=WHEN,
        message_id="m",
        context={"integration": {"name": "other"}},
    )
    assert message["context"]["integration"] == INTEGRATION
    assert message["anonymousId"] == "a"
    assert "userId" not in message


def test_a_message_needs_a_user():
    with pytest.raises(ValueError, match="userId or an anonymousId"):
        messages.track(event="e", properties={}, timestamp=WHEN, message_id="m")


def test_json_safe_keeps_everything():
    value = {
        "uuid": uuid.UUID(int=1),
        "when": WHEN,
        "day": dt.date(2026, 1, 2),
        "money": decimal.Decimal("1.5"),
        "nan": float("nan"),
        "set": {2, 1},
        "tuple": (1, "a"),
        "bytes": b"\xe2\x9e\x94",
        3: "int key",
        "obj": object.__new__(type("Thing", (), {"__str__": lambda self: "thing"})),
    }
    safe = messages.json_safe(value)
    json.dumps(safe)  # must not raise
    assert safe["uuid"] == "00000000-0000-0000-0000-000000000001"
    assert safe["when"] == "2026-11-21T10:30:05.123Z"
    assert safe["day"] == "2026-01-02"
    assert safe["money"] == 1.5
    assert safe["nan"] is None
    assert safe["set"] == [1, 2]
    assert safe["tuple"] == [1, "a"]
    assert safe["bytes"] == "➔"
    assert safe["3"] == "int key"
    assert safe["obj"] == "thing"


def evaluated(value, user=None, variation_id="v-123"):
    return messages.track(
        event="Feature Flag Evaluated",
        properties={
            "feature_flag_key": "k",
            "value": value,
            "variation_id": variation_id,
            "user": user or {"Identifier": "u1"},
        },
        user_id="u1",
        timestamp=WHEN,
        message_id="m",
    )


def test_fit_returns_small_messages_unchanged():
    message = evaluated("short")
    assert messages.fit(message) == message


def test_fit_sends_a_long_text_value_as_its_variation_id():
    fitted = messages.fit(evaluated("x" * 40_000))
    assert fitted["properties"]["value"] == "v-123"
    assert messages.encoded_size(fitted) <= SEGMENT_MAX_MESSAGE_BYTES


def test_fit_trims_the_largest_custom_user_attributes_first():
    user = {"Identifier": "u1", "Email": "a@example.com", "big": "b" * 40_000, "small": "s"}
    fitted = messages.fit(evaluated(True, user=user))
    assert fitted["properties"]["user"] == {
        "Identifier": "u1",
        "Email": "a@example.com",
        "small": "s",
        "_trimmed": True,
    }


def test_fit_cuts_long_text_when_nothing_else_helps():
    message = messages.track(
        event="Feature Flag Changed",
        properties={"details": "➔" * 20_000, "config_name": "c"},
        user_id="u",
        timestamp=WHEN,
        message_id="m",
    )
    fitted = messages.fit(message)
    details = fitted["properties"]["details"]
    assert details.endswith("… [truncated]")
    assert details.startswith("➔" * 100)
    size = messages.encoded_size(fitted)
    assert SEGMENT_MAX_MESSAGE_BYTES - 20 <= size <= SEGMENT_MAX_MESSAGE_BYTES


def test_fit_gives_up_with_a_clear_error():
    message = messages.track(
        event="e",
        properties={"feature_flag_key": "k" * 40_000},
        user_id="u",
        timestamp=WHEN,
        message_id="m",
    )
    with pytest.raises(messages.MessageTooLarge, match="Segment accepts at most 32,768 bytes"):
        messages.fit(message)


@given(
    st.dictionaries(
        st.sampled_from(["details", "change_notes", "value", "url", "config_name"]),
        st.text(max_size=12_000),
    ),
    st.dictionaries(st.text(max_size=20), st.text(max_size=9_000), max_size=5),
)
def test_fit_either_fits_or_refuses(properties, user):
    message = messages.track(
        event="e",
        properties={**properties, "user": user},
        user_id="u",
        timestamp=WHEN,
        message_id="m",
    )
    try:
        fitted = messages.fit(message)
    except messages.MessageTooLarge:
        return
    assert messages.encoded_size(fitted) <= SEGMENT_MAX_MESSAGE_BYTES


def test_nul_characters_become_replacement_characters_everywhere():
    value = {
        "na\x00me": ["a\x00b", b"c\x00"],
        "obj": type("T", (), {"__str__": lambda s: "\x00"})(),
    }
    assert messages.json_safe(value) == {"na\ufffdme": ["a\ufffdb", "c\ufffd"], "obj": "\ufffd"}
    assert text.clean("plain") == "plain"


def test_lone_surrogates_become_replacement_characters_and_pairs_are_joined():
    assert text.clean("a\ud800b") == "a\ufffdb"
    assert text.clean("\udfff") == "\ufffd"
    assert text.clean("\ud83d\ude00") == "😀"  # a pair left as two code points
    assert text.clean("➔ plain") == "➔ plain"
    assert messages.json_safe({"k\ud800": ["\ud800\x00"]}) == {"k\ufffd": ["\ufffd\ufffd"]}
