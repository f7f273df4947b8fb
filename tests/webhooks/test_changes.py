"""Reading webhook bodies, tolerantly, and the "Feature Flag Changed" messages they become."""

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configcat_segment.constants import FLAG_CHANGED, INTEGRATION, WEBHOOK_BODY_TEMPLATE
from configcat_segment.segment.payloads import message_id
from configcat_segment.webhooks import body as webhook_body
from configcat_segment.webhooks import changed
from configcat_segment.webhooks.body import Change, SettingChange

from .conftest import CONFIG_ID, ENVIRONMENT_ID, PRODUCT_ID, URL, VARIABLES, configcat_body

WHEN = dt.datetime(2026, 9, 21, 14, 13, 20, tzinfo=dt.UTC)

EXPECTED = Change(
    config_id=CONFIG_ID,
    config_name="Main config",
    environment_id=ENVIRONMENT_ID,
    environment_name="Production",
    url=URL,
    changed_by="Jane Doe (jane@example.com)",
    change_notes="Launch day",
    settings=(
        SettingChange(
            "isAwesomeFeatureEnabled", "changed", "\r\nisAwesomeFeatureEnabled: false ➔ true"
        ),
        SettingChange("discountRate", "changed", "\r\ndiscountRate: 10 ➔ 20\r\nfor everyone"),
    ),
)


def test_the_template_filled_in_by_configcat_is_read_without_problems():
    assert webhook_body.parse(configcat_body()) == (EXPECTED, [])


def test_unescaped_quotes_in_change_notes_are_recovered_field_by_field():
    notes = 'Fixed the "checkout" bug, see "JIRA-1": done'
    body = configcat_body({"ChangeNotes": notes}, escape=False)
    with pytest.raises(ValueError, match="delimiter"):
        json.loads(body)
    change, problems = webhook_body.parse(body)
    assert change == Change(**{**EXPECTED.__dict__, "change_notes": notes})
    [problem] = problems
    assert problem.startswith("The body is not valid JSON (Expecting ',' delimiter")
    assert "recovered from the text" in problem


def test_recovery_keeps_escapes_that_were_made_and_quotes_that_were_not():
    body = (
        '{"config_name":"Say \\"hi\\"","changed_by":"Jane "JJ" Doe <jj@example.com>",'
        '"change_notes":"line one\\nline "two"","change_details":[]}'
    )
    change, _ = webhook_body.parse(body.encode())
    assert change.config_name == 'Say "hi"'
    assert change.changed_by == 'Jane "JJ" Doe <jj@example.com>'
    assert change.change_notes == 'line one\nline "two"'
    assert change.settings == ()


def test_recovery_keeps_unreadable_change_details_as_text():
    body = b'{"change_notes":"a "quote"","change_details":[{"settingKey": "f", oops}]}'
    change, problems = webhook_body.parse(body)
    assert change.change_notes == 'a "quote"'
    assert change.settings == (SettingChange(details='[{"settingKey": "f", oops}]'),)
    assert problems[-1] == "change_details could not be read either: sent as details as is."


def test_a_field_name_inside_escaped_text_is_not_taken_for_a_field():
    details = [{"settingKey": "json", "event": "changed", "details": '{"url": "x"} ➔ {}'}]
    body = configcat_body({"ChangeNotes": 'say "x"'}, details, escape=False)
    change, _ = webhook_body.parse(body)
    assert change.url == URL
    assert change.settings[0].details == '{"url": "x"} ➔ {}'


@pytest.mark.parametrize("body", [b"", b"   \r\n", b"\xef\xbb\xbf"])
def test_an_empty_body_is_an_empty_change_with_a_problem(body):
    change, [problem] = webhook_body.parse(body)
    assert change == Change()
    assert problem.startswith("The body is empty (a GET webhook")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"flag changed!", "The body is not JSON (Expecting value"),
        (b'{"text": "Jane changed f"}', "The body is JSON but has none of the template's fields"),
        (b'"just a string"', "The body is a JSON string, not the template's object"),
        (b"42", "The body is a JSON number"),
        (b"[" * 100_000, "The body is not JSON ("),
    ],
)
def test_a_body_that_is_not_the_template_is_kept_whole_as_details(body, problem):
    change, problems = webhook_body.parse(body)
    assert change == Change(settings=(SettingChange(details=body.decode()),))
    assert problems[0].startswith(problem)


def test_a_body_that_is_not_utf8_is_decoded_with_replacements_and_reported():
    change, problems = webhook_body.parse(b'{"config_name":"caf\xe9","change_details":[]}')
    assert change.config_name == "caf\ufffd"
    assert problems[0] == "The body is not valid UTF-8 (invalid continuation byte at byte 19)."


def test_wrong_types_are_turned_into_text_and_each_is_reported():
    body = json.dumps(
        {
            "config_id": 12,
            "config_name": None,
            "environment_id": True,
            "environment_name": ["a"],
            "url": URL,
            "changed_by": {"name": "Jane"},
            "change_notes": "",
            "change_details": [{"settingKey": 5, "details": ["x"]}, "plain text", None],
        }
    ).encode()
    change, problems = webhook_body.parse(body)
    assert change == Change(
        config_id="12",
        environment_id="true",
        environment_name='["a"]',
        url=URL,
        changed_by='{"name": "Jane"}',
        settings=(
            SettingChange(setting_key="5", details='["x"]'),
            SettingChange(details="plain text"),
            SettingChange(),
        ),
    )
    assert problems == [
        "config_id is a JSON number, not a string.",
        "environment_id is a JSON boolean, not a string.",
        "environment_name is a JSON array, not a string.",
        "changed_by is a JSON object, not a string.",
        "change_details[0].settingKey is a JSON number, not a string.",
        "change_details[0].details is a JSON array, not a string.",
        "change_details[1] is a JSON string, not an object.",
        "change_details[2] is a JSON null, not an object.",
    ]


def test_missing_fields_are_reported_by_name():
    change, problems = webhook_body.parse(b'{"config_name": "Main", "change_details": []}')
    assert change == Change(config_name="Main")
    assert problems == [
        "The body lacks the template's field(s): config_id, environment_id, "
        "environment_name, url, changed_by, change_notes."
    ]


@pytest.mark.parametrize(
    ("details", "expected", "problem"),
    [
        (
            '"[{\\"settingKey\\": \\"f\\", \\"details\\": \\"d\\"}]"',
            (SettingChange("f", "", "d"),),
            "change_details is JSON inside a string",
        ),
        ('"f: on"', (SettingChange(details="f: on"),), "change_details is a string, not a list"),
        ('{"settingKey": "f"}', (SettingChange("f"),), "change_details is an object"),
        ("7", (SettingChange(details="7"),), "change_details is a JSON number, not a list."),
    ],
)
def test_change_details_in_other_shapes(details, expected, problem):
    change, problems = webhook_body.parse(('{"change_details": ' + details + "}").encode())
    assert change.settings == expected
    assert problems[-1].startswith(problem)


def test_a_bare_array_is_read_as_change_details():
    change, problems = webhook_body.parse(
        b'[{"settingKey": "f", "event": "changed", "details": "x"}]'
    )
    assert change == Change(settings=(SettingChange("f", "changed", "x"),))
    assert problems == [
        "The body is a JSON array, not the template's object: read as change_details."
    ]


@given(st.binary(max_size=400))
def test_any_bytes_parse_without_raising(body):
    change, problems = webhook_body.parse(body)
    assert isinstance(change, Change)
    assert all(isinstance(p, str) and p for p in problems)


@given(
    st.dictionaries(
        st.sampled_from(["ConfigName", "ChangedBy", "ChangeNotes"]),
        # "##" is left out: the test's body helper would take ##ChangeDetails## in a value
        # for one of its own template variables.
        st.text(st.characters(codec="utf-8", exclude_characters='"\\\x00')).filter(
            lambda value: "##" not in value
        ),
    )
)
def test_unescaped_strings_without_quotes_or_backslashes_round_trip(clean):
    body = configcat_body(clean, escape=False)
    change, _ = webhook_body.parse(body)
    assert change.config_name == clean.get("ConfigName", VARIABLES["ConfigName"])
    assert change.change_notes == clean.get("ChangeNotes", VARIABLES["ChangeNotes"])


# -- the fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed_by", "expected"),
    [
        ("Jane Doe (jane@example.com)", ("Jane Doe", "jane@example.com")),
        ("Jane Doe <jane@example.com>", ("Jane Doe", "jane@example.com")),
        ("jane@example.com (Jane Doe)", ("Jane Doe", "jane@example.com")),
        ("  Jane   Doe  ", ("Jane Doe", "")),
        ("jane.doe+flags@example.co.uk", ("", "jane.doe+flags@example.co.uk")),
        ("(jane@example.com)", ("", "jane@example.com")),
        ('"Doe, Jane" <jane@example.com>', ("Doe, Jane", "jane@example.com")),
        ("Jane Doe - jane@example.com.", ("Jane Doe", "jane@example.com")),
        ("Józsi Kovács (jozsi@példa.hu)", ("Józsi Kovács", "jozsi@példa.hu")),
        ("", ("", "")),
    ],
)
def test_changed_by_is_split_into_name_and_email(changed_by, expected):
    assert changed.split_changed_by(changed_by) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (URL, PRODUCT_ID),
        ("https://app.configcat.com/p1", "p1"),
        ("https://app.configcat.com//p1/c1?x=1", "p1"),
        ("https://app.configcat.com/", ""),
        ("app.configcat.com/p1/c1", ""),
        ("##URL##", ""),
        ("http://[broken/p1", ""),
        ("", ""),
    ],
)
def test_the_product_id_is_the_first_path_segment_of_the_url(url, expected):
    assert changed.product_id_from_url(url) == expected


def test_line_breaks_are_normalised():
    assert changed.normalise_line_breaks("\r\na: 1 ➔ 2\r\nb\rc\n\r\n") == "a: 1 ➔ 2\nb\nc"


# -- messages --------------------------------------------------------------------------------


def build(change, **overrides):
    arguments = {
        "key": "webhook-1",
        "timestamp": WHEN,
        "salt": "salt",
        "product_id": "from-connection",
        "product_name": "Shop",
        "fallback_user_id": "configcat-segment:conn",
    }
    return changed.flag_changed_messages(change, **{**arguments, **overrides})


def test_one_message_per_setting_with_every_property():
    first, second = build(EXPECTED)
    assert first.flag_key == "isAwesomeFeatureEnabled"
    assert first.message == {
        "type": "track",
        "event": FLAG_CHANGED,
        "userId": "jane@example.com",
        "properties": {
            "feature_flag_key": "isAwesomeFeatureEnabled",
            "details": "isAwesomeFeatureEnabled: false ➔ true",
            "change_notes": "Launch day",
            "product_id": PRODUCT_ID,
            "product_name": "Shop",
            "config_id": CONFIG_ID,
            "config_name": "Main config",
            "environment_id": ENVIRONMENT_ID,
            "environment_name": "Production",
            "url": URL,
            "user_email": "jane@example.com",
            "user_full_name": "Jane Doe",
        },
        "timestamp": "2026-09-21T14:13:20.000Z",
        "messageId": message_id("salt", "webhook-1", 0),
        "context": first.message["context"],
    }
    assert first.message["context"]["integration"] == INTEGRATION
    assert second.message["properties"]["details"] == "discountRate: 10 ➔ 20\nfor everyone"
    assert second.message["messageId"] == message_id("salt", "webhook-1", 1)


def test_message_ids_are_deterministic_salted_and_short():
    again = build(EXPECTED)
    assert [m.message["messageId"] for m in again] == [
        m.message["messageId"] for m in build(EXPECTED)
    ]
    other_salt = build(EXPECTED, salt="other")
    assert {m.message["messageId"] for m in other_salt}.isdisjoint(
        m.message["messageId"] for m in again
    )
    assert all(len(m.message["messageId"]) <= 100 for m in again)


def test_a_change_without_details_is_one_event_for_the_whole_change():
    [only] = build(Change(config_name="Main", changed_by="Jane", change_notes="a\r\nb"))
    assert only.flag_key == ""
    properties = only.message["properties"]
    assert properties["feature_flag_key"] == ""
    assert properties["details"] == ""
    assert properties["change_notes"] == "a\nb"
    assert properties["user_full_name"] == "Jane"
    assert properties["product_id"] == "from-connection"
    assert only.message["userId"] == "configcat-segment:conn"


def test_every_field_of_the_template_is_read():
    assert all(f'"{field}":' in WEBHOOK_BODY_TEMPLATE for field in webhook_body.TEMPLATE_FIELDS)
    change, problems = webhook_body.parse(configcat_body())
    assert problems == []
    assert all(getattr(change, field) for field in webhook_body.TEXT_FIELDS)


@pytest.mark.parametrize(
    "body", [b"a\x00b", b'{"config_name": "a\\u0000b", "change_details": [{"details": "\\u0000"}]}']
)
def test_nul_characters_become_replacement_characters(body):
    change, problems = webhook_body.parse(body)
    texts = [change.config_name] + [s.details for s in change.settings]
    assert not any("\x00" in text for text in texts)
    assert any("\ufffd" in text for text in texts)
    assert problems[-1] == "The body contains NUL characters; they are sent as U+FFFD."


def test_split_changed_by_stays_linear_on_long_input():
    # 200,000 characters without an @ once took minutes (a backtracking regex); a body is
    # limited to 256 KiB, so this is the worst a signed sender can do.
    long_name = "a" * 200_000
    assert changed.split_changed_by(long_name) == (long_name, "")
    assert changed.split_changed_by(long_name + " (jane@example.com)") == (
        long_name,
        "jane@example.com",
    )
    assert changed.split_changed_by("x@" * 50_000) == ("", ("x@" * 50_000))
