"""The webhook view over HTTP (Django's test client): verify, store first, forward."""

import io
import json
import uuid

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.core.management import call_command
from django.db import OperationalError, connections
from django.db import connection as db_connection
from django.test import override_settings

from configcat_segment.constants import HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE
from configcat_segment.models import Event, SegmentConnection, WebhookReceipt
from configcat_segment.signals import flag_changed
from configcat_segment.webhooks import receipts
from configcat_segment.webhooks.views import WebhookView

from ..conftest import SIGNING_KEY, SIGNING_KEY_2, WRITE_KEY, CsrfClient
from .conftest import NOW, PRODUCT_ID, answer, configcat_body, headers_for

pytestmark = pytest.mark.django_db


def nothing_stored():
    return WebhookReceipt.objects.count() == 0 and Event.objects.count() == 0


# -- 1. the happy path, stored first -----------------------------------------------------------


def test_a_signed_webhook_becomes_one_event_per_setting(segment_connection, send):
    body = configcat_body()
    headers = {
        **headers_for(body, webhook_id="w-1"),
        "Authorization": "Bearer secret-token",
        "Cookie": "sessionid=secret",
        "X-Custom": "kept",
    }
    response = send(segment_connection, body, headers)
    receipt = WebhookReceipt.objects.get()
    assert response.status_code == 200
    assert answer(response) == {
        "status": "processed",
        "receipt": receipt.pk,
        "events": 2,
        "problems": [],
    }
    assert bytes(receipt.body) == body
    assert receipt.webhook_id == "w-1"
    assert receipt.webhook_timestamp.timestamp() == NOW
    assert receipt.method == "POST"
    assert receipt.remote_addr == "127.0.0.1"
    assert receipt.outcome == "processed"
    assert receipt.error == ""
    assert receipt.headers["X-Custom"] == "(not stored)"  # a header not known to be harmless
    assert receipt.headers[HEADER_WEBHOOK_ID.title()] == "w-1"
    stored = json.dumps(receipt.headers).lower()
    for secret in ("signature", "authorization", "cookie", "secret"):
        assert secret not in stored
    events = list(Event.objects.order_by("id"))
    assert [e.flag_key for e in events] == ["isAwesomeFeatureEnabled", "discountRate"]
    assert {e.receipt_id for e in events} == {receipt.pk}
    assert {e.status for e in events} == {"pending"}
    assert {e.user_id for e in events} == {"jane@example.com"}
    first = events[0].payload
    assert first["event"] == "Feature Flag Changed"
    assert first["timestamp"] == "2026-09-21T14:13:20.000Z"
    assert first["properties"]["product_id"] == PRODUCT_ID
    assert first["properties"]["product_name"] == "Shop"
    assert first["context"]["integration"] == {"name": "configcat", "version": "1.0.0"}


def test_the_answer_and_the_receipt_never_show_the_signing_keys(make_connection, send):
    connection = make_connection(signing_key_secondary=SIGNING_KEY_2)
    body = configcat_body()
    response = send(connection, body, keys=[SIGNING_KEY, SIGNING_KEY_2])
    assert response.status_code == 200
    receipt = WebhookReceipt.objects.get()
    visible = response.content.decode() + json.dumps(receipt.headers) + receipt.error
    for secret in (SIGNING_KEY, SIGNING_KEY_2, SIGNING_KEY[-12:], WRITE_KEY):
        assert secret not in visible


def test_unknown_connection_is_a_json_404(segment_connection, client):
    body = configcat_body()
    response = client.post(
        f"/configcat-segment/webhooks/{uuid.uuid4()}/",
        data=body,
        content_type="application/json",
        headers=headers_for(body),
    )
    assert response.status_code == 404
    assert answer(response)["error"] == "unknown_connection"
    assert nothing_stored()


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("connected", "The connection is disconnected: nothing was forwarded."),
        ("forward_changes", "The connection does not forward flag changes."),
    ],
)
def test_a_connection_that_does_not_forward_keeps_the_receipt_and_says_ignored(
    make_connection, send, field, reason
):
    connection = make_connection(**{field: False})
    response = send(connection, configcat_body())
    assert response.status_code == 200
    receipt = WebhookReceipt.objects.get()
    assert answer(response) == {"status": "ignored", "receipt": receipt.pk, "detail": reason}
    assert (receipt.outcome, receipt.error) == ("ignored", reason)
    assert Event.objects.count() == 0


def test_a_disconnected_connection_still_refuses_unsigned_requests(make_connection, send):
    connection = make_connection(connected=False)
    response = send(connection, b"{}", {"X-Custom": "x"})
    assert response.status_code == 400
    assert nothing_stored()


# -- 2. verification failures store nothing ---------------------------------------------------


@pytest.mark.parametrize(
    ("sign", "status", "code"),
    [
        ({"timestamp": NOW - 301}, 403, "stale_timestamp"),
        ({"timestamp": NOW + 301}, 403, "future_timestamp"),
        ({"timestamp": "yesterday"}, 400, "invalid_timestamp"),
        (
            {"keys": ["configcat_whsk_SomeoneElsesKey000000000000000000000000000="]},
            403,
            "bad_signature",
        ),
        ({"keys": []}, 400, "missing_header"),
    ],
)
def test_verification_failures_answer_json_naming_the_problem(
    segment_connection, send, sign, status, code
):
    response = send(segment_connection, configcat_body(), **sign)
    assert response.status_code == status
    data = answer(response)
    assert data["error"] == code
    assert data["detail"]
    assert nothing_stored()


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_at_the_tolerance_are_accepted(segment_connection, send, offset):
    assert send(segment_connection, configcat_body(), timestamp=NOW + offset).status_code == 200


@override_settings(CONFIGCAT_SEGMENT={"WEBHOOK_TOLERANCE_SECONDS": 10})
def test_the_tolerance_is_a_setting(segment_connection, send):
    response = send(segment_connection, configcat_body(), timestamp=NOW - 11)
    assert answer(response)["error"] == "stale_timestamp"


def test_a_tampered_body_is_refused(segment_connection, send):
    body = configcat_body()
    headers = headers_for(body)
    response = send(segment_connection, body.replace(b"true", b"fals"), headers)
    assert (response.status_code, answer(response)["error"]) == (403, "bad_signature")
    assert nothing_stored()


@pytest.mark.parametrize("missing", ["ID", "Timestamp", "Signature-V1"])
def test_each_missing_header_is_named_in_the_answer(segment_connection, send, missing):
    body = configcat_body()
    headers = {k: v for k, v in headers_for(body).items() if k != f"X-ConfigCat-Webhook-{missing}"}
    response = send(segment_connection, body, headers)
    assert response.status_code == 400
    assert f"X-ConfigCat-Webhook-{missing}" in answer(response)["detail"]
    assert nothing_stored()


@pytest.mark.parametrize(
    "keys",
    [[SIGNING_KEY], [SIGNING_KEY_2], [SIGNING_KEY, SIGNING_KEY_2], [SIGNING_KEY_2, SIGNING_KEY]],
    ids=["primary", "secondary", "both", "both-reversed"],
)
def test_rotated_keys_either_key_and_both_signatures(make_connection, send, keys):
    connection = make_connection(signing_key=SIGNING_KEY, signing_key_secondary=SIGNING_KEY_2)
    assert send(connection, configcat_body(), keys=keys).status_code == 200


def test_a_connection_with_only_a_second_key_verifies_with_it(make_connection, send):
    connection = make_connection(signing_key="", signing_key_secondary=SIGNING_KEY_2)
    assert send(connection, configcat_body(), keys=[SIGNING_KEY_2]).status_code == 200
    assert send(connection, configcat_body(), keys=[SIGNING_KEY]).status_code == 403


# -- unsigned webhooks -------------------------------------------------------------------------


def test_without_a_signing_key_webhooks_are_refused_by_default(make_connection, send):
    connection = make_connection(signing_key="")
    response = send(connection, configcat_body(), keys=[])
    assert (response.status_code, answer(response)["error"]) == (403, "no_signing_key")
    assert nothing_stored()


@override_settings(CONFIGCAT_SEGMENT={"ALLOW_UNSIGNED_WEBHOOKS": True})
def test_unsigned_webhooks_when_allowed_and_the_connection_has_no_key(make_connection, send):
    unsigned = make_connection(signing_key="")
    body = configcat_body()
    assert send(unsigned, body, {}).status_code == 200
    assert send(unsigned, body, {}).status_code == 200  # no id: nothing to call it a duplicate
    receipts = list(WebhookReceipt.objects.all())
    assert [r.webhook_id for r in receipts] == ["", ""]
    assert Event.objects.count() == 4
    assert Event.objects.values("message_id").distinct().count() == 4
    signed = make_connection()
    assert answer(send(signed, body, {}))["error"] == "missing_header"


def test_w002_warns_while_unsigned_webhooks_are_allowed():
    from configcat_segment import checks

    with override_settings(CONFIGCAT_SEGMENT={"ALLOW_UNSIGNED_WEBHOOKS": True}):
        [warning] = checks.check_unsigned_webhooks()
    assert warning.id == "configcat_segment.W002"
    assert 'CONFIGCAT_SEGMENT["ALLOW_UNSIGNED_WEBHOOKS"] is on' in warning.msg
    assert checks.check_unsigned_webhooks() == []
    with override_settings(CONFIGCAT_SEGMENT={"ALLOW_UNSIGNED_WEBHOOKS": "yes"}):
        assert checks.check_unsigned_webhooks() == []  # E003 reports that one


def test_manage_py_check_shows_w002(capsys):
    with override_settings(CONFIGCAT_SEGMENT={"ALLOW_UNSIGNED_WEBHOOKS": True}):
        call_command("check")
    assert "configcat_segment.W002" in capsys.readouterr().err
    call_command("check")
    assert "W002" not in capsys.readouterr().err


# -- the body size limit ----------------------------------------------------------------------


class Endless(io.RawIOBase):
    """A request body that never ends; counts what was read from it."""

    def __init__(self):
        self.consumed = 0

    def readable(self):
        return True

    def read(self, size=-1):
        size = 1 << 20 if size is None or size < 0 else min(size, 7)  # short reads, like a socket
        self.consumed += size
        return b"x" * size


def raw_request(connection, stream, **environ):
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": connection.webhook_path,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": stream,
            **environ,
        }
    )
    response = WebhookView.as_view()(request, connection_id=connection.pk)
    response.render()
    return response


LIMIT = 1000


@override_settings(CONFIGCAT_SEGMENT={"WEBHOOK_MAX_BODY_BYTES": LIMIT})
def test_a_declared_length_over_the_limit_is_413_before_reading(segment_connection):
    stream = Endless()
    response = raw_request(segment_connection, stream, CONTENT_LENGTH=str(LIMIT + 1))
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "body_too_large"
    assert stream.consumed == 0
    assert nothing_stored()


@override_settings(CONFIGCAT_SEGMENT={"WEBHOOK_MAX_BODY_BYTES": LIMIT})
def test_a_chunked_body_is_read_only_up_to_the_limit(segment_connection):
    stream = Endless()
    response = raw_request(segment_connection, stream, **{"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert LIMIT < stream.consumed <= LIMIT + 7
    assert nothing_stored()


@override_settings(CONFIGCAT_SEGMENT={"WEBHOOK_MAX_BODY_BYTES": LIMIT})
def test_a_chunked_body_within_the_limit_is_read_to_its_end(segment_connection):
    body = configcat_body(details=[])
    assert len(body) < LIMIT
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value for name, value in headers_for(body).items()
    }
    response = raw_request(
        segment_connection, io.BytesIO(body), **{"wsgi.input_terminated": True}, **headers
    )
    assert response.status_code == 200, response.content
    assert bytes(WebhookReceipt.objects.get().body) == body


@override_settings(CONFIGCAT_SEGMENT={"WEBHOOK_MAX_BODY_BYTES": LIMIT})
def test_the_limit_is_exact(segment_connection, send):
    base = configcat_body(details=[])
    at_limit = base + b" " * (LIMIT - len(base))
    assert send(segment_connection, at_limit).status_code == 200
    assert send(segment_connection, at_limit + b" ").status_code == 413


def test_the_default_limit_leaves_generous_headroom_over_configcats_15000_characters(
    segment_connection, send
):
    notes = "✓" * 15_000  # 45,000 bytes of UTF-8; 90,000 as Segment's JSON (\u2713)
    body = configcat_body({"ChangeNotes": notes})
    response = send(segment_connection, body)
    assert response.status_code == 200
    # The receipt keeps every byte; the events are cut to Segment's 32 KB per message.
    assert bytes(WebhookReceipt.objects.get().body) == body
    for event in Event.objects.all():
        assert event.status == "pending"
        assert event.payload["properties"]["change_notes"].endswith("… [truncated]")


# -- 5. bad but signed input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b"Jane turned on the flag", "Jane turned on the flag"),
        (b'{"text": "no template"}', '{"text": "no template"}'),
        (b"[1, 2", "[1, 2"),
    ],
)
def test_a_body_that_is_not_the_template_still_makes_an_event_with_the_raw_text(
    segment_connection, send, body, details
):
    response = send(segment_connection, body)
    assert response.status_code == 200
    data = answer(response)
    assert data["status"] == "processed_with_errors"
    assert data["events"] == 1
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "processed_with_errors"
    assert receipt.error.splitlines() == data["problems"]
    [event] = Event.objects.all()
    assert event.payload["properties"]["details"] == details
    assert event.payload["userId"] == receipts.connection_user_id(segment_connection)


def test_unescaped_quotes_still_make_full_events(segment_connection, send):
    notes = 'Turned on "fast checkout"'
    response = send(segment_connection, configcat_body({"ChangeNotes": notes}, escape=False))
    assert answer(response)["status"] == "processed_with_errors"
    events = Event.objects.order_by("id")
    assert [e.payload["properties"]["change_notes"] for e in events] == [notes, notes]
    assert events[0].payload["properties"]["user_email"] == "jane@example.com"


def test_a_get_webhook_without_a_body_makes_one_event_for_the_change(segment_connection, send):
    response = send(segment_connection, b"", method="get")
    assert response.status_code == 200
    receipt = WebhookReceipt.objects.get()
    assert (receipt.method, bytes(receipt.body)) == ("GET", b"")
    assert receipt.error.startswith("The body is empty")
    [event] = Event.objects.all()
    assert event.payload["properties"]["details"] == ""
    assert event.payload["properties"]["product_id"] == ""


@pytest.mark.parametrize("method", ["head", "options", "put", "delete"])
def test_other_methods_are_not_allowed(segment_connection, client, method):
    assert getattr(client, method)(segment_connection.webhook_path).status_code == 405
    assert nothing_stored()


def test_a_very_long_webhook_id_is_stored_as_a_hash_and_still_deduplicated(
    segment_connection, send
):
    body = configcat_body()
    long_id = "x" * 300
    assert send(segment_connection, body, webhook_id=long_id).status_code == 200
    assert answer(send(segment_connection, body, webhook_id=long_id))["status"] == "duplicate"
    assert WebhookReceipt.objects.get().webhook_id.startswith("sha256:")


# -- 6. idempotency -----------------------------------------------------------------------------


def test_a_redelivered_webhook_answers_2xx_and_creates_nothing(segment_connection, send):
    body = configcat_body()
    first = send(segment_connection, body, webhook_id="w-1")
    before = list(Event.objects.values_list("message_id", flat=True).order_by("id"))
    again = send(segment_connection, body, webhook_id="w-1")
    assert first.status_code == again.status_code == 200
    assert answer(again) == {
        "status": "duplicate",
        "receipt": answer(first)["receipt"],
        "detail": "This webhook was received before; nothing new was created.",
    }
    assert WebhookReceipt.objects.count() == 1
    assert list(Event.objects.values_list("message_id", flat=True).order_by("id")) == before


def test_the_same_webhook_id_on_two_connections_is_two_webhooks(make_connection, send):
    one, two = make_connection(), make_connection()
    body = configcat_body()
    assert answer(send(one, body, webhook_id="w-1"))["status"] == "processed"
    assert answer(send(two, body, webhook_id="w-1"))["status"] == "processed"
    ids = {e.connection_id: e.payload["messageId"] for e in Event.objects.all()}
    assert len(set(ids.values())) == 2  # salted per connection


def test_a_processing_error_keeps_the_receipt_failed_and_is_not_a_500(
    segment_connection, send, broken_parser, caplog
):
    response = send(segment_connection, configcat_body(), webhook_id="w-1")
    assert response.status_code == 503
    data = answer(response)
    assert data["status"] == "failed"
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "failed"
    assert "RuntimeError: parser bug" in receipt.error
    assert "Traceback" in receipt.error
    assert Event.objects.count() == 0
    assert "processing webhook receipt" in caplog.text


def test_a_redelivery_reprocesses_a_webhook_whose_processing_failed(
    segment_connection, send, broken_parser
):
    body = configcat_body()
    assert send(segment_connection, body, webhook_id="w-1").status_code == 503
    again = send(segment_connection, body, webhook_id="w-1")
    assert again.status_code == 200
    assert answer(again)["status"] == "processed"
    receipt = WebhookReceipt.objects.get()
    assert (receipt.outcome, receipt.error) == ("processed", "")
    assert Event.objects.filter(receipt=receipt).count() == 2
    # Processed now: a third delivery is a plain duplicate.
    assert answer(send(segment_connection, body, webhook_id="w-1"))["status"] == "duplicate"
    assert len(broken_parser) == 2


def test_reprocess_is_safe_to_repeat_and_recreates_only_missing_events(segment_connection, send):
    send(segment_connection, configcat_body(), webhook_id="w-1")
    receipt = WebhookReceipt.objects.get()
    ids = set(Event.objects.values_list("message_id", flat=True))
    Event.objects.filter(flag_key="discountRate").delete()
    assert receipts.reprocess(receipt).outcome == "processed"
    assert set(Event.objects.values_list("message_id", flat=True)) == ids
    receipts.reprocess(receipt)
    assert Event.objects.count() == 2


def test_reprocess_uses_the_connection_as_it_is_now(segment_connection, send):
    segment_connection.disconnect()
    send(segment_connection, configcat_body())
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "ignored"
    segment_connection.connect()
    assert receipts.reprocess(receipt).outcome == "processed"
    assert Event.objects.count() == 2


# -- 7. the flag_changed signal ------------------------------------------------------------------


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append((sender, kwargs))

    flag_changed.connect(receiver)
    yield calls
    flag_changed.disconnect(receiver)


def test_flag_changed_is_sent_per_event_after_commit(
    segment_connection, send, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(segment_connection, configcat_body())
    assert received == []  # not before the commit
    for callback in callbacks:
        callback()
    events = list(Event.objects.order_by("id"))
    assert [kwargs["event"] for _, kwargs in received] == events
    assert {sender for sender, _ in received} == {type(segment_connection)}
    assert {kwargs["connection"] for _, kwargs in received} == {segment_connection}
    assert [kwargs["event"].flag_key for _, kwargs in received] == [
        "isAwesomeFeatureEnabled",
        "discountRate",
    ]


def test_no_flag_changed_for_a_duplicate_or_an_ignored_webhook(
    make_connection, send, received, django_capture_on_commit_callbacks
):
    connection = make_connection()
    body = configcat_body()
    with django_capture_on_commit_callbacks(execute=True):
        send(connection, body, webhook_id="w-1")
    received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        send(connection, body, webhook_id="w-1")
        send(make_connection(connected=False), body)
    assert received == []


def test_a_failing_receiver_is_logged_and_the_webhook_still_succeeds(
    segment_connection, send, django_capture_on_commit_callbacks, caplog
):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    flag_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = send(segment_connection, configcat_body())
    finally:
        flag_changed.disconnect(broken)
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "django.dispatch"]
    assert len(records) == 2  # once per event
    assert all("receiver bug" in r.getMessage() for r in records)


# -- 3. transactions: ATOMIC_REQUESTS and a CSRF-enforcing client --------------------------------


@pytest.fixture
def atomic_depth_at_insert():
    """How deeply nested in atomic blocks the receipt's INSERT runs."""
    from django.db.models.signals import pre_save

    depths = []

    def record(sender, instance, **kwargs):
        if instance._state.adding:
            depths.append(len(db_connection.atomic_blocks))

    pre_save.connect(record, sender=WebhookReceipt)
    yield depths
    pre_save.disconnect(record, sender=WebhookReceipt)


@pytest.mark.django_db(transaction=True)
def test_commits_with_atomic_requests_and_a_csrf_enforcing_client(
    make_connection, atomic_requests, atomic_depth_at_insert, broken_parser
):
    client = CsrfClient()
    connection = make_connection()
    body = configcat_body()
    headers = headers_for(body, webhook_id="w-1")

    def post():
        return client.post(
            connection.webhook_path, data=body, content_type="application/json", headers=headers
        )

    # Processing fails (parser bug): the receipt is committed as failed, with no events.
    assert post().status_code == 503
    assert WebhookReceipt.objects.get().outcome == "failed"
    assert Event.objects.count() == 0
    # The redelivery reprocesses it; the duplicate after that is refused by the constraint
    # inside a savepoint, which leaves the request's transaction usable.
    assert post().status_code == 200
    duplicate = post()
    assert (duplicate.status_code, answer(duplicate)["status"]) == (200, "duplicate")
    assert WebhookReceipt.objects.get().outcome == "processed"
    assert Event.objects.count() == 2
    # The insert runs in the view's atomic block: a savepoint inside the request's
    # transaction when ATOMIC_REQUESTS is on, the transaction itself otherwise.
    assert atomic_depth_at_insert == [2 if atomic_requests else 1] * 3


@pytest.mark.django_db(transaction=True)
def test_receipt_and_events_commit_together_or_not_at_all(make_connection, monkeypatch):
    connection = make_connection()
    wrapper = type(connections["default"])
    real_commit = wrapper._commit
    written = []

    def commit(self):
        written.extend(Event.objects.values_list("message_id", flat=True))
        if WebhookReceipt.objects.exists():  # receipt and events written, not committed
            raise OperationalError("database went away")
        return real_commit(self)

    monkeypatch.setattr(wrapper, "_commit", commit)
    body = configcat_body()
    with pytest.raises(OperationalError):
        CsrfClient().post(
            connection.webhook_path,
            data=body,
            content_type="application/json",
            headers=headers_for(body),
        )
    assert len(written) == 2
    monkeypatch.undo()
    assert nothing_stored()


def test_no_signature_header_is_ever_stored(segment_connection, send):
    send(segment_connection, configcat_body())
    assert HEADER_WEBHOOK_SIGNATURE.lower() not in {
        h.lower() for h in WebhookReceipt.objects.get().headers
    }


def test_a_lone_surrogate_in_the_body_is_stored_and_forwarded_not_failed(segment_connection, send):
    # Valid JSON, signed, but "\ud800" decodes to a character no database can encode.
    body = (
        b'{"config_name":"Main","change_notes":"\\ud800 notes","changed_by":"Jane",'
        b'"change_details":[{"settingKey":"k\\udfff","event":"changed","details":"x"}]}'
    )
    response = send(segment_connection, body)
    assert response.status_code == 200, response.content
    receipt = WebhookReceipt.objects.get()
    # Fields left out of the template are the only problems; nothing failed.
    assert receipt.outcome == "processed_with_errors"
    assert "Traceback" not in receipt.error
    event = Event.objects.get()
    assert event.flag_key == "k\ufffd"
    assert event.payload["properties"]["change_notes"] == "\ufffd notes"


@pytest.mark.parametrize("accept", ["application/xml", "text/plain", "text/html;q=0.1"])
def test_any_accept_header_gets_json_and_the_webhook_is_stored(segment_connection, client, accept):
    body = configcat_body()
    response = client.post(
        segment_connection.webhook_path,
        data=body,
        content_type="application/json",
        headers={**headers_for(body), "Accept": accept},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert WebhookReceipt.objects.count() == 1


@override_settings(
    REST_FRAMEWORK={
        "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
        "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.AcceptHeaderVersioning",
        "ALLOWED_VERSIONS": ["1"],
    }
)
def test_the_projects_rest_framework_policies_never_refuse_a_signed_webhook(
    segment_connection, send
):
    for _ in range(3):
        assert send(segment_connection, configcat_body()).status_code == 200
    assert WebhookReceipt.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_deleted_while_its_webhook_is_stored_answers_404(segment_connection, send):
    # Another session deletes the connection after this request looked it up and before
    # its receipt commits; foreign keys are checked at commit.
    import threading

    from django.db import connections
    from django.db.models.signals import pre_save

    def delete_elsewhere(sender, instance, **kwargs):
        def delete():
            SegmentConnection.objects.filter(pk=instance.connection_id).delete()
            connections.close_all()

        thread = threading.Thread(target=delete)
        thread.start()
        thread.join()

    pre_save.connect(delete_elsewhere, sender=WebhookReceipt, dispatch_uid="t")
    try:
        response = send(segment_connection, configcat_body())
    finally:
        pre_save.disconnect(dispatch_uid="t")
    assert response.status_code == 404
    assert answer(response)["error"] == "unknown_connection"
    assert not WebhookReceipt.objects.exists()
