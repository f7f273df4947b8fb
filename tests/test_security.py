"""The security suite: every boundary of the app, tried as an attacker and as a careless
admin would, in one module (docs/security.md is the threat model it checks).

Who can do what:

- **ConfigCat**, or anyone holding a connection's signing key, can POST signed changes to
  that connection's webhook URL. Nothing else: no other connection, no other page.
- **Staff**, each by Django permission: ``view_event`` the event log and its API,
  ``change_event`` retry and replay, ``view_webhookreceipt`` the webhooks behind events,
  ``view_segmentconnection`` connection details, ``add``/``change_segmentconnection``
  connect, edit, disconnect. Nobody ever sees a write key or a signing key again.
- **Anyone else** reaches only the webhook URLs (refused without a valid signature) and
  the login page.

Sections: 1 signatures, 2 replay, 3 sizes, 4 nesting, 5 server-side request forgery,
6 permissions per page and API, 7 CSRF, 8 secrets on every page. The suite runs in CI on
SQLite and on PostgreSQL, like the rest.
"""

from __future__ import annotations

import html
import json
import logging
import urllib.parse
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.urls import reverse

from configcat_segment.conf import get_settings
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.evaluations.buffer import get_writer
from configcat_segment.evaluations.hook import recorder
from configcat_segment.models import Event, SegmentConnection, WebhookReceipt
from configcat_segment.urls import urlpatterns as app_urlpatterns
from configcat_segment.webhooks.views import WebhookView

from .conftest import SIGNING_KEY, SIGNING_KEY_2, WRITE_KEY, CsrfClient
from .delivery.conftest import FakeClock, enqueue
from .eventlog.conftest import client_for, make_event, user_with
from .segment_server import SegmentServer
from .webhooks.conftest import NOW, configcat_body, headers_for

pytestmark = pytest.mark.django_db

__all__ = ["make_event"]  # a fixture, used by name

OTHER_KEY = "configcat_whsk_AnotherConnectionsKey0000000000000000000000="


@pytest.fixture(autouse=True)
def webhook_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook view's clock stands at ``NOW``, the time the test webhooks are signed."""
    monkeypatch.setattr(WebhookView, "clock", staticmethod(lambda: float(NOW)))


def post_webhook(connection: SegmentConnection, body: bytes, headers: dict[str, str]) -> Any:
    # A client that enforces CSRF like a browser: the webhook must not need a token.
    return Client(enforce_csrf_checks=True).post(
        connection.webhook_path, data=body, content_type="application/json", headers=headers
    )


def stored() -> tuple[int, int]:
    return WebhookReceipt.objects.count(), Event.objects.count()


# -- 1. signatures -----------------------------------------------------------------------


def forged(case: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    """A request that must not verify, and how it was made."""
    signed = headers_for(body, webhook_id="wh-1")
    if case == "unsigned":
        return body, {k: v for k, v in signed.items() if "Signature" not in k}
    if case == "another key":
        return body, headers_for(body, keys=[OTHER_KEY], webhook_id="wh-1")
    if case == "body changed":
        return body.replace(b"Launch day", b"Launch nay"), signed
    if case == "id changed":
        return body, {**signed, "X-ConfigCat-Webhook-ID": "wh-2"}
    if case == "timestamp changed":
        return body, {**signed, "X-ConfigCat-Webhook-Timestamp": str(NOW - 1)}
    if case == "signature of an empty body":
        return body, headers_for(b"", webhook_id="wh-1")
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unsigned", 400, "missing_header"),
        ("another key", 403, "bad_signature"),
        ("body changed", 403, "bad_signature"),
        ("id changed", 403, "bad_signature"),
        ("timestamp changed", 403, "bad_signature"),
        ("signature of an empty body", 403, "bad_signature"),
    ],
)
def test_a_webhook_that_does_not_verify_is_refused_and_leaves_nothing(
    segment_connection, case, status, code
):
    body, headers = forged(case, configcat_body())
    response = post_webhook(segment_connection, body, headers)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert stored() == (0, 0)


def test_a_key_signs_for_its_own_connection_only(segment_connection, make_connection):
    other = make_connection(signing_key=OTHER_KEY)
    body = configcat_body()
    response = post_webhook(other, body, headers_for(body))  # signed with SIGNING_KEY
    assert response.status_code == 403
    assert stored() == (0, 0)


def test_a_connection_without_a_signing_key_accepts_nothing(make_connection):
    keyless = make_connection(signing_key="")
    body = configcat_body()
    for headers in (headers_for(body), headers_for(body, keys=[])):
        response = post_webhook(keyless, body, headers)
        assert (response.status_code, response.json()["error"]) == (403, "no_signing_key")
    assert stored() == (0, 0)


def test_either_key_verifies_while_keys_are_rotated(segment_connection):
    segment_connection.signing_key_secondary = SIGNING_KEY_2
    segment_connection.save()
    body = configcat_body()
    response = post_webhook(segment_connection, body, headers_for(body, keys=[SIGNING_KEY_2]))
    assert response.status_code == 200


# -- 2. replay -----------------------------------------------------------------------------


def test_a_redelivered_webhook_creates_nothing_new(segment_connection):
    body = configcat_body()
    headers = headers_for(body, webhook_id="wh-once")
    assert post_webhook(segment_connection, body, headers).json()["events"] == 2
    again = post_webhook(segment_connection, body, headers)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert stored() == (1, 2)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_captured_webhook_is_refused_outside_the_tolerance(segment_connection, offset):
    body = configcat_body()
    response = post_webhook(segment_connection, body, headers_for(body, timestamp=NOW + offset))
    assert response.status_code == 403
    assert response.json()["error"] in {"stale_timestamp", "future_timestamp"}
    assert stored() == (0, 0)


# -- 3. sizes ------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_and_not_stored(segment_connection):
    limit = get_settings().WEBHOOK_MAX_BODY_BYTES
    body = configcat_body(details=[{"settingKey": "k", "event": "x", "details": "y" * limit}])
    response = post_webhook(segment_connection, body, headers_for(body))
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert stored() == (0, 0)


def test_a_declared_length_over_the_limit_is_refused_before_reading(segment_connection):
    body = configcat_body()
    response = Client().post(
        segment_connection.webhook_path,
        data=body,
        content_type="application/json",
        headers=headers_for(body),
        CONTENT_LENGTH=str(get_settings().WEBHOOK_MAX_BODY_BYTES + 1),
    )
    assert response.status_code == 413
    assert stored() == (0, 0)


def test_a_huge_change_set_costs_bounded_work_and_a_short_answer(segment_connection):
    limit = get_settings().MAX_CHANGES_PER_WEBHOOK
    body = ("[" + ",".join(["1"] * 100_000) + "]").encode()
    response = post_webhook(segment_connection, body, headers_for(body))
    assert response.status_code == 200
    assert response.json()["events"] == limit == Event.objects.count()
    assert len(response.content) < 4096
    receipt = WebhookReceipt.objects.get()
    assert bytes(receipt.body) == body  # the rest is kept, and reported
    assert f"the other {100_000 - limit:,} are kept in the receipt's body" in receipt.error


@pytest.mark.parametrize("field", ["ConfigName", "ChangeNotes", "ChangedBy", "URL"])
def test_text_every_event_repeats_is_bounded(segment_connection, field):
    # One long field and as many changes as are forwarded: each event repeats the field,
    # so 240 KB of body became 190 MB of events (1,000 events of 190 KB, all too large
    # for Segment). The events carry the field's start; the receipt keeps it whole.
    limit = get_settings().MAX_CHANGES_PER_WEBHOOK
    details = [{"settingKey": f"k{n}", "event": "changed", "details": ""} for n in range(limit)]
    long_text = "N" * 180_000
    body = configcat_body(variables={field: long_text}, details=details)
    response = post_webhook(segment_connection, body, headers_for(body))
    assert response.status_code == 200
    assert len(response.content) < 4096
    payloads = [json.dumps(p) for p in Event.objects.values_list("payload", flat=True)]
    assert len(payloads) == limit
    assert max(len(p) for p in payloads) < 10_000
    assert set(Event.objects.values_list("status", flat=True)) == {"pending"}
    receipt = WebhookReceipt.objects.get()
    assert bytes(receipt.body) == body
    assert "180,000 characters" in receipt.error


# -- 4. nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["config_name", "change_notes", "change_details"])
@pytest.mark.parametrize("depth", [40, 900, 950, 20_000])
def test_deep_nesting_is_a_200_recorded_in_the_receipt(segment_connection, field, depth):
    value = "[" * depth + "]" * depth
    body = configcat_body().replace(b'"Main config"', value.encode(), 1)
    if field != "config_name":
        body = configcat_body(variables={"ChangeNotes": "x"}).replace(
            b'"x"' if field == "change_notes" else b'[{"settingKey"',
            value.encode() if field == "change_notes" else value.encode() + b',{"settingKey"',
            1,
        )
    response = post_webhook(segment_connection, body, headers_for(body))
    assert response.status_code == 200, response.content[:200]
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "processed_with_errors"
    assert bytes(receipt.body) == body
    assert Event.objects.count() >= 1


# -- 5. server-side request forgery --------------------------------------------------------


def no_allowlist() -> Any:
    return override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "ALLOWED_ENDPOINT_HOSTS": []}
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:5432",
        "http://169.254.169.254/latest",
        "http://[::1]:6379",
        "http://2130706433",
        "http://metadata.google.internal/computeMetadata",
    ],
)
def test_an_internal_endpoint_cannot_be_saved(staff_client, endpoint):
    form = {
        "name": "Internal",
        "write_key": WRITE_KEY,
        "region": "custom",
        "custom_endpoint": endpoint,
        "forward_changes": "on",
    }
    with no_allowlist():
        page = staff_client.post_form("/admin/configcat_segment/segmentconnection/add/", form)
        with pytest.raises(CommandError, match="ALLOWED_ENDPOINT_HOSTS"):
            call_command(
                "configcat_segment_connect",
                "--name=Internal",
                f"--write-key={WRITE_KEY}",
                f"--region={endpoint}",
            )
    assert page.status_code == 200
    assert "ALLOWED_ENDPOINT_HOSTS" in html.unescape(page.content.decode())
    assert not SegmentConnection.objects.exists()


def test_an_internal_endpoint_stored_anyway_is_refused_when_sending(make_connection):
    # Saved before the rule existed, or DNS answers differently now: refused at send time,
    # on the address the connection would go to; the events wait, nothing is lost.
    with SegmentServer() as server:
        connection = make_connection(region="custom", custom_endpoint=server.url)
        server.write_keys.add(connection.write_key)
        enqueue(connection, range(2))
        with no_allowlist():
            report = Dispatcher(clock=FakeClock(), random=lambda: 0.0).deliver(connection.pk)
        assert server.requests == []
    assert (report.waiting, report.dead) == (2, 0)
    for event in Event.objects.all():
        assert event.status == "failed"
        assert event.attempts == 0
        assert "127.0.0.1 is a loopback address" in event.last_error
        assert len(event.last_error) <= 300


# -- 6. permissions per page and API -------------------------------------------------------

# (method, URL name or admin path, the permission it needs, what a permitted user gets).
# Every URL of the app is here (a test below checks that none is forgotten).
PROTECTED = [
    ("get", "configcat_segment:event_list", "view_event", 200),
    ("get", "configcat_segment:event_detail", "view_event", 200),
    ("get", "configcat_segment:event_export", "view_event", 200),
    ("get", "configcat_segment:event_bulk_retry", "change_event", 200),
    ("post", "configcat_segment:event_bulk_retry", "change_event", 302),
    ("post", "configcat_segment:event_retry", "change_event", 302),
    ("post", "configcat_segment:event_replay", "change_event", 302),
    ("get", "configcat_segment:api_events", "view_event", 200),
    ("get", "configcat_segment:api_event", "view_event", 200),
    ("get", "configcat_segment:api_connections", "view_event", 200),
    ("get", "/admin/configcat_segment/event/", "view_event", 200),
    ("get", "/admin/configcat_segment/event/{event}/change/", "view_event", 200),
    ("get", "/admin/configcat_segment/webhookreceipt/", "view_webhookreceipt", 200),
    (
        "get",
        "/admin/configcat_segment/webhookreceipt/{receipt}/change/",
        "view_webhookreceipt",
        200,
    ),
    ("get", "/admin/configcat_segment/segmentconnection/", "view_segmentconnection", 200),
    (
        "get",
        "/admin/configcat_segment/segmentconnection/{connection}/change/",
        "view_segmentconnection",
        200,
    ),
    ("get", "/admin/configcat_segment/segmentconnection/add/", "add_segmentconnection", 200),
    (
        "post",
        "/admin/configcat_segment/segmentconnection/{connection}/disconnect/",
        "change_segmentconnection",
        302,
    ),
    (
        "post",
        "/admin/configcat_segment/segmentconnection/{connection}/connect/",
        "change_segmentconnection",
        302,
    ),
    ("get", "configcat_segment:health", "view_segmentconnection", 200),
    ("get", "/configcat-segment/metrics/", "view_segmentconnection", 200),
    ("get", "/debugger/", "view_receivedmessage", 200),
]
NOT_PROTECTED = {"configcat_segment:webhook"}  # the signature is its authentication


@pytest.fixture
def objects(segment_connection, make_event):
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection, webhook_id="wh-1", method="POST", body=b"{}"
    )
    event = make_event(receipt=receipt, status="dead")
    return {"connection": segment_connection.pk, "event": event.pk, "receipt": receipt.pk}


def url_of(target: str, objects: dict[str, Any]) -> str:
    if target.startswith("/"):
        return target.format(**objects)
    name = target.split(":")[1]
    if name == "event_export":
        return reverse(target, args=["csv"])
    needs_pk = name in {"event_detail", "event_retry", "event_replay", "api_event"}
    return reverse(target, args=[objects["event"]] if needs_pk else [])


def request(client: CsrfClient, method: str, url: str) -> Any:
    return client.get(url) if method == "get" else client.post_form(url)


def test_every_url_of_the_app_is_in_the_permission_table():
    names = {f"configcat_segment:{p.name}" for p in app_urlpatterns}
    assert names - NOT_PROTECTED == {t for _, t, _, _ in PROTECTED if not t.startswith("/")}


@pytest.mark.parametrize(("method", "target", "permission", "ok"), PROTECTED)
def test_each_page_and_api_needs_its_permission(objects, method, target, permission, ok):
    url = url_of(target, objects)
    anonymous = request(CsrfClient(), method, url)
    assert anonymous.status_code in {302, 401, 403}, url  # pages: to the login
    if anonymous.status_code == 302:
        assert "/admin/login/" in anonymous["Location"]
    not_staff = request(client_for(user_with(permission, staff=False)), method, url)
    assert not_staff.status_code in {302, 401, 403}, url
    # Staff with every other permission of the table, except those implying this one (the
    # admin lets whoever may change a model view it too).
    implied = {permission, permission.replace("view_", "change_")}
    others = {p for _, _, p, _ in PROTECTED} - implied
    without = request(client_for(user_with(*others)), method, url)
    assert without.status_code == 403, url
    with_it = request(client_for(user_with(permission)), method, url)
    assert with_it.status_code == ok, url


def test_an_event_viewer_sees_neither_receipts_nor_connection_details(objects):
    viewer = client_for(user_with("view_event"))
    page = viewer.get(reverse("configcat_segment:event_detail", args=[objects["event"]]))
    assert "wh-1" not in page.content.decode()
    api = viewer.get(reverse("configcat_segment:api_event", args=[objects["event"]])).json()
    assert "receipt" not in api
    [row] = viewer.get(reverse("configcat_segment:api_connections")).json()["connections"]
    assert set(row) == {
        "id",
        "name",
        "connected",
        "healthy",
        "last_delivery",
        "counts",
        "last_error",
        "last_error_event",
    }


def test_the_api_is_never_cached_not_even_a_refusal(objects):
    for client in (client_for(user_with("view_event")), CsrfClient()):
        response = client.get(reverse("configcat_segment:api_events"))
        assert {"no-store", "private"} <= {d.strip() for d in response["Cache-Control"].split(",")}


# -- 7. CSRF -------------------------------------------------------------------------------


UNSAFE = [target for method, target, _, _ in PROTECTED if method == "post"]
# The admin's "Send test event" (a permitted POST would reach Segment: only refused here).
UNSAFE.append("/admin/configcat_segment/segmentconnection/{connection}/test/")


@pytest.mark.parametrize("target", UNSAFE)
def test_no_unsafe_request_is_accepted_without_the_csrf_token(objects, superuser, target):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    url = url_of(target, objects)
    before = list(Event.objects.values_list("status", flat=True))
    assert client.post(url).status_code == 403
    assert list(Event.objects.values_list("status", flat=True)) == before
    assert SegmentConnection.objects.get().connected


def test_admin_actions_need_the_csrf_token(objects, superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    data = {"action": "disconnect_selected", "_selected_action": [str(objects["connection"])]}
    assert client.post("/admin/configcat_segment/segmentconnection/", data).status_code == 403
    assert SegmentConnection.objects.get().connected


def test_the_api_refuses_unsafe_methods_without_the_token(objects, superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    assert client.post(reverse("configcat_segment:api_events")).status_code == 403


def test_the_webhook_needs_no_csrf_token_its_signature_is_the_authentication(
    segment_connection,
):
    body = configcat_body()
    response = post_webhook(segment_connection, body, headers_for(body))
    assert response.status_code == 200
    assert stored() == (1, 2)


# -- 8. secrets on every page --------------------------------------------------------------

SECRETS = [
    WRITE_KEY,
    SIGNING_KEY,
    SIGNING_KEY_2,
    "wk_second_source_0123456789SECRET",
    "configcat-api-password-0123456789SECRET",  # the Public API's, for reconciliation
]


def forms_of(secret: str) -> set[str]:
    """A secret as it could leak: plain, HTML-escaped, URL-encoded, JSON-escaped."""
    return {
        secret,
        html.escape(secret),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
    }


@pytest.fixture
def console(segment_connection, make_connection, make_event):
    """Every kind of object, each holding the secrets it can hold."""
    segment_connection.signing_key_secondary = SIGNING_KEY_2
    segment_connection.product_id = "08d86d63-2721-4da6-8c06-584521d516bc"
    segment_connection.configcat_api_user = "configcat-api-user-0123456789"
    segment_connection.configcat_api_password = SECRETS[4]
    segment_connection.save()
    second = make_connection(name="Second", write_key=SECRETS[3], signing_key=SIGNING_KEY_2)
    second.mark_unhealthy("Segment answered 401 unauthorized: Invalid write key")
    receipt = WebhookReceipt.objects.create(
        connection=segment_connection,
        webhook_id="wh-secrets",
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
    events = [
        make_event(receipt=receipt, status="dead"),
        make_event(connection=second, kind="evaluated", status="delivered"),
        make_event(kind="identify", status="failed"),
    ]
    return {"connections": [segment_connection, second], "events": events, "receipt": receipt}


def every_page(console: dict[str, Any]) -> list[str]:
    """Every page a GET can reach: the app's URLs, the admin's for its models, the demo's,
    and some error pages."""
    events, connections = console["events"], console["connections"]
    app = [
        reverse(
            f"configcat_segment:{p.name}",
            args=[events[0].pk] if "<int:pk>" in str(p.pattern) else [],
        )
        for p in app_urlpatterns
        if p.name not in {"webhook", "event_export"}
    ]
    app += [reverse("configcat_segment:event_export", args=[fmt]) for fmt in ("csv", "jsonl")]
    app += [reverse("configcat_segment:webhook", args=[c.pk]) for c in connections]
    app += [reverse("configcat_segment:event_detail", args=[e.pk]) for e in events]
    app += [reverse("configcat_segment:api_event", args=[e.pk]) for e in events]
    admin = ["/admin/", "/admin/configcat_segment/", "/admin/configcat_segment/eventlog/"]
    for model, objects in (
        ("segmentconnection", [c.pk for c in connections]),
        ("event", [e.pk for e in events]),
        ("webhookreceipt", [console["receipt"].pk]),
    ):
        base = f"/admin/configcat_segment/{model}/"
        admin += [base, base + "?q=x", base + "add/"]
        admin += [
            f"{base}{pk}/{page}/" for pk in objects for page in ("change", "history", "delete")
        ]
    errors = [
        reverse("configcat_segment:event_list") + "?since=soon&cursor=bad",
        reverse("configcat_segment:api_events") + "?status=lost",
        reverse("configcat_segment:event_detail", args=[999_999]),
        "/admin/configcat_segment/segmentconnection/not-a-uuid/change/",
    ]
    return [*app, *admin, *errors, "/", "/debugger/", "/configcat-segment/metrics/"]


@pytest.fixture
def evaluations_dropped() -> Any:
    """The demo's home page evaluates flags; what it buffered is not this suite's business."""
    yield
    get_writer().discard()
    recorder.reset()


@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_no_page_answer_or_log_line_shows_a_secret(
    console, superuser, who, caplog, evaluations_dropped
):
    caplog.set_level(logging.DEBUG)
    client = (
        client_for(superuser)
        if who == "superuser"
        else client_for(user_with("view_event", "view_webhookreceipt", "view_segmentconnection"))
    )
    # Each connection's salt too: it keys the pseudonyms of the personal data policy, so
    # whoever has it can test a guessed email against them.
    secrets = [*SECRETS, *(c.message_id_salt for c in console["connections"])]
    leaks = []
    for url in every_page(console):
        response = client.get(url, follow=True)
        # The health endpoint answers 503 while a connection is unhealthy, as designed.
        assert response.status_code < 500 or url.endswith("/health/"), url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode() + json.dumps(dict(response.headers))
        leaks += [(url, s) for s in secrets for form in forms_of(s) if form in text]
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    assert leaks == []
    assert [s for s in secrets if s in log_text] == []


def test_no_action_answer_shows_a_secret(console, staff_client, caplog):
    # The actions' pages, redirects and messages: retry, replay, bulk retry by a filter.
    caplog.set_level(logging.DEBUG)
    dead, delivered, _ = console["events"]
    bulk = reverse("configcat_segment:event_bulk_retry")
    responses = [
        staff_client.post_form(
            reverse("configcat_segment:event_retry", args=[dead.pk]), follow=True
        ),
        staff_client.post_form(
            reverse("configcat_segment:event_replay", args=[delivered.pk]), follow=True
        ),
        staff_client.get(bulk + "?status=dead", follow=True),
        staff_client.post_form(bulk, {"status": "failed"}, follow=True),
    ]
    assert [r.status_code for r in responses] == [200] * 4
    text = "".join(r.content.decode() for r in responses)
    assert [s for s in SECRETS for form in forms_of(s) if form in text] == []
    # The page of the event the receipt is behind names neither credential header.
    page = staff_client.get(reverse("configcat_segment:event_detail", args=[dead.pk]))
    assert "X-Forwarded-Api-Key" not in page.content.decode()
    assert "X-Signing-Secret" not in page.content.decode()
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    assert [s for s in SECRETS if s in log_text] == []
