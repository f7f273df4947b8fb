"""configcat_segment_worker, configcat_segment_requeue and configcat_segment_prune."""

import datetime as dt
import io
import json
import signal

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from configcat_segment.delivery import outbox
from configcat_segment.models import Event
from tests.test_commands import run

from .conftest import SAFETY_SECONDS, enqueue, statuses, subprocess_env


def worker_once():
    """``configcat_segment_worker --once``, in this process. (Not through ``run()``: that
    keeps ``connections.close_all()`` from closing anything, the lanes' connections too.)"""
    out = io.StringIO()
    call_command("configcat_segment_worker", "--once", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db(transaction=True)
def test_worker_once_delivers_everything_due_and_exits(segment_server, connect_to):
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(3))
    enqueue(second, range(2))
    report = worker_once()
    assert (report["claimed"], report["delivered"], report["dead"]) == (5, 5, 0)
    assert report["errors"] == 0
    assert statuses() == {"delivered": 5}


@pytest.mark.django_db(transaction=True)
def test_worker_once_leaves_what_is_not_due_yet(segment_server, connect_to):
    connection = connect_to(segment_server)
    enqueue(connection, range(2))
    segment_server.fail(503)
    assert worker_once()["retrying"] == 2
    assert statuses() == {"failed": 2}


def test_worker_once_fails_when_the_database_does_not_answer(tmp_path, start_process):
    env = subprocess_env()
    env["CONFIGCAT_SEGMENT_TEST_DATABASE"] = json.dumps(
        {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "missing" / "db.sqlite3")}
    )
    # Without the system checks, which on Django 6 are the first to find it missing.
    worker = start_process(
        "manage.py", "configcat_segment_worker", "--once", "--skip-checks", env=env
    )
    out, err = worker.communicate(timeout=SAFETY_SECONDS)
    assert worker.returncode == 1, err
    assert json.loads(out)["errors"] == 1
    assert "could not look for due events" in err
    assert err.splitlines()[-1] == (
        "CommandError: Not everything due was delivered: 1 error (see the log)."
    )


def test_worker_bad_arguments_are_one_line(capsys):
    code, out, err = run(capsys, "configcat_segment_worker", "--twice")
    assert (code, out) == (2, "")
    assert err.strip().endswith("error: unrecognized arguments: --twice")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_batch_in_hand_and_exits_0(segment_server, connect_to, start_process):
    connection = connect_to(segment_server)
    enqueue(connection, range(5))
    gate = segment_server.hold()
    worker = start_process(
        "manage.py", "configcat_segment_worker", env=subprocess_env(WORKER_POLL_SECONDS=0.1)
    )
    assert gate.arrived.wait(SAFETY_SECONDS), worker.stderr
    worker.send_signal(signal.SIGTERM)
    gate.release()  # Segment answers the request the worker had in hand
    out, err = worker.communicate(timeout=SAFETY_SECONDS)
    assert worker.returncode == 0, err
    assert json.loads(out)["delivered"] == 5
    assert statuses() == {"delivered": 5}
    assert "stopped on SIGTERM, the requests in hand finished" in err


EVENT_IDS = "must be a whole number from 1 to 9223372036854775807"  # a BigAutoField


@pytest.mark.django_db
class TestRequeue:
    @pytest.fixture
    def events(self, segment_connection, make_connection):
        other = make_connection(name="Staging")
        created = enqueue(segment_connection, range(4)) + enqueue(other, [9])
        for event, status in zip(
            created, ["dead", "failed", "delivered", "pending", "dead"], strict=True
        ):
            Event.objects.filter(pk=event.pk).update(
                status=status, attempts=5, last_error="Segment answered 400", queued_at=OLD
            )
        return created

    def test_dead_events_by_default(self, capsys, events):
        code, out, _ = run(capsys, "configcat_segment_requeue")
        assert (code, json.loads(out)) == (0, {"requeued": 2})
        assert Event.objects.filter(status="pending", attempts=0).count() == 2
        assert Event.objects.get(pk=events[3].pk).attempts == 5  # pending: left alone
        requeued = Event.objects.get(pk=events[0].pk)
        assert requeued.queued_at > OLD
        assert requeued.message_id == events[0].message_id

    def test_by_status_and_connection(self, capsys, events):
        code, out, _ = run(
            capsys,
            "configcat_segment_requeue",
            "--status",
            "dead",
            "--status",
            "delivered",
            "--connection",
            "Production",
        )
        assert code == 0
        assert json.loads(out) == {"requeued": 2}
        assert statuses() == {"pending": 3, "failed": 1, "dead": 1}

    def test_single_events(self, capsys, events):
        run(capsys, "configcat_segment_requeue", "--event", str(events[4].pk))
        assert Event.objects.get(pk=events[4].pk).status == "pending"
        assert Event.objects.get(pk=events[0].pk).status == "dead"

    def test_an_empty_connection_is_refused_not_ignored(self, capsys, events):
        code, out, err = run(capsys, "configcat_segment_requeue", "--connection", "")
        assert (code, out) == (1, "")
        assert err == (
            "CommandError: Give a Segment connection's id or name, not an empty value.\n"
        )
        assert statuses()["dead"] == 2

    def test_dry_run_changes_nothing(self, capsys, events):
        code, out, _ = run(capsys, "configcat_segment_requeue", "--dry-run")
        assert code == 0
        assert json.loads(out) == {"would_requeue": 2, "dry_run": True}
        assert statuses()["dead"] == 2

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (["--status", "pending"], "argument --status: invalid choice: 'pending'"),
            (["--connection", "Nope"], "No Segment connection has the id or name 'Nope'."),
            *[
                (["--event", given], f"argument --event: {EVENT_IDS}, not '{given}'")
                for given in ["x", "0", "99999999999999999999"]
            ],
        ],
    )
    def test_bad_arguments_are_one_line(self, capsys, events, args, error):
        code, out, err = run(capsys, "configcat_segment_requeue", *args)
        assert (code != 0, out) == (True, "")
        assert error in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err


OLD = timezone.now() - dt.timedelta(days=40)


@pytest.mark.django_db
class TestPrune:
    @pytest.fixture
    def events(self, segment_connection):
        created = enqueue(segment_connection, range(6))
        now = timezone.now()
        ages = [40, 31, 29, 1, 40, 40]
        kinds = ["delivered", "delivered", "delivered", "delivered", "dead", "failed"]
        for event, days, status in zip(created, ages, kinds, strict=True):
            Event.objects.filter(pk=event.pk).update(
                status=status, delivered_at=now - dt.timedelta(days=days)
            )
        return created

    def test_deletes_delivered_events_older_than_the_retention(self, capsys, events):
        code, out, _ = run(capsys, "configcat_segment_prune")
        assert (code, json.loads(out)["deleted"]) == (0, 2)
        assert statuses() == {"delivered": 2, "dead": 1, "failed": 1}

    def test_days_and_dry_run(self, capsys, events):
        code, out, _ = run(capsys, "configcat_segment_prune", "--days", "2", "--dry-run")
        assert code == 0
        assert json.loads(out)["would_delete"] == 3
        assert Event.objects.count() == 6
        code, out, _ = run(capsys, "configcat_segment_prune", "--days", "2")
        assert code == 0
        assert json.loads(out)["deleted"] == 3

    def test_the_retention_setting(self, capsys, events, delivery_settings):
        delivery_settings(RETENTION_DAYS=10)
        code, out, _ = run(capsys, "configcat_segment_prune")
        assert code == 0
        assert json.loads(out)["deleted"] == 3

    def test_many_events_are_deleted_in_chunks(self, capsys, segment_connection, monkeypatch):
        from configcat_segment.management.commands import configcat_segment_prune

        monkeypatch.setattr(configcat_segment_prune, "CHUNK", 7)
        enqueue(segment_connection, range(30))
        Event.objects.update(status="delivered", delivered_at=OLD)
        code, out, _ = run(capsys, "configcat_segment_prune")
        assert code == 0
        assert json.loads(out)["deleted"] == 30
        assert not Event.objects.exists()

    def test_an_event_requeued_meanwhile_is_not_deleted(self, capsys, events, monkeypatch):
        """Requeued between the select and the delete: it is pending now, so it stays."""
        from configcat_segment.management.commands import configcat_segment_prune

        next_chunk = configcat_segment_prune.next_chunk

        def requeue_one_of_them(old):
            ids = next_chunk(old)
            outbox.requeue(Event.objects.filter(pk=events[0].pk))
            return ids

        monkeypatch.setattr(configcat_segment_prune, "next_chunk", requeue_one_of_them)
        code, out, _ = run(capsys, "configcat_segment_prune")
        assert (code, json.loads(out)["deleted"]) == (0, 1)
        assert Event.objects.get(pk=events[0].pk).status == "pending"
        assert not Event.objects.filter(pk=events[1].pk).exists()

    def test_the_longest_retention(self, capsys, events):
        code, out, _ = run(capsys, "configcat_segment_prune", "--days", "36500")
        assert (code, json.loads(out)["deleted"]) == (0, 0)

    @pytest.mark.parametrize("days", ["0", "-3", "soon", "36501", "99999999999"])
    def test_bad_days_are_one_line(self, capsys, days):
        code, out, err = run(capsys, "configcat_segment_prune", "--days", days)
        assert (code, out) == (2, "")
        assert f"argument --days: must be a whole number from 1 to 36500, not '{days}'" in err
        assert len(err.strip().splitlines()) == 1

    def test_a_retention_setting_out_of_range_is_a_check_error(self, capsys):
        with override_settings(CONFIGCAT_SEGMENT={"RETENTION_DAYS": 99_999_999_999}):
            code, out, err = run(capsys, "configcat_segment_prune")
        assert (code, out) == (1, "")
        assert (
            'CONFIGCAT_SEGMENT["RETENTION_DAYS"] must be a whole number from 1 to 36500 '
            "(got 99999999999)." in err
        )
        assert "Traceback" not in err
