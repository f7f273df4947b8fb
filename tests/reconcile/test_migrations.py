"""Migrations 0005 and 0006 keep the rows they find, with the new fields at their defaults."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

APP = "configcat_segment"
BEFORE = [(APP, "0004_delivery_pause")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_connections_and_receipts_are_kept():
    latest = [(APP, migrate_leaf())]
    old = migrate(BEFORE)
    try:
        Connection = old.get_model(APP, "SegmentConnection")
        Receipt = old.get_model(APP, "WebhookReceipt")
        kept = Connection.objects.create(name="Old", write_key="wk_live_0123456789ab", region="us")
        Receipt.objects.create(connection=kept, webhook_id="w1", method="POST", body=b"{}")

        new = migrate(latest)

        now_row = new.get_model(APP, "SegmentConnection").objects.get(pk=kept.pk)
        assert now_row.name == "Old"
        assert (now_row.configcat_api_user, now_row.configcat_api_password) == (
            "",
            "",
        )
        assert now_row.reconciled_until is None
        receipt = new.get_model(APP, "WebhookReceipt").objects.get(webhook_id="w1")
        assert (receipt.body_sha256, receipt.duplicate_of_id) == ("", None)
    finally:
        migrate(latest)


def migrate_leaf() -> str:
    executor = MigrationExecutor(connection)
    (leaf,) = [name for app, name in executor.loader.graph.leaf_nodes() if app == APP]
    return leaf
