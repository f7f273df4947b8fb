"""No page, API response or log line of the console shows a write key or a signing key."""

import html
import logging
import urllib.parse

import pytest

from configcat_segment.models import WebhookReceipt

from ..conftest import SIGNING_KEY, SIGNING_KEY_2, WRITE_KEY
from .conftest import API_URL, EVENTS_URL, event_url

pytestmark = pytest.mark.django_db

SECRETS = [WRITE_KEY, SIGNING_KEY, SIGNING_KEY_2, "staging_write_key_ABCDEFGHIJ"]


def forms_of(secret):
    """A secret as it could leak: plain, HTML-escaped, URL-encoded, JSON-escaped."""
    return {secret, html.escape(secret), urllib.parse.quote(secret), secret.replace("/", "\\/")}


@pytest.fixture
def console(make_connection, segment_connection, make_event):
    segment_connection.signing_key_secondary = SIGNING_KEY_2
    segment_connection.save()
    staging = make_connection(name="Staging", write_key=SECRETS[3], signing_key=SIGNING_KEY_2)
    staging.mark_unhealthy("Segment refused the write key (401)")
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-1",
        method="POST",
        # Stored headers are scrubbed when received; a header the scrubbing did not know
        # must still never be shown when its name looks like a credential.
        headers={
            "Content-Type": "application/json",
            "X-Forwarded-Api-Key": WRITE_KEY,
            "X-Signing-Secret": SIGNING_KEY,
        },
        body=b'{"config_name": "Main"}',
    )
    return {
        "change": make_event(receipt=receipt, status="dead"),
        "evaluation": make_event(kind="evaluated", connection=staging, status="delivered"),
        "identify": make_event(kind="identify", status="failed"),
        "receipt": receipt,
        "connections": [segment_connection, staging],
    }


def test_no_page_api_response_or_log_line_contains_a_secret(staff_client, console, caplog):
    caplog.set_level(logging.DEBUG)
    events = [console["change"], console["evaluation"], console["identify"]]
    receipt = console["receipt"]
    pages = [
        EVENTS_URL,
        EVENTS_URL + "?status=dead",
        EVENTS_URL + f"?connection={console['connections'][1].pk}&kind=evaluated",
        EVENTS_URL + "?q=user&cursor=bad",
        EVENTS_URL + "retry/",
        EVENTS_URL + "retry/?status=dead",
        *(event_url(e) for e in events),
        API_URL,
        API_URL + "?status=failed",
        *(f"{API_URL}{e.pk}/" for e in events),
        "/configcat-segment/api/connections/",
        "/admin/",
        "/admin/configcat_segment/",
        "/admin/configcat_segment/event/",
        "/admin/configcat_segment/event/?status__exact=dead",
        *(f"/admin/configcat_segment/event/{e.pk}/change/" for e in events),
        "/admin/configcat_segment/webhookreceipt/",
        f"/admin/configcat_segment/webhookreceipt/{receipt.pk}/change/",
        "/admin/configcat_segment/segmentconnection/",
        *(
            f"/admin/configcat_segment/segmentconnection/{c.pk}/change/"
            for c in console["connections"]
        ),
        "/admin/configcat_segment/eventlog/",
    ]
    # The actions too: their pages, redirects and messages.
    responses = [staff_client.get(url, follow=True) for url in pages]
    responses.append(staff_client.post_form(event_url(console["change"]) + "retry/", follow=True))
    responses.append(
        staff_client.post_form(event_url(console["evaluation"]) + "replay/", follow=True)
    )
    responses.append(
        staff_client.post_form(EVENTS_URL + "retry/", {"status": "failed"}, follow=True)
    )
    for url, response in zip(pages, responses, strict=False):
        assert response.status_code == 200, url
    assert (
        "X-Forwarded-Api-Key"
        not in responses[pages.index(event_url(console["change"]))].content.decode()
    )
    leaks = [
        (response.request["PATH_INFO"], secret)
        for response in responses
        for secret in SECRETS
        for form in forms_of(secret)
        if form in response.content.decode()
    ]
    assert leaks == []
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    assert [s for s in SECRETS if s in log_text] == []
