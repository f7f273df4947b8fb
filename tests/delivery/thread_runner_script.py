"""A web process's life with DELIVERY = "thread", run by test_thread_runner.py.

Usage: python -m tests.delivery.thread_runner_script CONNECTION_ID

Prints one JSON line per observation. The process starts with a backlog (written by the
test) and writes nothing: its first request must start the runner. It forks a child that
starts with no runner and starts its own with its first events. Then, once the test
writes a line to its stdin, the parent writes the last events and returns at once: what
happens to those is the exit flush's business.
"""

import json
import os
import sys
import time
from wsgiref.util import setup_testing_defaults

import django

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connections  # noqa: E402

from configcat_segment.delivery.backends import get_backend  # noqa: E402
from configcat_segment.models import Event  # noqa: E402
from tests.delivery.conftest import enqueue  # noqa: E402

SAFETY_SECONDS = 60


def say(**observation):
    print(json.dumps(observation), flush=True)


def delivered(ids):
    return Event.objects.filter(pk__in=ids, status="delivered").count() == len(ids)


def wait_delivered(events):
    ids = [e.pk for e in events]
    deadline = time.monotonic() + SAFETY_SECONDS
    while not delivered(ids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def runner_alive():
    backend = get_backend()
    return backend.runner is not None and backend.thread.is_alive()


def serve_a_request(application):
    """What a WSGI server does with a request: call the application, close the answer."""
    environ = {"PATH_INFO": "/no-such-page/"}
    setup_testing_defaults(environ)
    application(environ, lambda status, headers: None).close()


def main(connection_id):
    from configcat_segment.models import SegmentConnection

    connection = SegmentConnection.objects.get(pk=connection_id)
    backlog = list(Event.objects.filter(connection=connection))
    application = get_wsgi_application()
    say(step="before", runner=get_backend().runner is not None)
    serve_a_request(application)
    say(step="request", delivered=wait_delivered(backlog), runner=runner_alive())

    connections.close_all()  # as a pre-forking server does before it forks
    pid = os.fork()
    if pid == 0:
        try:
            at_fork = runner_alive()
            child = enqueue(connection, range(100, 103))
            ok = wait_delivered(child)
            say(step="child", runner_at_fork=at_fork, delivered=ok, runner=runner_alive())
        finally:
            connections.close_all()
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    say(step="forked", child_exit=os.waitstatus_to_exitcode(status), runner=runner_alive())

    sys.stdin.readline()  # the test is ready for the last step
    last = enqueue(connection, range(200, 205))
    say(step="exiting", pending=not delivered([e.pk for e in last]))


if __name__ == "__main__":
    main(sys.argv[1])
