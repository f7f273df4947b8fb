"""Real processes: a shell that exits, a fork()ed child, the background writer thread."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from configcatclient.user import User
from django.db import connections
from django.db.backends.signals import connection_created

import configcat_segment
from configcat_segment.evaluations import buffer as writer
from configcat_segment.evaluations.hook import recorder
from configcat_segment.models import Event

from .conftest import CONFIG_V6, PRO_USER, tracks

ROOT = Path(__file__).resolve().parents[2]

# Python 3.12 warns about fork() in a process with threads. Earlier tests leave idle
# threads behind (asgiref's executor, for one); none holds a lock the child takes.
forking = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_shell_forwards_its_evaluations_at_exit(tmp_path):
    """No request, no flush() call: the evaluations are written when the process exits."""
    database = tmp_path / "shell.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "CONFIGCAT_FLAG_OVERRIDES": str(CONFIG_V6),
        "CONFIGCAT_SEGMENT_DELIVERY": "worker",
    }
    manage("migrate", "--noinput", "-v0", env=env)
    manage(
        "configcat_segment_connect",
        "--name",
        "Prod",
        "--write-key",
        "wk_0123456789",
        "--region",
        "us",
        env=env,
    )
    manage(
        "shell",
        "-c",
        "import configcat_segment; from configcatclient.user import User; "
        "client = configcat_segment.get_client(); "
        "[client.get_value(k, None, User('u-shell', country='HU')) "
        "for k in ('isPremium', 'betaRollout', 'isPremium')]",
        env=env,
    )
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT type, flag_key, user_id, payload FROM configcat_segment_event ORDER BY id"
        ).fetchall()
    # The identify first; the tracks of one write in the writer's order (see store._insert).
    assert rows[0][:3] == ("identify", "isPremium", "u-shell")
    assert sorted((kind, flag, user) for kind, flag, user, _ in rows[1:]) == [
        ("track", "betaRollout", "u-shell"),
        ("track", "isPremium", "u-shell"),
    ]
    payload = json.loads(rows[1][3])
    assert "page" not in payload["context"]
    status = json.loads(manage("configcat_segment_status", env=env))
    assert status["events"]["pending"] == 3


@forking
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_forked_child_still_forwards(segment_connection):
    parent_client = configcat_segment.get_client()
    parent_client.get_value("isPremium", False, PRO_USER)
    assert len(writer.get_writer()) == 1
    connections.close_all()  # the child must not share the parent's database socket
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            child_client = configcat_segment.get_client()
            fresh = child_client is not parent_client and len(writer.get_writer()) == 0
            child_client.get_value("maxItems", 0, User("u-child", custom={"plan": "pro"}))
            configcat_segment.flush()
            connections.close_all()
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent still has its own evaluation, once: the child did not write it too.
    assert configcat_segment.get_client() is parent_client
    configcat_segment.flush()
    sent = {(t["userId"], t["properties"]["feature_flag_key"]): t for t in tracks()}
    assert set(sent) == {("u-pro", "isPremium"), ("u-child", "maxItems")}
    assert sent["u-child", "maxItems"]["properties"]["value"] == 50


@pytest.mark.django_db(transaction=True)
def test_the_background_writer_thread(segment_connection, configure):
    # A long interval: the thread must be woken by the buffer filling up, not by time.
    configure(EVALUATION_WRITER="thread", EVALUATION_FLUSH_SECONDS=3600, EVALUATION_BUFFER_SIZE=4)
    client = configcat_segment.get_client()
    try:
        client.get_value("isPremium", False, User("u1"))
        client.get_value("isPremium", False, User("u2"))
        deadline = time.monotonic() + 30  # a safety net only
        while Event.objects.filter(type="track").count() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(t["userId"] for t in tracks()) == ["u1", "u2"]
        assert len(writer.get_writer()) == 0
    finally:
        writer.get_writer().stop()


@pytest.mark.django_db(transaction=True)
def test_the_background_writer_keeps_its_connection_between_flushes(segment_connection, configure):
    """A flush is not a request: the writer does not reconnect for each (with SQLite's
    CONN_MAX_AGE of 0 it used to)."""
    configure(EVALUATION_WRITER="thread", EVALUATION_FLUSH_SECONDS=3600, EVALUATION_BUFFER_SIZE=4)
    opened = []

    def count(sender, connection, **kwargs):
        opened.append(threading.current_thread().name)

    connection_created.connect(count)
    client = configcat_segment.get_client()
    try:
        for written, users in ((2, ("u1", "u2")), (4, ("u3", "u4"))):
            for user in users:
                client.get_value("isPremium", False, User(user))
            deadline = time.monotonic() + 30  # a safety net only
            while len(tracks()) < written and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(tracks()) == written
    finally:
        connection_created.disconnect(count)
        writer.get_writer().stop()
    assert opened.count("configcat-segment-evaluations") == 1


def test_a_thread_started_after_a_stop_waits_for_its_own_wake(configure, monkeypatch):
    """stop() wakes the thread it stops; the next thread must not take that for its own
    (it would write the first evaluation alone, and the second wait an hour)."""
    woken_at_start = []
    monkeypatch.setattr(
        writer.Writer, "_run", lambda self: woken_at_start.append(self._wake.is_set())
    )
    configure(EVALUATION_WRITER="thread", EVALUATION_FLUSH_SECONDS=3600, EVALUATION_BUFFER_SIZE=4)
    buffer = writer.get_writer()
    buffer.stop()
    configcat_segment.get_client().get_value("isPremium", False, User("u1"))  # starts one
    buffer._thread.join(30)
    assert woken_at_start == [False]


@forking
def test_a_forked_child_gets_its_own_client_and_an_empty_buffer():
    """The fork hooks alone, without a database: this runs on every backend."""
    parent_client = configcat_segment.get_client()
    parent_client.get_value("isPremium", False, PRO_USER)
    assert len(writer.get_writer()) == 1
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child_client = configcat_segment.get_client()
            checks = [
                child_client is not parent_client,
                len(writer.get_writer()) == 0,
                child_client.get_value("maxItems", 0, User("u", custom={"plan": "pro"})) == 50,
                len(writer.get_writer()) == 1,
            ]
            code = 0 if all(checks) else 10 + checks.index(False)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert configcat_segment.get_client() is parent_client
    assert len(writer.get_writer()) == 1


def wait_for_exit(pid: int, timeout: float) -> int | None:
    """The child's exit code; None (and the child killed) if it is still running at
    ``timeout``, a safety net for a child that hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@forking
def test_a_child_forked_while_another_thread_holds_the_hooks_locks_does_not_hang():
    """A lock held by a parent's thread at fork() is held for good in the child, unless the
    child gets a new one: the dedup memory's and the failure log's are taken by the hook."""
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, PRO_USER)
    locks = [recorder.dedup._lock, recorder._failure_log._lock]
    holding, release = threading.Event(), threading.Event()

    def hold_the_locks() -> None:
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_the_locks)
    holder.start()
    try:
        assert holding.wait(30)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child_client = configcat_segment.get_client()
                child_client.get_value("maxItems", 0, User("u-child"))  # first seen
                child_client.get_value("noSuchFlag", 0, User("u-child"))  # failed, logged
                code = 0 if len(writer.get_writer()) == 1 else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join()
    assert wait_for_exit(pid, timeout=30) == 0, "the child hung on a lock held at fork()"
