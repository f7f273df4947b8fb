"""configcat_segment_reconcile, and the credential on connect, status and the admin."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from configcat_segment.models import Event, SegmentConnection
from tests.webhooks.conftest import PRODUCT_ID

from .conftest import API_PASSWORD, API_USER, audit_entry

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("configcat_segment_reconcile", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def recent(reconciling: SegmentConnection) -> SegmentConnection:
    """The connection, made two days ago and known to receive webhooks for config-1 /
    env-1. The command runs at the real time, so audit entries are made relative to it."""
    reconciling.created_at = timezone.now() - dt.timedelta(days=2)
    reconciling.save()
    reconciling.webhook_scopes.create(
        config_id="config-1", environment_id="env-1", config_name="Main", environment_name="Prod"
    )
    return reconciling


def test_prints_one_json_object_and_forwards(recent, audit_log):
    item = audit_entry(
        audit_log,
        config_id="config-1",
        environment_id="env-1",
        setting_key="newCheckout",
        at=timezone.now() - dt.timedelta(minutes=20),
    )
    result = run("--connection", "Production")
    assert (result["entries"], result["matched"], result["forwarded"]) == (1, 0, 1)
    assert result["skipped"] == {}
    (one,) = result["connections"]
    assert one["connection"]["name"] == "Production"
    assert [c["audit_log_id"] for c in one["changes"]] == [item["auditLogId"]]
    assert Event.objects.filter(flag_key="newCheckout").count() == 1
    assert API_PASSWORD not in json.dumps(result)


def test_a_dry_run_changes_nothing(recent, audit_log):
    audit_entry(
        audit_log,
        config_id="config-1",
        environment_id="env-1",
        at=timezone.now() - dt.timedelta(minutes=20),
    )
    result = run("--dry-run")
    assert result["dry_run"] is True
    assert result["forwarded"] == 1
    assert not Event.objects.exists()
    recent.refresh_from_db()
    assert recent.reconciled_until is None


def test_since_reads_further_back(recent, audit_log):
    audit_entry(
        audit_log,
        config_id="config-1",
        environment_id="env-1",
        at=timezone.now() - dt.timedelta(days=3),
    )
    assert run()["forwarded"] == 0  # before the connection's first point
    since = (timezone.now() - dt.timedelta(days=4)).isoformat()
    assert run("--since", since)["forwarded"] == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--since", "last tuesday"], "give an ISO-8601 date-time"),
        (["--since", "0001-01-01T00:00:00+01:00"], "give an ISO-8601 date-time"),
        (["--since", "9999-12-31T23:59:59-01:00"], "give an ISO-8601 date-time"),
        (["--since", "2999-01-01T00:00:00Z"], "--since: give a moment in the past"),
        (["--since", "2000-01-01T00:00:00Z"], "--since: at most 30 days ago"),
        (["--connection", "Nope"], "No Segment connection has the id or name 'Nope'"),
    ],
)
def test_bad_arguments_are_one_line_errors(recent, args, error):
    with pytest.raises(CommandError, match=error.replace("(", r"\(")):
        run(*args)


def test_a_connection_that_cannot_be_reconciled_says_why(make_connection, api_settings):
    make_connection(name="Bare", product_id=PRODUCT_ID)
    with pytest.raises(CommandError, match="no ConfigCat Public API credential"):
        run("--connection", "Bare")


def test_a_failure_is_printed_and_exits_non_zero(recent, audit_log):
    audit_log.fail(503)
    out = io.StringIO()
    with pytest.raises(CommandError, match="unavailable"):
        call_command("configcat_segment_reconcile", stdout=out)
    result = json.loads(out.getvalue())
    assert result["errors"] == 1
    assert result["connections"][0]["error_kind"] == "unavailable"


def test_status_shows_the_reconciliation_health(recent, audit_log):
    recent.configcat_api_password = "wrong-password-0000"
    recent.save()
    with pytest.raises(CommandError):
        run()
    out = io.StringIO()
    call_command("configcat_segment_status", stdout=out)
    (connection,) = json.loads(out.getvalue())["connections"]
    health = connection["reconciliation"]
    assert health["enabled"] is True
    assert health["healthy"] is False
    assert "(401)" in health["error"]
    assert health["configcat_api_user"] == "…0123"  # redacted
    assert "wrong-password" not in out.getvalue()


def test_connect_takes_the_credential(db):
    out = io.StringIO()
    call_command(
        "configcat_segment_connect",
        "--name=P",
        "--write-key=wk_live_0123456789abcdef",
        "--region=us",
        f"--product-id={PRODUCT_ID}",
        f"--configcat-api-user={API_USER}",
        f"--configcat-api-password={API_PASSWORD}",
        stdout=out,
    )
    connection = SegmentConnection.objects.get(name="P")
    assert (connection.configcat_api_user, connection.configcat_api_password) == (
        API_USER,
        API_PASSWORD,
    )
    assert API_PASSWORD not in out.getvalue()
    assert json.loads(out.getvalue())["reconciliation"]["enabled"] is True


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([f"--configcat-api-user={API_USER}"], "give both"),
        (["--configcat-api-user=u", "--configcat-api-password=p"], "needs the product id"),
    ],
)
def test_connect_refuses_half_a_credential(db, args, error):
    with pytest.raises(CommandError, match=error):
        call_command(
            "configcat_segment_connect",
            "--name=P",
            "--write-key=wk_live_0123456789abcdef",
            "--region=us",
            *args,
            stdout=io.StringIO(),
        )
