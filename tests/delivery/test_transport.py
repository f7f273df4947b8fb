import base64
import json
import logging

import pytest

from configcat_segment.segment import transport
from tests.segment_server import SegmentServer, refused_url

from .conftest import track

KEY = "wk_transport_0123456789SECRET"
SENT_AT = "2026-01-02T03:04:05.678Z"


@pytest.fixture
def server():
    with SegmentServer(write_keys={KEY}) as server:
        yield server


def send(url, messages, *, write_key=KEY, gzip=True, timeout=5.0):
    return transport.send(
        messages, endpoint=url, write_key=write_key, sent_at=SENT_AT, gzip=gzip, timeout=timeout
    )


@pytest.mark.parametrize("gzip", [True, False])
def test_a_batch_is_posted_with_basic_auth_gzip_and_our_sent_at(server, gzip):
    messages = [track(1), track(2)]
    answer = send(server.url, messages, gzip=gzip)
    assert answer == transport.Answer(200)
    [received] = server.requests
    assert received.write_key == KEY
    assert received.gzip is gzip
    assert received.sent_at == SENT_AT
    assert received.message_ids == ["m1", "m2"]
    assert received.headers["user-agent"].startswith("analytics-python/")
    assert server.accepted_messages == messages


def test_segment_s_answer_is_kept_and_the_write_key_is_not(server):
    answer = send(server.url, [track(1)], write_key="wk_unknown_0123456789SECRET")
    assert answer.status == 401
    assert answer.error == "Segment answered 401 unauthorized: Invalid write key"
    assert "SECRET" not in answer.error


def test_retry_after_is_passed_on(server):
    server.fail(429, retry_after="7")
    answer = send(server.url, [track(1)])
    assert (answer.status, answer.retry_after) == (429, "7")
    assert "429" in answer.error


def test_a_refused_message_comes_back_with_segment_s_reason(server):
    server.poison("m2", "The message is malformed")
    answer = send(server.url, [track(1), track(2)])
    assert answer.status == 400
    assert answer.error == "Segment answered 400 invalid_request: The message is malformed"


def test_a_refused_connection_is_no_answer():
    answer = send(refused_url(), [track(1)])
    assert answer.status is None
    assert answer.error.startswith("No answer from http://127.0.0.1:")


def test_a_timeout_is_no_answer(server):
    gate = server.hold()
    try:
        answer = send(server.url, [track(1)], timeout=0.2)
    finally:
        gate.release()
    assert answer.status is None
    assert "timed out" in answer.error.lower()


def test_an_error_text_never_carries_the_write_key():
    key = "wk_in_the_url_0123456789SECRET"
    answer = send(f"http://{key}.invalid", [track(1)], write_key=key)
    assert answer.status is None
    assert key not in answer.error


def test_an_error_text_never_carries_the_write_key_as_basic_auth(monkeypatch):
    key = "wk_echoed_by_a_proxy_0123456789"
    basic = base64.b64encode(f"{key}:".encode()).decode()

    def post(*args, **kwargs):
        raise OSError(f"proxy refused: Authorization: Basic {basic}")

    monkeypatch.setattr(transport.segment_request, "post", post)
    answer = send("http://127.0.0.1:9", [track(1)], write_key=key)
    assert answer.status is None
    assert (
        answer.error
        == "No answer from http://127.0.0.1:9: proxy refused: Authorization: Basic …6789"
    )
    assert basic not in answer.error
    assert key not in answer.error


def test_the_segment_logger_never_records_a_write_key(server, caplog):
    # segment-analytics-python logs the whole request body, write key included, at DEBUG.
    caplog.set_level(logging.DEBUG, logger="segment")
    send(server.url, [track(1)])
    logged = [r.getMessage() for r in caplog.records if r.name == "segment"]
    request_logs = [m for m in logged if m.startswith("making request")]
    assert request_logs, logged
    body = json.loads(request_logs[0].removeprefix("making request: "))
    assert body["writeKey"] == "…"
    assert body["batch"][0]["messageId"] == "m1"
    assert KEY not in caplog.text


def test_the_filter_is_installed_once_when_the_app_is_ready():
    transport.install_log_filter()
    filters = logging.getLogger("segment").filters
    assert sum(isinstance(f, transport.RedactWriteKeys) for f in filters) == 1
