"""Reconciliation's metrics: its health, its point and what it forwarded, per connection."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from configcat_segment.operations import reconciliation
from configcat_segment.reconcile import reconcile

from ..operations.conftest import TOKEN, bearer
from .conftest import API_PASSWORD, LATER, NOW_DT, audit_entry

pytestmark = pytest.mark.django_db(transaction=True)


def scrape() -> dict[tuple[str, str], float]:
    """{(name, connection): value} of one scrape of the metrics URL."""
    response = Client().get("/configcat-segment/metrics/", **bearer())
    assert response.status_code == 200
    text = response.content.decode()
    assert API_PASSWORD not in text
    return {
        (s.name, s.labels.get("connection", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_without_a_reconciling_connection_there_are_none(api_settings, make_connection):
    api_settings(MONITORING_TOKEN=TOKEN)
    make_connection(name="Production")
    found = scrape()
    assert not any(name.startswith("configcat_segment_reconcil") for name, _ in found)


def test_health_point_and_forwarded_changes(
    reconciling,
    audit_log,
    send_webhook,
    api_settings,
    make_connection,
):
    send_webhook(reconciling)
    audit_entry(audit_log, setting_key="newCheckout", at=NOW_DT + dt.timedelta(minutes=20))
    broken = make_connection(
        name="Staging",
        product_id=reconciling.product_id,
        configcat_api_user="someone",
        configcat_api_password="wrong-password-0000",
        created_at=reconciling.created_at,
    )
    outcome = reconcile(reconciling, now=LATER)
    assert outcome.forwarded == 1
    assert reconcile(broken, now=LATER).error_kind == "credentials"
    api_settings(MONITORING_TOKEN=TOKEN, METRICS_WINDOW_SECONDS=10 * 365 * 86400)

    found = scrape()

    assert found[reconciliation.HEALTHY, "Production"] == 1
    assert found[reconciliation.HEALTHY, "Staging"] == 0
    assert found[reconciliation.RECONCILED_UNTIL, "Production"] == outcome.until.timestamp()
    assert (reconciliation.RECONCILED_UNTIL, "Staging") not in found  # never read
    assert found[reconciliation.FORWARDED, "Production"] == 1  # the webhook's is not counted
    assert found[reconciliation.FORWARDED, "Staging"] == 0


def test_two_queries_whatever_the_number_of_connections(reconciling, make_connection):
    for n in range(4):
        make_connection(
            name=f"Shop {n}",
            product_id=reconciling.product_id,
            configcat_api_user="someone",
            configcat_api_password="a-password",
        )
    with CaptureQueriesContext(db_connection) as queries:
        families = reconciliation.families()
    assert len(queries) == 2
    assert [len(f.samples) for f in families] == [5, 0, 5]
