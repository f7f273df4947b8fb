import pytest

from configcat_segment.redaction import redact, scrub_headers
from configcat_segment.segment.regions import InvalidEndpoint, endpoint_for, parse_region


@pytest.mark.parametrize(
    ("given", "region", "custom"),
    [
        ("us", "us", ""),
        ("EU", "eu", ""),
        (" eu ", "eu", ""),
        ("https://proxy.example.com", "custom", "https://proxy.example.com"),
        ("https://proxy.example.com/", "custom", "https://proxy.example.com"),
        ("http://127.0.0.1:8001/segment/", "custom", "http://127.0.0.1:8001/segment"),
    ],
)
def test_parse_region(given, region, custom):
    assert parse_region(given) == (region, custom)


def test_endpoints():
    assert endpoint_for("us") == "https://api.segment.io"
    assert endpoint_for("eu") == "https://events.eu1.segmentapis.com"
    assert endpoint_for("custom", "http://localhost:9000") == "http://localhost:9000"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("asia", "must be 'us', 'eu' or an http(s) URL"),
        ("ftp://example.com", "must start with http:// or https://"),
        ("https://", "has no host name"),
        ("http://exa mple.com", "must not contain spaces or control characters"),
        ("https://example.com/a\tb", "must not contain spaces or control characters"),
        ("https://user:pw@example.com", "must not contain credentials"),
        ("https://example.com/?x=1", "query string or fragment"),
        ("https://example.com/#top", "query string or fragment"),
        ("https://api.segment.io/v1/batch", "includes the API path"),
        ("https://example.com:99999", "not a valid URL"),
    ],
)
def test_invalid_custom_endpoints(given, problem):
    with pytest.raises(InvalidEndpoint, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_region(given)


def test_redact_shows_only_the_last_four_characters_of_long_secrets():
    assert redact("wk_live_0123456789abcdef") == "…cdef"
    assert redact("short-key") == "…"
    assert redact("") == ""
    assert redact(None) == ""


def test_scrub_headers_removes_credentials_and_signatures():
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic abc",
        "Cookie": "sessionid=1",
        "X-ConfigCat-Webhook-Signature-V1": "sig",
        "X-ConfigCat-Webhook-ID": "id",
        "X-Custom-Token": "t",
    }
    assert scrub_headers(headers) == {
        "Content-Type": "application/json",
        "X-ConfigCat-Webhook-ID": "id",
    }


def test_scrub_headers_drops_anything_named_like_a_credential_and_makes_values_storable():
    headers = {
        "X-Webhook-Token": "t",
        "X-My-Secret": "s",
        "Api-Key": "k",
        "X-Password": "p",
        "Proxy-Authorization": "Basic x",
        "User-Agent": "ConfigCat-Webhook/1.0\x00",
        "X-Note": "\ud800",
    }
    assert scrub_headers(headers) == {
        "User-Agent": "ConfigCat-Webhook/1.0\ufffd",
        "X-Note": "(not stored)",
    }
