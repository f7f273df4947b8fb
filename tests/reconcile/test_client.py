"""The audit-log client against the fake API: shapes, paging, rate limits and errors."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from configcat_segment.reconcile import answers as api
from configcat_segment.reconcile.answers import AuditLogError, parse_entry
from configcat_segment.reconcile.client import AuditLogClient
from tests.configcat_api_server import ConfigCatAPIServer
from tests.segment_server import refused_url
from tests.webhooks.conftest import CONFIG_ID, ENVIRONMENT_ID, PRODUCT_ID

from .conftest import API_PASSWORD, API_USER, LATER, NOW_DT, audit_entry

START, END = NOW_DT - dt.timedelta(hours=1), NOW_DT + dt.timedelta(hours=1)


@pytest.fixture(params=[None, 2], ids=["array", "paged"])
def server(request: pytest.FixtureRequest) -> Iterator[ConfigCatAPIServer]:
    credentials = {(API_USER, API_PASSWORD): {PRODUCT_ID}, ("other", "pw-other"): {"elsewhere"}}
    with ConfigCatAPIServer(
        credentials=credentials, now=lambda: LATER, page_size=request.param
    ) as s:
        yield s


def client_for(server: ConfigCatAPIServer, password: str = API_PASSWORD, **kw) -> AuditLogClient:
    return AuditLogClient(server.url, API_USER, password, timeout=5, **kw)


def error_of(client: AuditLogClient, product: str = PRODUCT_ID, **kw) -> AuditLogError:
    """The error reading ``product`` raises (``kw``: the window's ``end``)."""
    with client, pytest.raises(AuditLogError) as caught:
        client.entries(product, start=START, end=kw.get("end", END))
    return caught.value


def read(server: ConfigCatAPIServer, **kw) -> list[api.AuditEntry]:
    with client_for(server) as client:
        return client.entries(PRODUCT_ID, start=START, end=END, **kw)


def test_entries_are_read_whole_oldest_first_within_the_window(server):
    at = [NOW_DT - dt.timedelta(minutes=m) for m in (30, 10, 20, 40, 50)]
    items = [
        audit_entry(server, at=moment, setting_key=f"k{n}", details=f"k{n}: false ➔ true")
        for n, moment in enumerate(at)
    ]
    audit_entry(server, at=END, setting_key="at-the-end")  # the API includes both ends
    audit_entry(server, at=START - dt.timedelta(seconds=1), setting_key="before")

    entries = read(server)

    assert [e.action_target for e in entries] == ["k4", "k3", "k0", "k2", "k1"]
    first = entries[0]
    assert first.audit_log_id == items[4]["auditLogId"]
    assert first.at == at[4]
    assert first.type == "settingValueChanged"
    assert (first.user_email, first.user_name) == ("jane@example.com", "Jane Doe")
    assert first.details == "k4: false ➔ true"
    assert first.truncated is False
    asked = server.requests[0].params
    assert asked["auditLogType"] == "settingValueChanged"
    assert asked["fromUtcDateTime"] == "2026-09-21T13:13:20.000Z"
    if server.page_size:  # five and the one at the end, in pages of two
        assert [r.params.get("pageNumber") for r in server.requests] == [None, "2", "3"]


def test_filters_by_config_and_environment(server):
    audit_entry(server, setting_key="here")
    audit_entry(server, setting_key="there", environment_id="another-environment")
    entries = read(server, config_id=CONFIG_ID, environment_id=ENVIRONMENT_ID)
    assert [e.action_target for e in entries] == ["here"]


def test_429_is_waited_out_as_retry_after_says(server, fixed_clock):
    audit_entry(server)
    server.fail(429, times=2, retry_after="2")
    assert len(read(server)) == 1
    assert fixed_clock == [2.0, 2.0]
    assert [r.status for r in server.requests][:3] == [429, 429, 200]


def test_429_longer_than_the_deadline_is_an_error(server, fixed_clock):
    server.fail(429, retry_after="600")
    error = error_of(client_for(server, deadline=time.monotonic() + 60))
    assert error.kind == api.RATE_LIMITED
    assert error.retry_after == 600
    assert fixed_clock == []


@pytest.mark.parametrize(
    ("password", "product", "kind", "text"),
    [
        ("wrong", PRODUCT_ID, api.CREDENTIALS, "refused the Public API credential (401)"),
        (API_PASSWORD, "elsewhere", api.CREDENTIALS, "(403)"),
        (API_PASSWORD, "no-such-product", api.NOT_FOUND, "no such product (404)"),
    ],
)
def test_refusals_say_what_to_fix(server, password, product, kind, text):
    error = error_of(client_for(server, password), product)
    assert error.kind == kind
    assert text in error.message
    assert password not in error.message


def test_a_bad_request_carries_configcats_message(server):
    error = error_of(client_for(server), end=START + dt.timedelta(days=31))
    assert error.kind == api.REFUSED
    assert "cannot exceed 30 days" in error.message


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b'[{"auditLogId": 1, "auditLogDateTime": "2026-09-', "not JSON, or was cut off"),
        (b"<html>Maintenance</html>", "not JSON"),
        (b'{"items": []}', "expected a JSON array"),
        (b"[42]", "item 0 is not a JSON object"),
        (b'[{"auditLogDateTime": "2026-09-21T10:00:00Z"}]', "no whole-number auditLogId"),
        (b'[{"auditLogId": true, "auditLogDateTime": "2026-09-21T10:00:00Z"}]', "auditLogId"),
        (b'[{"auditLogId": 5, "auditLogDateTime": "yesterday"}]', "no readable auditLogDateTime"),
        (  # a date that exists, but not in UTC
            b'[{"auditLogId": 5, "auditLogDateTime": "0001-01-01T00:00:00+01:00"}]',
            "no readable auditLogDateTime",
        ),
        (
            b'[{"auditLogId": 5, "auditLogDateTime": "2026-09-21T10:00:00Z", "details": 3}]',
            "details",
        ),
        (
            b'[{"auditLogId": 5, "auditLogDateTime": "2026-09-21T10:00:00Z", "truncated": "no"}]',
            "truncated",
        ),
        (b'{"paging": {"currentPage": 3, "hasNext": false}, "data": []}', "got page 3"),
        (b"\xff\xfe[]", "not UTF-8"),
    ],
)
def test_unreadable_answers_are_errors(server, raw, text):
    server.answer_raw(raw)
    with pytest.raises(AuditLogError) as caught:
        read(server)
    assert caught.value.kind == api.MALFORMED
    assert text in caught.value.message


def test_an_answer_cut_before_its_end_is_an_error(server):
    audit_entry(server)
    server.cut()
    with pytest.raises(AuditLogError) as caught:
        read(server)
    assert caught.value.kind == api.MALFORMED
    assert "cut off" in caught.value.message


def test_no_answer_in_time_is_an_error(server):
    gate = server.hold()
    try:
        error = error_of(AuditLogClient(server.url, API_USER, API_PASSWORD, timeout=0.2))
    finally:
        gate.release()
    assert error.kind == api.UNAVAILABLE
    assert "within 0.2 s" in error.message


def test_nothing_listening_is_an_error():
    error = error_of(AuditLogClient(refused_url(), API_USER, API_PASSWORD, timeout=5))
    assert error.kind == api.UNAVAILABLE
    assert API_PASSWORD not in error.message


def test_unavailable_and_redirects(server):
    server.fail(503)
    with pytest.raises(AuditLogError) as caught:
        read(server)
    assert (caught.value.kind, caught.value.message) == (
        api.UNAVAILABLE,
        "ConfigCat's API is unavailable (503).",
    )
    server.fail(302)
    with pytest.raises(AuditLogError) as caught:
        read(server)
    assert caught.value.kind == api.REFUSED


def test_the_credential_travels_as_basic_auth_only(server):
    read(server)
    (request,) = server.requests
    assert request.user == API_USER
    assert API_PASSWORD not in request.path + str(request.params)


def test_nullable_fields_and_the_enum_name():
    entry = parse_entry(
        {
            "auditLogId": 9,
            "auditLogDateTime": "2026-09-21T10:00:00.1234567",
            "auditLogTypeEnum": "settingValueChanged",
            "auditLogType": None,
            "changeSetId": None,
            "userEmail": None,
            "why": None,
        },
        0,
    )
    assert entry.type == "settingValueChanged"
    assert entry.at == dt.datetime(2026, 9, 21, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert (entry.user_email, entry.why, entry.change_set_id) == ("", "", "")
