"""DELIVERY = "thread": started lazily by the first event, restarted after fork(), flushed
at exit. Run in a real process of its own, as a web server would run it."""

import json

import pytest

from configcat_segment import runners

from .conftest import SAFETY_SECONDS, message_id, statuses, subprocess_env


def start_script(start_process, connection, *, flush_seconds):
    env = subprocess_env(
        DELIVERY="thread", WORKER_POLL_SECONDS=30, SHUTDOWN_FLUSH_SECONDS=flush_seconds
    )
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
    process = start_script(start_process, connection, flush_seconds=30)
    steps, gate = run_until_exit_begins(process, segment_server)

    assert steps["before"] == {"step": "before", "runner": False}  # lazy: nothing yet
    assert steps["first"] == {"step": "first", "delivered": True, "runner": True}
    assert steps["child"] == {"step": "child", "restarted": True, "delivered": True}
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


def test_the_runner_is_wired_by_the_delivery_setting(monkeypatch):
    registered, at_exit, at_fork = [], [], []
    monkeypatch.setattr(runners.outbox, "on_enqueued", registered.append)
    monkeypatch.setattr(runners.atexit, "register", at_exit.append)
    monkeypatch.setattr(runners.os, "register_at_fork", lambda **kw: at_fork.append(kw))
    runners.install("worker")
    assert (registered, at_exit, at_fork) == ([], [], [])
    runners.install("celery")
    assert registered == [runners.wake_celery]
    runners.install("thread")
    assert registered[-1] == runners.wake_thread_runner
    assert at_exit == [runners.stop_thread_runner]
    assert at_fork == [
        {
            "before": runners._background.before_fork,
            "after_in_parent": runners._background.after_fork_in_parent,
            "after_in_child": runners._background.after_fork_in_child,
        }
    ]
