"""The webhook view on REST framework's extension points: the raw-body parser, the
signature authentication and the refusals as exceptions, whatever the project's
REST framework settings say."""

import pytest
from django.test import override_settings
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

from configcat_segment.exceptions import BodyTooLarge, UnknownConnection, WebhookRejected
from configcat_segment.models import WebhookReceipt

from .conftest import answer, configcat_body, headers_for

pytestmark = pytest.mark.django_db


def reshaping_handler(exc, context):
    """A project's own exception handler, which reshapes every error."""
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"oops": True}
    return response


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""],
)
def test_any_content_type_is_read_as_the_raw_bytes_that_were_signed(
    segment_connection, client, content_type
):
    body = configcat_body() + b"&a=b"
    response = client.post(
        segment_connection.webhook_path,
        data=body,
        content_type=content_type,
        headers=headers_for(body),
    )
    assert response.status_code == 200, response.content
    assert bytes(WebhookReceipt.objects.get().body) == body


@override_settings(
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "EXCEPTION_HANDLER": "tests.webhooks.test_drf.reshaping_handler",
    }
)
def test_the_projects_authentication_permissions_parsers_and_error_shape_do_not_apply(
    segment_connection, send
):
    assert send(segment_connection, configcat_body()).status_code == 200
    refused = send(segment_connection, configcat_body(), keys=[])
    assert refused.status_code == 400
    assert answer(refused)["error"] == "missing_header"
    assert WebhookReceipt.objects.count() == 1


@override_settings(
    REST_FRAMEWORK={"EXCEPTION_HANDLER": "tests.webhooks.test_drf.reshaping_handler"}
)
def test_errors_that_are_not_refusals_keep_the_projects_shape(segment_connection, client):
    response = client.put(segment_connection.webhook_path)
    assert response.status_code == 405
    assert answer(response) == {"oops": True}


def test_refusals_are_rest_framework_exceptions_with_their_status_and_code():
    refusals = [
        WebhookRejected("bad_signature", "No signature matches.", status=403),
        UnknownConnection(),
        BodyTooLarge(1000),
    ]
    assert [(r.status_code, r.code) for r in refusals] == [
        (403, "bad_signature"),
        (404, "unknown_connection"),
        (413, "body_too_large"),
    ]
    for refusal in refusals:
        assert isinstance(refusal, APIException)
        assert refusal.get_codes() == refusal.code
        assert str(refusal) == refusal.message
    assert BodyTooLarge(1000).message == (
        'The body is larger than 1,000 bytes (CONFIGCAT_SEGMENT["WEBHOOK_MAX_BODY_BYTES"]).'
    )
    # REST framework's own handler gives each its status.
    response = exception_handler(BodyTooLarge(10), {})
    assert isinstance(response, Response)
    assert response.status_code == 413
