import json

import pytest

from configcat_segment.segment.batching import Limits, plan_batches, request_body, request_overhead
from configcat_segment.segment.payloads import encoded_size

SENT_AT = "2026-01-02T03:04:05.678Z"
KEY = "wk_0123456789abcdef"


def message(n, size=200):
    """A message of exactly ``size`` encoded bytes."""
    base = {"type": "track", "userId": f"u{n}", "messageId": f"m{n}", "properties": {"x": ""}}
    base["properties"]["x"] = "a" * (size - encoded_size(base))
    assert encoded_size(base) == size
    return base


def plan(messages, **limits):
    return plan_batches(
        messages, lambda m: m, sent_at=SENT_AT, write_key=KEY, limits=Limits(**limits)
    )


def body_bytes(batch):
    return len(request_body(batch, sent_at=SENT_AT, write_key=KEY).encode())


def test_the_overhead_is_the_body_the_transport_sends_with_an_empty_batch():
    body = json.loads(request_body([], sent_at=SENT_AT, write_key=KEY))
    assert body == {"batch": [], "sentAt": SENT_AT, "writeKey": KEY}
    assert request_overhead(sent_at=SENT_AT, write_key=KEY) == body_bytes([])


def test_everything_fits_in_one_request_when_it_can():
    messages = [message(n) for n in range(10)]
    result = plan(messages)
    assert result.batches == [messages]
    assert result.oversized == []


@pytest.mark.parametrize("request_bytes_slack", [0, 1])
def test_requests_are_filled_to_the_byte_and_not_one_over(request_bytes_slack):
    messages = [message(n, size=1000) for n in range(10)]
    exact = body_bytes(messages[:4])
    result = plan(messages, request_bytes=exact + request_bytes_slack)
    assert [len(b) for b in result.batches] == [4, 4, 2]
    assert all(body_bytes(b) <= exact + request_bytes_slack for b in result.batches)
    result = plan(messages, request_bytes=exact - 1)
    assert [len(b) for b in result.batches] == [3, 3, 3, 1]


def test_segment_limits_by_default_500_kb_and_2500_messages():
    big = [message(n, size=30_000) for n in range(40)]  # 1.2 MB in all
    result = plan(big)
    assert [len(b) for b in result.batches] == [16, 16, 8]
    assert all(body_bytes(b) <= 500_000 for b in result.batches)
    small = [message(n, size=100) for n in range(6000)]
    assert [len(b) for b in plan(small).batches] == [2500, 2500, 1000]


def test_the_write_key_and_sent_at_count_against_the_request_limit():
    messages = [message(n, size=1000) for n in range(4)]
    limit = body_bytes(messages)
    limits = Limits(request_bytes=limit)
    assert (
        len(
            plan_batches(
                messages, lambda m: m, sent_at=SENT_AT, write_key=KEY, limits=limits
            ).batches
        )
        == 1
    )
    long_key = plan_batches(
        messages, lambda m: m, sent_at=SENT_AT, write_key=KEY + "x", limits=limits
    )
    assert [len(b) for b in long_key.batches] == [3, 1]


def test_a_message_over_32_kb_never_reaches_a_batch_and_order_is_kept():
    messages = [message(0), message(1, size=32 * 1024 + 1), message(2), message(3, size=32 * 1024)]
    result = plan(messages)
    assert result.oversized == [messages[1]]
    assert result.batches == [[messages[0], messages[2], messages[3]]]


def test_a_message_too_big_for_any_request_is_oversized():
    messages = [message(0, size=900), message(1)]
    result = plan(messages, request_bytes=body_bytes([messages[0]]) - 1)
    assert result.oversized == [messages[0]]
    assert result.batches == [[messages[1]]]


def test_nothing_in_nothing_out():
    result = plan([])
    assert (result.batches, result.oversized) == ([], [])
