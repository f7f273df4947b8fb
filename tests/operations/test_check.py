"""``configcat_segment_status --check``: one line, exit 0 / 1 / 2, for cron and monitoring."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import uuid

import pytest
from django.utils import timezone

from configcat_segment.operations import check
from configcat_segment.operations.probe import TEST_USER_ID

from ..delivery.conftest import ROOT, SAFETY_SECONDS, subprocess_env
from ..test_commands import run

pytestmark = pytest.mark.django_db

STATUS = "configcat_segment_status"


def status_check(capsys, *options):
    code, out, err = run(capsys, STATUS, "--check", *options)
    assert out.count("\n") <= 1, out  # one line
    return code, out.strip(), err


def test_all_well_is_ok(capsys, make_connection, add_event):
    production = make_connection(name="Production")
    make_connection(name="Staging")
    add_event(production, "delivered", age=600, delivered_after=1)
    add_event(production, "pending", age=2)
    code, line, err = status_check(capsys)
    assert (code, err) == (0, "")
    assert re.fullmatch(
        r"OK: 2 connected connections healthy, oldest waiting event \d s, 0 dead events in "
        r"24 h \| lag=\ds;300;1800 dead=0;1;100 unhealthy=0",
        line,
    ), line


def test_nothing_connected_is_ok(capsys):
    code, line, _ = status_check(capsys)
    assert code == 0
    assert line.startswith("OK: 0 connected connections healthy")


def test_lag_warning_then_critical(capsys, make_connection, add_event):
    production = make_connection(name="Production")
    add_event(production, "pending", age=400)
    code, line, _ = status_check(capsys)
    assert code == 1
    assert line.startswith("WARNING: Production: oldest waiting event 4")
    assert "(> 300 s)" in line
    code, line, _ = status_check(capsys, "--lag-warning", "60", "--lag-critical", "120")
    assert code == 2
    assert line.startswith("CRITICAL: Production: oldest waiting event")
    assert "(> 120 s)" in line
    code, _, _ = status_check(capsys, "--lag-warning", "600")  # critical: six times 600
    assert code == 0


def test_the_default_lag_warning_is_the_health_setting(
    capsys, make_connection, add_event, delivery_settings
):
    add_event(make_connection(), "pending", age=400)
    delivery_settings(HEALTH_MAX_LAG_SECONDS=500)
    code, line, _ = status_check(capsys)
    assert code == 0
    assert "lag=4" in line
    assert ";500;3000 " in line


def test_an_unhealthy_connection_is_critical(capsys, make_connection):
    make_connection(name="Production")
    make_connection(name="Staging").mark_unhealthy("Segment answered 401")
    code, line, _ = status_check(capsys)
    assert code == 2
    assert line.startswith("CRITICAL: Staging: Segment refuses its write key or endpoint")
    assert line.endswith("unhealthy=1")


def test_a_disconnected_connection_does_not_count(capsys, make_connection, add_event):
    old = make_connection(name="Old", connected=False)
    old.mark_unhealthy("refused")
    add_event(old, "pending", age=86400)
    code, _, _ = status_check(capsys)
    assert code == 0


def test_dead_events_within_the_window(capsys, make_connection, add_event):
    production = make_connection(name="Production")
    staging = make_connection(name="Staging")
    add_event(production, "dead", age=3600)
    add_event(production, "dead", age=2 * 86400)  # before the window
    code, line, _ = status_check(capsys)
    assert code == 1
    assert "1 dead events in 24 h (Production 1)" in line
    add_event(staging, "dead", age=60)
    code, line, _ = status_check(capsys, "--dead-critical", "2")
    assert code == 2
    assert "2 dead events in 24 h (Production 1, Staging 1)" in line
    code, line, _ = status_check(capsys, "--dead-window", str(3 * 86400), "--dead-critical", "4")
    assert code == 1
    assert "3 dead events in 72 h" in line
    code, _, _ = status_check(capsys, "--dead-warning", "5", "--dead-critical", "10")
    assert code == 0


def test_failed_test_events_are_not_dead_events_to_worry_about(capsys, make_connection, add_event):
    add_event(make_connection(), "dead", age=10, user_id=TEST_USER_ID)
    code, _, _ = status_check(capsys)
    assert code == 0


def test_the_worst_finding_decides_and_all_are_named(capsys, make_connection, add_event):
    production = make_connection(name="Production")
    add_event(production, "pending", age=400)  # warning
    make_connection(name="Staging").mark_unhealthy("refused")  # critical
    code, line, _ = status_check(capsys)
    assert code == 2
    assert "Production: oldest waiting event" in line
    assert "Staging: Segment refuses" in line


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--lag-warning", "600", "--lag-critical", "300"], "--lag-critical (300) must not"),
        (["--dead-warning", "10", "--dead-critical", "5"], "--dead-critical (5) must not"),
        (["--lag-warning", "-1"], "must be a number of seconds"),
        (["--dead-warning", "0"], "must be a whole number from 1"),
    ],
)
def test_bad_thresholds_are_one_line_errors(capsys, options, message):
    code, out, err = run(capsys, STATUS, "--check", *options)
    assert code == 2  # never mistaken for OK or WARNING
    assert out == ""
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_without_check_the_json_is_unchanged(capsys, make_connection):
    make_connection()
    code, out, _ = run(capsys, STATUS)
    assert code == 0
    assert out.lstrip().startswith("{")


def test_pure_evaluation():
    now = timezone.now()
    thresholds = check.Thresholds(300, 1800, 1, 100, 86400)
    lagging = check.health.ConnectionState(
        id=uuid.uuid4(),
        name="P",
        connected=True,
        unhealthy_since=None,
        paused_until=None,
        waiting_since=now - dt.timedelta(seconds=1801),
    )
    assert check.evaluate([lagging], {}, thresholds, now)[0] == 2
    assert check.evaluate([lagging], {}, check.Thresholds(300, 3600, 1, 100, 86400), now)[0] == 1
    assert check.evaluate([], {"P": 100}, thresholds, now)[0] == 2
    assert check.evaluate([], {"P": 99}, thresholds, now)[0] == 1


@pytest.mark.django_db(transaction=True)
def test_the_exit_code_of_a_real_process(make_connection, add_event):
    """What cron and Nagios see: the process's own exit status and one line on stdout."""
    make_connection(name="Staging").mark_unhealthy("refused")
    finished = subprocess.run(
        [sys.executable, "manage.py", STATUS, "--check"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=SAFETY_SECONDS,
    )
    assert finished.returncode == 2, finished.stderr
    assert finished.stdout.startswith("CRITICAL: Staging: Segment refuses")
    assert finished.stdout.count("\n") == 1
