"""The signature validators, each on its own, then chained by ``verify``."""

import datetime as dt

import pytest

from configcat_segment.constants import (
    HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE,
    HEADER_WEBHOOK_TIMESTAMP,
)
from configcat_segment.webhooks import signing
from configcat_segment.webhooks.signing import SignedHeaders, WebhookRejected

# ConfigCat's published example, and the same request with an empty body.
KEY = "configcat_whsk_VN3juirnVh5pNvCKd81RYRYchxUX4j3NykbZG2fAy88="
OTHER_KEY = "configcat_whsk_SecondKeyForRotation0000000000000000000000="
WEBHOOK_ID = "b616ca659d154a5fb907dd8475792eeb"
TIMESTAMP = "1669629035"
VECTORS = [
    (b"examplebody", "Ks3cYsu9Lslfo+hVxNC3oQWnsF9e5d73TI5t94D9DRA="),
    (b"", "iZXarSYCGMJAPqvbFYOgAotdXUIL8B5IMMVuPAsmzgk="),
]
NOW = float(TIMESTAMP) + 10


def headers(signatures, *, webhook_id=WEBHOOK_ID, timestamp=TIMESTAMP):
    return {
        HEADER_WEBHOOK_ID: webhook_id,
        HEADER_WEBHOOK_TIMESTAMP: timestamp,
        HEADER_WEBHOOK_SIGNATURE: signatures,
    }


def rejected(excinfo):
    return excinfo.value.status, excinfo.value.code


@pytest.mark.parametrize(("body", "signature"), VECTORS)
def test_sign_matches_configcats_test_vectors(body, signature):
    assert signing.sign(KEY, WEBHOOK_ID, TIMESTAMP, body) == signature


@pytest.mark.parametrize(("body", "signature"), VECTORS)
def test_verify_accepts_configcats_test_vectors(body, signature):
    verified = signing.verify(headers(signature), body, keys=[KEY], now=NOW, tolerance=300)
    assert verified.webhook_id == WEBHOOK_ID
    assert verified.timestamp == dt.datetime(2022, 11, 28, 9, 50, 35, tzinfo=dt.UTC)


def test_signed_content_is_id_timestamp_and_raw_body_without_separators():
    assert signing.signed_content("id", "123", b"\xffbody") == b"id123\xffbody"


# -- 1. required headers --------------------------------------------------------------------


def test_read_headers_returns_them_stripped_and_case_insensitively():
    found = signing.read_headers(
        {
            "x-configcat-webhook-id": " abc ",
            "X-CONFIGCAT-WEBHOOK-TIMESTAMP": "1",
            HEADER_WEBHOOK_SIGNATURE: "s",
        }
    )
    assert found == SignedHeaders(webhook_id="abc", timestamp="1", signatures="s")


@pytest.mark.parametrize(
    "absent", [HEADER_WEBHOOK_ID, HEADER_WEBHOOK_TIMESTAMP, HEADER_WEBHOOK_SIGNATURE]
)
def test_each_missing_header_is_named(absent):
    given = {k: v for k, v in headers("sig").items() if k != absent}
    with pytest.raises(WebhookRejected) as excinfo:
        signing.read_headers(given)
    assert rejected(excinfo) == (400, "missing_header")
    assert excinfo.value.message == f"Missing or empty header: {absent}."


def test_empty_headers_count_as_missing_and_all_are_named():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.read_headers({HEADER_WEBHOOK_ID: "  ", HEADER_WEBHOOK_TIMESTAMP: "1"})
    assert excinfo.value.message == (
        f"Missing or empty headers: {HEADER_WEBHOOK_ID}, {HEADER_WEBHOOK_SIGNATURE}."
    )


# -- 2. timestamp ---------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_the_tolerance_pass_both_ways(offset):
    moment = signing.check_timestamp(str(1000 + offset), now=1000.0, tolerance=300)
    assert moment == dt.datetime.fromtimestamp(1000 + offset, tz=dt.UTC)


def test_a_stale_timestamp_is_refused_with_its_age():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.check_timestamp("699", now=1000.0, tolerance=300)
    assert rejected(excinfo) == (403, "stale_timestamp")
    assert "301 s old; at most 300 s" in excinfo.value.message


def test_a_future_timestamp_is_refused_too():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.check_timestamp("1301", now=1000.0, tolerance=300)
    assert rejected(excinfo) == (403, "future_timestamp")
    assert "301 s in the future" in excinfo.value.message


@pytest.mark.parametrize(
    "value", ["soon", "1669629035.5", "-5", "1e9", "١٢٣", "1669629035000", "9" * 5000]
)
def test_a_timestamp_that_is_not_whole_unix_seconds_is_invalid(value):
    with pytest.raises(WebhookRejected) as excinfo:
        signing.check_timestamp(value, now=1000.0, tolerance=300)
    assert excinfo.value.code == "invalid_timestamp"
    assert excinfo.value.status == 400
    assert len(excinfo.value.message) < 200


# -- 3. signature ---------------------------------------------------------------------------

BODY, SIGNATURE = VECTORS[0]


def check(signatures, keys=(KEY,), body=BODY, **header_values):
    signing.check_signature(
        keys,
        SignedHeaders(
            webhook_id=header_values.get("webhook_id", WEBHOOK_ID),
            timestamp=header_values.get("timestamp", TIMESTAMP),
            signatures=signatures,
        ),
        body,
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"body": b"examplebodY"},
        {"body": b"examplebody "},
        {"webhook_id": "b616ca659d154a5fb907dd8475792eec"},
        {"timestamp": "1669629036"},
    ],
)
def test_a_tampered_body_id_or_timestamp_is_a_bad_signature(changed):
    with pytest.raises(WebhookRejected) as excinfo:
        check(SIGNATURE, **changed)
    assert rejected(excinfo) == (403, "bad_signature")


def test_a_wrong_key_is_a_bad_signature():
    with pytest.raises(WebhookRejected, match="No signature"):
        check(SIGNATURE, keys=[OTHER_KEY])


def test_the_key_is_the_whole_string_not_its_base64_part():
    assert (
        signing.sign(KEY.removeprefix("configcat_whsk_"), WEBHOOK_ID, TIMESTAMP, BODY) != SIGNATURE
    )


@pytest.mark.parametrize("keys", [[KEY, OTHER_KEY], [OTHER_KEY, KEY]], ids=["primary", "secondary"])
def test_rotation_either_configured_key_may_match(keys):
    check(SIGNATURE, keys=keys)


@pytest.mark.parametrize(
    "signatures",
    [
        f"{SIGNATURE},{signing.sign(OTHER_KEY, WEBHOOK_ID, TIMESTAMP, BODY)}",
        f"{signing.sign(OTHER_KEY, WEBHOOK_ID, TIMESTAMP, BODY)}, {SIGNATURE}",
        f"bm90IGEgc2lnbmF0dXJl,{SIGNATURE}",
        f" ,{SIGNATURE},",
    ],
)
def test_rotation_any_of_the_received_signatures_may_match(signatures):
    check(signatures, keys=[KEY])


@pytest.mark.parametrize("signatures", ["", ",", "not base64 ✗", SIGNATURE[:-1], SIGNATURE.lower()])
def test_malformed_signatures_are_bad_signatures_not_errors(signatures):
    with pytest.raises(WebhookRejected) as excinfo:
        check(signatures)
    assert excinfo.value.code == "bad_signature"


# -- the chain ------------------------------------------------------------------------------


def test_verify_runs_the_validators_in_order():
    stale_and_unsigned = {HEADER_WEBHOOK_ID: WEBHOOK_ID, HEADER_WEBHOOK_TIMESTAMP: "1"}
    with pytest.raises(WebhookRejected) as excinfo:
        signing.verify(stale_and_unsigned, BODY, keys=[KEY], now=NOW, tolerance=300)
    assert excinfo.value.code == "missing_header"
    stale_and_badly_signed = headers("bad", timestamp="1")
    with pytest.raises(WebhookRejected) as excinfo:
        signing.verify(stale_and_badly_signed, BODY, keys=[KEY], now=NOW, tolerance=300)
    assert excinfo.value.code == "stale_timestamp"


def test_without_keys_requests_are_refused_unless_unsigned_ones_are_allowed():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.verify(headers(SIGNATURE), BODY, keys=[], now=NOW, tolerance=300)
    assert rejected(excinfo) == (403, "no_signing_key")


def test_unsigned_requests_when_allowed_keep_what_they_send():
    verified = signing.verify(
        {HEADER_WEBHOOK_ID: "w1", HEADER_WEBHOOK_TIMESTAMP: TIMESTAMP},
        BODY,
        keys=[],
        now=NOW,
        tolerance=300,
        allow_unsigned=True,
    )
    assert verified.webhook_id == "w1"
    assert verified.timestamp is not None
    assert signing.verify({}, b"", keys=[], now=NOW, tolerance=300, allow_unsigned=True) == (
        signing.VerifiedWebhook()
    )


def test_unsigned_requests_still_get_their_timestamp_checked():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.verify(
            {HEADER_WEBHOOK_TIMESTAMP: "1"},
            b"",
            keys=[],
            now=NOW,
            tolerance=300,
            allow_unsigned=True,
        )
    assert excinfo.value.code == "stale_timestamp"


def test_allowing_unsigned_requests_does_not_weaken_connections_with_keys():
    with pytest.raises(WebhookRejected) as excinfo:
        signing.verify({}, BODY, keys=[KEY], now=NOW, tolerance=300, allow_unsigned=True)
    assert excinfo.value.code == "missing_header"


def test_signature_headers_sign_with_every_key_like_configcat_while_rotating():
    made = signing.signature_headers(
        [KEY, OTHER_KEY], BODY, webhook_id=WEBHOOK_ID, timestamp=TIMESTAMP
    )
    assert made[HEADER_WEBHOOK_SIGNATURE].split(",") == [
        SIGNATURE,
        signing.sign(OTHER_KEY, WEBHOOK_ID, TIMESTAMP, BODY),
    ]
    assert HEADER_WEBHOOK_SIGNATURE not in signing.signature_headers(
        [], BODY, webhook_id=WEBHOOK_ID, timestamp=TIMESTAMP
    )
