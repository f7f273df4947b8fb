"""Any signed body gets a 2xx or a precise 4xx, with work, memory and answer bounded
(issue 16, findings 1 and 2)."""

from __future__ import annotations

import json
import sys
import tracemalloc

import pytest
from django.test import override_settings

from configcat_segment.conf import get_settings
from configcat_segment.models import Event, WebhookReceipt
from configcat_segment.webhooks import body as changes

from .conftest import answer, configcat_body

pytestmark = pytest.mark.django_db

TEXT_FIELDS = list(changes.TEXT_FIELDS)
ENTRY_FIELDS = ["settingKey", "event", "details"]


def nested(kind: str, depth: int) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "null" + "}" * depth


def body_with(field: str, value: str) -> bytes:
    """A template body whose ``field`` is the raw JSON ``value``."""
    fields = {name: json.dumps(f"value of {name}") for name in TEXT_FIELDS}
    fields["change_details"] = json.dumps([{"settingKey": "k", "event": "changed", "details": ""}])
    if field in ENTRY_FIELDS:
        entry = {"settingKey": '"k"', "event": '"changed"', "details": '""', field: value}
        fields["change_details"] = "[{" + ",".join(f'"{k}":{v}' for k, v in entry.items()) + "}]"
    else:
        fields[field] = value
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


# -- 1. nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("field", [*TEXT_FIELDS, "change_details", *ENTRY_FIELDS])
@pytest.mark.parametrize("depth", [945, 5000])
def test_deep_nesting_anywhere_is_a_200_recorded_in_the_receipt(
    segment_connection, send, kind, field, depth
):
    body = body_with(field, nested(kind, depth))
    response = send(segment_connection, body)
    assert response.status_code == 200, response.content[:300]
    data = answer(response)
    receipt = WebhookReceipt.objects.get()
    assert bytes(receipt.body) == body  # nothing lost
    assert receipt.outcome == "processed_with_errors"
    assert data["status"] == "processed_with_errors"
    assert data["events"] == Event.objects.count() >= 1
    assert receipt.error
    assert len(response.content) < 4096


@pytest.mark.parametrize("field", ["config_name", "change_details"])
def test_no_depth_near_the_recursion_limit_is_a_5xx(segment_connection, send, field):
    # Parsing a value and encoding it again each take one stack level per nesting level,
    # from different depths of the stack: some nesting depth near the interpreter's
    # recursion limit gets through the one and not the other (945 on the demo's server).
    limit = sys.getrecursionlimit()
    for depth in range(limit - 150, limit + 5):
        body = body_with(field, nested("array", depth))
        response = send(segment_connection, body)
        assert response.status_code == 200, (depth, response.content[:300])
    assert WebhookReceipt.objects.exclude(outcome="processed_with_errors").count() == 0


def test_a_nested_field_is_named_and_sent_as_a_placeholder(segment_connection, send):
    send(segment_connection, body_with("config_name", nested("array", 100)))
    receipt = WebhookReceipt.objects.get()
    assert "config_name is a JSON array nested 100 levels deep" in receipt.error
    event = Event.objects.get()
    config_name = event.payload["properties"]["config_name"]
    assert config_name == "[a JSON array nested 100 levels deep: see the webhook receipt]"


def test_shallow_structures_are_still_sent_as_their_json(segment_connection, send):
    send(segment_connection, body_with("config_name", '{"a": [1, {"b": 2}]}'))
    event = Event.objects.get()
    assert event.payload["properties"]["config_name"] == '{"a": [1, {"b": 2}]}'


# -- 2. changes per webhook ----------------------------------------------------------------


def many_entries(count: int) -> bytes:
    return ("[" + ",".join(["1"] * count) + "]").encode()


def test_a_huge_change_set_is_bounded_and_what_is_left_is_reported(segment_connection, send):
    limit = get_settings().MAX_CHANGES_PER_WEBHOOK
    assert limit == 1000  # the default: far above any real ConfigCat change set
    with override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "MAX_CHANGES_PER_WEBHOOK": 50}
    ):
        body = many_entries(131_000)
        assert len(body) <= get_settings().WEBHOOK_MAX_BODY_BYTES
        tracemalloc.start()
        try:
            response = send(segment_connection, body)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 200
    data = answer(response)
    assert data["events"] == 50
    assert Event.objects.count() == 50
    receipt = WebhookReceipt.objects.get()
    assert bytes(receipt.body) == body
    assert (
        "change_details has 131,000 entries: the first 50 became events "
        '(CONFIGCAT_SEGMENT["MAX_CHANGES_PER_WEBHOOK"]); the other 130,950 are kept in '
        "the receipt's body, not forwarded." in receipt.error
    )
    assert len(response.content) < 4096
    assert len(data["problems"]) <= 21
    assert data["problems"][-1].startswith("… and ")
    assert len(receipt.error) < 8192
    assert peak < 64 * 1024 * 1024  # the whole request, parsing included


def test_problems_are_counted_not_listed_one_by_one(segment_connection, send):
    send(segment_connection, many_entries(500))
    receipt = WebhookReceipt.objects.get()
    lines = receipt.error.splitlines()
    assert len(lines) <= 21
    assert lines[-1] == "… and 481 more problems of the same kinds."
    assert Event.objects.count() == 500


def test_within_the_limit_every_change_becomes_an_event(segment_connection, send):
    details = [{"settingKey": f"flag_{n}", "event": "changed", "details": ""} for n in range(120)]
    response = send(segment_connection, configcat_body(details=details))
    assert answer(response)["events"] == 120
    assert answer(response)["problems"] == []


@pytest.mark.parametrize(("value", "problem"), [(0, "at least 1"), ("many", "at least 1")])
def test_the_setting_is_checked(value, problem):
    from configcat_segment.conf import find_problems

    [(kind, message, _)] = find_problems({"MAX_CHANGES_PER_WEBHOOK": value})
    assert kind == "invalid"
    assert problem in message
