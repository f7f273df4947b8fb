"""Property-based fuzz of the webhook view: signed (and mis-signed) random requests.

Whatever arrives, the answer is never a 5xx; every request whose signature verifies leaves
a receipt with its exact body; every other request leaves nothing.
"""

import json
import string
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from configcat_segment.models import Event, SegmentConnection, WebhookReceipt
from configcat_segment.webhooks.body import TEMPLATE_FIELDS, TEXT_FIELDS
from configcat_segment.webhooks.receipts import stored_webhook_id

from ..conftest import SIGNING_KEY, SIGNING_KEY_2
from .conftest import NOW, configcat_body, headers_for

OTHER_KEY = "configcat_whsk_NotThisConnectionsKey00000000000000000000="

# What can travel in an HTTP header value (no spaces at the ends: parsers strip them).
header_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300)


def json_values_of(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(text.map(lambda t: t[:12]), inner, max_size=4)
        ),
        max_leaves=12,
    )


# Escaped JSON can carry what UTF-8 cannot: "\ud800" decodes to a lone surrogate.
json_values = json_values_of(st.text(st.characters(exclude_categories=())))
template_fields = st.sampled_from(
    ["config_id", "config_name", "url", "changed_by", "change_notes", "change_details", "x"]
)
variables = st.dictionaries(
    st.sampled_from(["ConfigId", "ConfigName", "URL", "ChangedBy", "ChangeNotes"]), st.text()
)
details = st.lists(
    st.fixed_dictionaries(
        {"settingKey": st.text(max_size=20), "event": st.just("changed"), "details": st.text()}
    )
    | json_values_of(st.text()),  # written into the body unescaped, so UTF-8 only
    max_size=4,
)


# A change_details entry's fields, with harmless values (raw JSON text).
ENTRY_FIELDS = {"settingKey": '"k"', "event": '"changed"', "details": '""'}


def nested(kind: str, depth: int) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"k":' * depth + "0" + "}" * depth


def with_raw_value(field: str, value: str) -> bytes:
    """A template body whose ``field`` (or a change_details entry's) is the raw JSON text."""
    entry = dict(ENTRY_FIELDS)
    raw = dict.fromkeys(TEXT_FIELDS, '"x"')
    if field in entry:
        entry[field] = value
    raw["change_details"] = (
        value
        if field == "change_details"
        else ("[{" + ",".join(f'"{k}":{v}' for k, v in entry.items()) + "}]")
    )
    if field in raw and field != "change_details":
        raw[field] = value
    return ("{" + ",".join(f'"{k}":{v}' for k, v in raw.items()) + "}").encode()


# Deep nesting, in arrays and objects, at every field: up to past the parser's own limit.
deep_bodies = st.builds(
    with_raw_value,
    st.sampled_from([*TEMPLATE_FIELDS, *ENTRY_FIELDS]),
    st.builds(
        nested,
        st.sampled_from(["array", "object"]),
        # Anywhere, and often near the recursion limit, where parsing a value succeeds and
        # encoding it again would not (test_limits.py tries every depth there).
        st.integers(1, 3000) | st.integers(sys.getrecursionlimit() - 150, sys.getrecursionlimit()),
    ),
)
bodies = st.one_of(
    deep_bodies,
    st.binary(max_size=600),
    st.text(max_size=600).map(str.encode),
    st.dictionaries(template_fields, json_values).map(lambda d: json.dumps(d).encode()),
    st.builds(configcat_body, variables, details, escape=st.booleans()),
)
# How the request is signed: (signing keys, change to the body after signing, offset of
# the timestamp from now, whether it should verify).
signings = st.one_of(
    st.tuples(
        st.sampled_from([[SIGNING_KEY], [SIGNING_KEY_2], [OTHER_KEY, SIGNING_KEY]]),
        st.just(b""),
        st.integers(-300, 300),
        st.just(True),
    ),
    st.tuples(
        st.sampled_from([[SIGNING_KEY], [OTHER_KEY]]),
        st.just(b""),
        st.one_of(st.integers(-100_000, -301), st.integers(301, 100_000)),
        st.just(False),
    ),
    st.tuples(st.just([OTHER_KEY]), st.just(b""), st.integers(-300, 300), st.just(False)),
    st.tuples(
        st.just([SIGNING_KEY]), st.binary(min_size=1, max_size=5), st.just(0), st.just(False)
    ),
    st.tuples(st.just([]), st.just(b""), st.just(0), st.just(False)),
)
extra_headers = st.dictionaries(
    st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=20).map(
        lambda name: "X-Fuzz-" + name
    ),
    header_text,
    max_size=4,
)


class WebhookFuzz(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.connection = SegmentConnection.objects.create(
            name="Fuzz",
            write_key="wk_fuzz_0123456789",
            signing_key=SIGNING_KEY,
            signing_key_secondary=SIGNING_KEY_2,
        )

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        body=bodies,
        webhook_id=header_text.filter(bool),
        signing=signings,
        extra=extra_headers,
        content_type=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
    )
    def test_never_a_5xx_and_a_receipt_exactly_for_verified_requests(
        self, body, webhook_id, signing, extra, content_type
    ):
        keys, tampering, offset, should_verify = signing
        headers = {
            **extra,
            **headers_for(body, keys=keys, webhook_id=webhook_id, timestamp=NOW + offset),
        }
        before = (WebhookReceipt.objects.count(), Event.objects.count())
        response = self.client.post(
            self.connection.webhook_path,
            data=body + tampering,
            content_type=content_type,
            headers=headers,
        )
        assert response.status_code < 500, response.content
        answer = json.loads(response.content)
        if should_verify:
            assert response.status_code == 200, answer
            receipt = WebhookReceipt.objects.get(
                connection=self.connection, webhook_id=stored_webhook_id(webhook_id)
            )
            assert bytes(receipt.body) == body
            assert receipt.outcome in {"processed", "processed_with_errors"}
            assert receipt.events.count() >= 1
            assert answer["receipt"] == receipt.pk
        else:
            assert 400 <= response.status_code < 500
            assert answer["error"] in {
                "missing_header",
                "stale_timestamp",
                "future_timestamp",
                "bad_signature",
            }
            assert (WebhookReceipt.objects.count(), Event.objects.count()) == before
