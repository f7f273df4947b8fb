"""Receipt headers by allowlist (issue 16, finding 6): the values of headers known to be
harmless are kept, of the rest only the names, unless ``RECEIPT_HEADERS`` says otherwise."""

import json

import pytest
from django.test import override_settings

from configcat_segment.conf import find_problems, get_settings
from configcat_segment.models import WebhookReceipt
from configcat_segment.redaction import NOT_STORED, scrub_headers
from configcat_segment.webhooks.views import WebhookView

from ..webhooks.conftest import NOW, configcat_body, headers_for
from .conftest import API_URL, client_for, event_url, user_with

# Headers a careless ConfigCat webhook setup could carry: none is named like a credential
# by the old rules, every one of them may be one.
CARELESS = {
    "X-Credential": "cred-value-1",
    "X-Passwd": "passwd-value-2",
    "X-Sig": "sig-value-3",
    "X-Bearer": "bearer-value-4",
    "X-Private": "private-value-5",
    "X-Session-Id": "session-value-6",
    "X-Hmac": "hmac-value-7",
    "X-Access": "access-value-8",
}
HARMLESS = {
    "Content-Type": "application/json",
    "Content-Length": "123",
    "User-Agent": "ConfigCat-Webhook/1.0",
    "X-Configcat-Webhook-Id": "wh-1",
    "X-Configcat-Webhook-Timestamp": "1790000000",
}


def with_receipt_headers(names):
    return override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "RECEIPT_HEADERS": names}
    )


def test_values_are_kept_only_for_harmless_headers():
    scrubbed = scrub_headers({**HARMLESS, **CARELESS})
    assert {name: scrubbed[name] for name in HARMLESS} == HARMLESS
    assert {name: scrubbed[name] for name in CARELESS} == dict.fromkeys(CARELESS, NOT_STORED)


def test_headers_named_like_credentials_are_not_even_named():
    scrubbed = scrub_headers(
        {"Authorization": "Basic x", "Cookie": "a=b", "X-Webhook-Token": "t", "X-Api-Key": "k"}
    )
    assert scrubbed == {}


def test_the_setting_keeps_more_values_but_never_a_credential():
    with with_receipt_headers(["X-Request-Id", "x-private"]):
        scrubbed = scrub_headers({"X-Request-ID": "r-1", "X-Private": "p", "X-Other": "o"})
    assert scrubbed == {"X-Request-ID": "r-1", "X-Private": "p", "X-Other": NOT_STORED}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("X-Request-Id", "must be a list of header names"),
        (["X Request"], "'X Request' is not a header name"),
        (["Authorization"], "must not list 'Authorization', which carries credentials"),
        (["X-Upstream-Token"], "must not list 'X-Upstream-Token', which carries credentials"),
    ],
)
def test_bad_receipt_header_settings_are_reported(value, expected):
    [(kind, message, _hint)] = find_problems({"RECEIPT_HEADERS": value})
    assert kind == "invalid"
    assert expected in message


@pytest.mark.django_db
def test_a_webhook_s_careless_headers_are_stored_by_name_only(
    segment_connection, client, monkeypatch
):
    monkeypatch.setattr(WebhookView, "clock", staticmethod(lambda: float(NOW)))
    body = configcat_body()
    response = client.post(
        segment_connection.webhook_path,
        data=body,
        content_type="application/json",
        headers={**headers_for(body), **CARELESS},
    )
    assert response.status_code == 200
    receipt = WebhookReceipt.objects.get()
    stored = json.dumps(receipt.headers)
    for value in CARELESS.values():
        assert value not in stored
    for name in CARELESS:
        assert receipt.headers[name] == NOT_STORED


@pytest.mark.django_db
def test_rows_stored_before_are_shown_by_name_only(segment_connection, make_event):
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-old",
        method="POST",
        headers={"Content-Type": "application/json", **CARELESS},
    )
    event = make_event(receipt=receipt)
    client = client_for(user_with("view_event", "view_webhookreceipt"))
    pages = [
        client.get(event_url(event)),
        client.get(f"{API_URL}{event.pk}/"),
        client_for(user_with("view_webhookreceipt")).get(
            f"/admin/configcat_segment/webhookreceipt/{receipt.pk}/change/"
        ),
    ]
    for response in pages:
        assert response.status_code == 200
        text = response.content.decode()
        assert "X-Passwd" in text
        assert [v for v in CARELESS.values() if v in text] == []
