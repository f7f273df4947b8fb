"""DELIVERY = "thread": started lazily by the first request or event, started afresh by a
fork()ed child, flushed at exit. Run in real processes, as a web server would run it."""

import json

import pytest

from configcat_segment import lifecycle
from configcat_segment.delivery import backends
from configcat_segment.delivery.backends import get_backend
from configcat_segment.delivery.backends.base import DeliveryBackend
from configcat_segment.delivery.backends.celery import CeleryBackend
from configcat_segment.delivery.backends.thread import ThreadBackend
from configcat_segment.delivery.backends.worker import WorkerBackend

from .conftest import SAFETY_SECONDS, enqueue, message_id, statuses, subprocess_env


def thread_settings(**overrides):
    return subprocess_env(DELIVERY="thread", WORKER_POLL_SECONDS=30, **overrides)


def start_script(start_process, connection, *, flush_seconds):
    env = thread_settings(SHUTDOWN_FLUSH_SECONDS=flush_seconds)
    return start_process("-m", "tests.delivery.thread_runner_script", str(connection.pk), env=env)


def run_until_exit_begins(process, segment_server):
    """Read the script's observations up to its last step; hold that step's request."""
    steps = {}
    for line in process.stdout:
        step = json.loads(line)
        steps[step["step"]] = step
        if step["step"] == "forked":
            gate = segment_server.hold()
            process.stdin.write("go\n")
            process.stdin.flush()
        if step["step"] == "exiting":
            return steps, gate
    raise AssertionError(process.stderr.read())


@pytest.mark.django_db(transaction=True)
def test_the_thread_runner_through_a_process_s_life(segment_server, connect_to, start_process):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))  # the backlog of a process that stopped before delivering
    process = start_script(start_process, connection, flush_seconds=30)
    steps, gate = run_until_exit_begins(process, segment_server)

    assert steps["before"] == {"step": "before", "runner": False}  # lazy: nothing yet
    assert steps["request"] == {"step": "request", "delivered": True, "runner": True}
    assert steps["child"] == {
        "step": "child",
        "runner_at_fork": False,  # the child may fork again, or never serve
        "delivered": True,
        "runner": True,
    }
    assert steps["forked"] == {"step": "forked", "child_exit": 0, "runner": True}
    assert steps["exiting"] == {"step": "exiting", "pending": True}

    # The main module has returned; Segment still holds the last request. Only the exit
    # flush, waiting for the runner, lets its outcome be recorded.
    assert gate.arrived.wait(SAFETY_SECONDS)
    assert process.poll() is None
    gate.release()
    assert process.wait(SAFETY_SECONDS) == 0, process.stderr.read()
    expected = {message_id(connection, n) for n in [0, 1, 2, 100, 101, 102, *range(200, 205)]}
    assert set(segment_server.accepted_ids) == expected
    assert segment_server.duplicates() == {}
    assert statuses() == {"delivered": 11}


@pytest.mark.django_db(transaction=True)
def test_the_exit_flush_is_bounded(segment_server, connect_to, start_process):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    process = start_script(start_process, connection, flush_seconds=0.5)
    _, gate = run_until_exit_begins(process, segment_server)
    try:
        assert gate.arrived.wait(SAFETY_SECONDS)
        # Segment never answers: the process exits anyway, after SHUTDOWN_FLUSH_SECONDS.
        assert process.wait(SAFETY_SECONDS) == 0
    finally:
        gate.release()
    # Nothing lost: the claimed events come back when their lease runs out.
    assert statuses() == {"delivered": 6, "pending": 5}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writer_first", [False, True], ids=["app-first", "writer-first"])
def test_evaluations_written_at_exit_are_delivered_at_exit(
    segment_server, connect_to, start_process, writer_first
):
    """The runner never started: the exit flush delivers in the exiting thread, after the
    writer's, whichever of the two was imported first."""
    connect_to(segment_server)
    args = ["--writer-first"] if writer_first else []
    process = start_process("-m", "tests.delivery.exit_flush_script", *args, env=thread_settings())
    out, err = process.communicate(timeout=SAFETY_SECONDS)
    assert process.returncode == 0, err
    assert json.loads(out) == {"runner": False, "buffered": 3}
    assert statuses() == {"delivered": 3}
    assert len(segment_server.accepted_ids) == 3
    assert err == ""  # no warning, no traceback


@pytest.mark.django_db(transaction=True)
def test_a_process_that_neither_writes_nor_serves_leaves_the_backlog_alone(
    segment_server, connect_to, start_process
):
    """``manage.py`` commands (check, migrate, collectstatic) exit without delivering."""
    enqueue(connect_to(segment_server), range(2))
    process = start_process("manage.py", "check", env=thread_settings())
    _, err = process.communicate(timeout=SAFETY_SECONDS)
    assert process.returncode == 0, err
    assert statuses() == {"pending": 2}
    assert segment_server.requests == []


def test_the_lifecycle_installs_every_process_hook_once(monkeypatch):
    on_enqueued, on_request, on_settings, at_exit, at_fork = [], [], [], [], []
    monkeypatch.setattr(lifecycle.outbox, "on_enqueued", on_enqueued.append)
    monkeypatch.setattr(
        lifecycle.request_started, "connect", lambda receiver, **kw: on_request.append(receiver)
    )
    monkeypatch.setattr(
        lifecycle.setting_changed, "connect", lambda receiver, **kw: on_settings.append(receiver)
    )
    monkeypatch.setattr(lifecycle.atexit, "register", at_exit.append)
    monkeypatch.setattr(lifecycle.os, "register_at_fork", lambda **kw: at_fork.append(kw))
    monkeypatch.setattr(lifecycle, "_registered", False)
    lifecycle.install()
    lifecycle.install()  # ready() again: receivers are connected by dispatch_uid, idempotent
    assert set(on_enqueued) == {lifecycle.on_enqueued}
    assert set(on_request) == {lifecycle.on_request_started}
    assert set(on_settings) == {lifecycle.settings_changed}
    # One exit hook: it writes the evaluations, then delivers (see the next test).
    assert at_exit == [lifecycle.at_exit]
    assert at_fork == [
        {
            "before": lifecycle.before_fork,
            "after_in_parent": lifecycle.after_fork_in_parent,
            "after_in_child": lifecycle.after_fork_in_child,
        }
    ]


def test_at_exit_the_evaluations_are_written_then_delivered(monkeypatch):
    calls = []

    class Recording(DeliveryBackend):
        def prepare_exit(self):
            calls.append("backend starts nothing more")

        def deliver_at_exit(self):
            calls.append("backend delivers")

    monkeypatch.setattr(backends, "_backend", Recording())
    monkeypatch.setattr(
        lifecycle.buffer, "flush_at_exit", lambda: calls.append("evaluations written")
    )
    monkeypatch.setattr(lifecycle.client, "close", lambda: calls.append("client closed"))
    lifecycle.at_exit()
    assert calls == [
        "backend starts nothing more",
        "evaluations written",
        "backend delivers",
        "client closed",
    ]


HOOKS = [
    "on_enqueued",
    "on_request_started",
    "prepare_exit",
    "deliver_at_exit",
    "before_fork",
    "after_fork_in_parent",
    "after_fork_in_child",
]


def overridden(backend):
    """The hooks ``backend`` does something on (the base class does nothing on any)."""
    return [h for h in HOOKS if getattr(type(backend), h) is not getattr(DeliveryBackend, h)]


def test_the_backend_is_chosen_by_the_delivery_setting(delivery_settings):
    delivery_settings(DELIVERY="worker")
    assert type(get_backend()) is WorkerBackend
    assert overridden(get_backend()) == []  # nothing runs in this process
    delivery_settings(DELIVERY="celery")
    assert type(get_backend()) is CeleryBackend
    assert overridden(get_backend()) == ["on_enqueued"]  # sends the task
    delivery_settings(DELIVERY="thread")
    assert type(get_backend()) is ThreadBackend
    # Started by an event or a request, stopped at exit, held back by a fork.
    assert overridden(get_backend()) == HOOKS
