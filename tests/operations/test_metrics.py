"""The Prometheus metrics: read from the database at scrape time, right under any processes."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from configcat_segment.models import EvaluationCounter, WebhookReceipt
from configcat_segment.operations import metrics, prometheus
from configcat_segment.operations.probe import TEST_USER_ID

from ..conftest import WRITE_KEY
from ..delivery.conftest import ROOT, SAFETY_SECONDS
from .conftest import bearer

pytestmark = pytest.mark.django_db

URL = "/configcat-segment/metrics/"


def scrape(**headers):
    response = Client().get(URL, **bearer(), **headers)
    assert response.status_code == 200, response.content
    return response


def samples(response=None):
    """{(name, frozenset(labels.items())): value} of one scrape."""
    text = (response or scrape()).content.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found, name, **labels):
    return found[name, frozenset(labels.items())]


@pytest.fixture
def shop(make_connection, add_event):
    """Production: delivering, with a backlog of one old event; Staging: refused."""
    production = make_connection(name="Production", write_key=WRITE_KEY)
    staging = make_connection(name="Staging")
    for latency in (0.5, 3, 3, 100, 4000):
        add_event(production, "delivered", age=latency, delivered_after=latency)
    add_event(production, "delivered", age=86400, delivered_after=1)  # before the window
    add_event(production, "pending", age=900)
    add_event(production, "dead", age=60)
    add_event(production, "dead", age=50, user_id=TEST_USER_ID)  # a failed test send
    add_event(staging, "failed", age=30)
    add_event(staging, "failed", age=20)
    staging.mark_unhealthy("Segment answered 401")
    make_connection(name="Old", connected=False)
    return production, staging


def test_connections_and_events(monitoring, shop):
    found = samples()
    assert value(found, "configcat_segment_connection_connected", connection="Production") == 1
    assert value(found, "configcat_segment_connection_connected", connection="Old") == 0
    assert value(found, "configcat_segment_connection_healthy", connection="Production") == 1
    assert value(found, "configcat_segment_connection_healthy", connection="Staging") == 0
    assert value(found, "configcat_segment_connection_paused", connection="Staging") == 0
    for connection, status, n in [
        ("Production", "pending", 1),
        ("Production", "failed", 0),
        ("Production", "dead", 1),
        ("Staging", "failed", 2),
        ("Old", "pending", 0),
    ]:
        assert value(found, "configcat_segment_events", connection=connection, status=status) == n
    assert not any(
        name == "configcat_segment_events" and ("status", "delivered") in labels
        for name, labels in found
    )
    lag = value(
        found, "configcat_segment_oldest_waiting_event_age_seconds", connection="Production"
    )
    assert 900 <= lag < 1000
    staging_lag = value(
        found, "configcat_segment_oldest_waiting_event_age_seconds", connection="Staging"
    )
    assert 30 <= staging_lag < 100
    assert value(found, "configcat_segment_metrics_window_seconds") == 300


def test_delivery_latency_is_a_histogram_of_the_window(monitoring, shop):
    found = samples()
    name = "configcat_segment_delivery_latency_seconds"

    def bucket(le, connection="Production"):
        return value(found, f"{name}_bucket", connection=connection, le=le)

    assert bucket("1.0") == 1  # 0.5 s
    assert bucket("2.0") == 1
    assert bucket("5.0") == 3  # and the two of 3 s
    assert bucket("60.0") == 3
    assert bucket("120.0") == 4  # and 100 s
    assert bucket("3600.0") == 4
    assert bucket("+Inf") == 5  # and 4000 s; the one delivered yesterday is not in the window
    assert value(found, f"{name}_gcount", connection="Production") == 5
    assert math.isclose(value(found, f"{name}_gsum", connection="Production"), 4106.5, abs_tol=0.01)
    assert bucket("+Inf", "Staging") == 0
    monitoring(METRICS_WINDOW_SECONDS=2 * 86400)
    assert value(samples(), f"{name}_gcount", connection="Production") == 6


def test_webhook_receipts_and_evaluations(monitoring, shop):
    production, _ = shop
    for outcome in ("processed", "processed", "failed"):
        WebhookReceipt.objects.create(connection=production, method="POST", outcome=outcome)
    EvaluationCounter.objects.add(EvaluationCounter.DROPPED, 7)
    found = samples()
    receipts = "configcat_segment_webhook_receipts"
    assert value(found, receipts, connection="Production", outcome="processed") == 2
    assert value(found, receipts, connection="Production", outcome="failed") == 1
    assert value(found, receipts, connection="Staging", outcome="processed") == 0
    evaluations = "configcat_segment_evaluations_not_forwarded_total"
    assert value(found, evaluations, reason="dropped") == 7
    assert value(found, evaluations, reason="failed") == 0


def test_openmetrics_when_the_scraper_asks(monitoring, shop):
    response = scrape(HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    text = response.content.decode()
    assert "# TYPE configcat_segment_delivery_latency_seconds gaugehistogram" in text
    assert text.rstrip().endswith("# EOF")
    plain = scrape()
    assert plain["Content-Type"].startswith("text/plain")
    assert WRITE_KEY not in plain.content.decode() + text


@pytest.mark.parametrize(
    "accept",
    ["application/openmetrics-text; version=abc", "application/openmetrics-text; version=1..0"],
)
def test_an_unreadable_accept_header_gets_the_text_format(monitoring, shop, accept):
    response = scrape(HTTP_ACCEPT=accept)
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert (
        value(samples(response), "configcat_segment_events", connection="Staging", status="failed")
        == 2
    )


@pytest.mark.parametrize("connections", [1, 5])
def test_a_fixed_number_of_queries(monitoring, make_connection, add_event, connections):
    for _ in range(connections):
        connection = make_connection()
        add_event(connection, "delivered", delivered_after=1)
        add_event(connection, "pending")
    with CaptureQueriesContext(db_connection) as queries:
        scrape()
    assert len(queries) == 6  # five, and one to find no connection reconciles


def test_protected_like_the_health_endpoint(monitoring):
    response = Client().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Client().post(URL, **bearer()).status_code == 405


def test_sources_add_metrics(monitoring, make_connection):
    make_connection(name="Production")
    name = "shop_last_backup_timestamp_seconds"

    def backups():
        return [metrics.Family(name, "gauge", "When.", ("connection",), [(("Production",), 1.7e9)])]

    metrics.add_source(backups)
    try:
        assert value(samples(), name, connection="Production") == 1.7e9
    finally:
        metrics.remove_source(backups)
    assert not any(n == name for n, _ in samples())


# -- requests to Segment: counted where they are sent --------------------------------------


def test_requests_are_counted_in_the_sending_process(segment_server):
    from configcat_segment.segment import transport

    segment_server.write_keys.add(WRITE_KEY)
    host = segment_server.url.removeprefix("http://")

    def count(code):
        found = REGISTRY.get_sample_value(
            "configcat_segment_requests_total", {"host": host, "code": code}
        )
        return found or 0

    before = count("200"), count("401")
    for key in (WRITE_KEY, WRITE_KEY, "wrong-key"):
        transport.send(
            [{"type": "track", "event": "x", "userId": "a", "messageId": f"m-{key}-{before}"}],
            endpoint=segment_server.url,
            write_key=key,
            sent_at="2025-01-01T00:00:00.000Z",
            gzip=False,
            timeout=5,
        )
    assert (count("200"), count("401")) == (before[0] + 2, before[1] + 1)


def test_without_multiprocess_mode_the_url_leaves_request_counts_out(monitoring, monkeypatch):
    for name in prometheus.MULTIPROCESS_ENV:
        monkeypatch.delenv(name, raising=False)
    assert not any(name.startswith("configcat_segment_request") for name, _ in samples())


def test_multiprocess_mode_adds_up_the_processes(monitoring, segment_server, tmp_path, monkeypatch):
    """Two processes send, as two gunicorn workers would; any process's scrape sees both."""
    segment_server.write_keys.add(WRITE_KEY)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    runs = [(WRITE_KEY, "mp-1"), (WRITE_KEY, "mp-2"), ("wrong-key", "mp-3")]
    for key, message_id in runs:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.operations.send_script",
                segment_server.url,
                key,
                message_id,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SAFETY_SECONDS,
            check=True,
        )
        assert finished.stdout.strip() in ("200", "401"), finished.stderr
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    found = samples()
    host = segment_server.url.removeprefix("http://")
    assert value(found, "configcat_segment_requests_total", host=host, code="200") == 2
    assert value(found, "configcat_segment_requests_total", host=host, code="401") == 1
    assert value(found, "configcat_segment_request_duration_seconds_count", host=host) == 3
    # The database's metrics are there too, read by this process.
    assert any(name == "configcat_segment_metrics_window_seconds" for name, _ in found)


def test_a_metrics_url_without_prometheus_client_is_a_check_error(monkeypatch):
    from configcat_segment.operations.checks import check_metrics

    assert check_metrics() == []
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    [error] = check_metrics()
    assert error.id == "configcat_segment.E015"
    assert error.hint == "pip install configcat-segment[prometheus]"
