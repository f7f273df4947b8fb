"""Message texts: encoded once when written, joined into request bodies as they are."""

import json

import pytest
from django.utils import timezone

from configcat_segment.constants import SEGMENT_MAX_MESSAGE_BYTES
from configcat_segment.segment import payloads as messages
from configcat_segment.segment import transport, wire
from tests.segment_server import SegmentServer

WRITE_KEY = "wire-write-key"


def message(n, **properties):
    return messages.track(
        event="Feature Flag Evaluated",
        properties={"feature_flag_key": f"f{n}", **properties},
        user_id=f"user-{n}",
        timestamp=timezone.now(),
        message_id=f"m{n}",
    )


def test_the_text_is_compact_utf8_json_of_the_message():
    msg = message(1, note="Grüße 👋", quote='say "hi"\n')
    text, fitted = wire.encode_message(msg)
    assert json.loads(text) == msg == fitted
    assert ", " not in text
    assert ": " not in text
    assert "Grüße 👋" in text


def test_a_message_over_the_limit_is_shrunk_before_it_is_encoded():
    msg = message(1, details="x" * (SEGMENT_MAX_MESSAGE_BYTES + 10))
    text, fitted = wire.encode_message(msg)
    assert fitted["properties"]["details"].endswith(messages.TRUNCATION_MARK)
    assert len(json.dumps(json.loads(text))) <= SEGMENT_MAX_MESSAGE_BYTES
    assert json.loads(text)["messageId"] == "m1"


def test_a_message_that_cannot_fit_raises():
    msg = message(1)
    msg["properties"]["huge"] = ["y" * 100] * 400
    with pytest.raises(messages.MessageTooLarge):
        wire.encode_message(msg)


def test_the_body_joins_the_texts():
    texts = [wire.encode_message(message(n))[0] for n in (1, 2)]
    body = wire.batch_body(texts, sent_at="2026-01-01T00:00:00.000Z", write_key="k")
    assert json.loads(body) == {
        "batch": [json.loads(t) for t in texts],
        "sentAt": "2026-01-01T00:00:00.000Z",
        "writeKey": "k",
    }
    overhead = wire.body_overhead(sent_at="2026-01-01T00:00:00.000Z", write_key="k")
    assert len(body) == overhead + sum(len(t) for t in texts) + 1


def test_messages_read_as_the_decoded_messages():
    msgs = [message(n) for n in (1, 2, 3)]
    texts = wire.Messages([wire.encode_message(m)[0] for m in msgs])
    assert len(texts) == 3
    assert list(texts) == msgs
    assert texts[1] == msgs[1]
    assert texts[1:] == msgs[1:]


@pytest.mark.parametrize("use_gzip", [True, False])
def test_the_strict_server_accepts_joined_texts_with_their_message_ids(use_gzip):
    msgs = [message(n, note="naïve") for n in range(5)]
    texts = wire.Messages([wire.encode_message(m)[0] for m in msgs])
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        answer = transport.send(
            texts,
            endpoint=server.url,
            write_key=WRITE_KEY,
            sent_at="2026-01-01T00:00:00.000Z",
            gzip=use_gzip,
            timeout=5,
        )
        assert answer.status == 200
        assert server.accepted_ids == [f"m{n}" for n in range(5)]
        assert server.accepted_messages == msgs
        assert server.requests[0].gzip is use_gzip


def test_refusals_of_joined_texts_are_answers_without_the_write_key():
    texts = wire.Messages([wire.encode_message(message(1))[0]])
    with SegmentServer(write_keys={"another-key"}) as server:
        answer = transport.send(
            texts,
            endpoint=server.url,
            write_key=WRITE_KEY,
            sent_at="2026-01-01T00:00:00.000Z",
            gzip=True,
            timeout=5,
        )
    assert answer.status == 401
    assert answer.error.startswith("Segment answered 401")
    assert WRITE_KEY not in answer.error
