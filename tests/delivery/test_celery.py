"""DELIVERY = "celery": a real Celery worker, consuming from the local Redis, runs the task."""

import uuid

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from configcat_segment import tasks
from configcat_segment.delivery.backends import get_backend
from configcat_segment.delivery.backends.celery import CeleryBackend

from .conftest import SAFETY_SECONDS, enqueue, statuses, wait_for

BROKER = "redis://127.0.0.1:6379/0"


@pytest.fixture
def celery_app():
    app = Celery("configcat_segment_tests", broker=BROKER, set_as_current=True)
    # A queue of our own: other projects on this Redis never see our tasks, nor we theirs.
    app.conf.task_default_queue = f"configcat_segment_test_{uuid.uuid4().hex}"
    app.conf.broker_connection_retry_on_startup = False
    app.conf.worker_hijack_root_logger = False
    app.set_default()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        yield app
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(app.conf.task_default_queue)
    app.close()


@pytest.fixture
def celery_delivery(delivery_settings):
    """DELIVERY = "celery": the process's backend sends the task when events are written."""
    delivery_settings(DELIVERY="celery")
    assert isinstance(get_backend(), CeleryBackend)


@pytest.mark.django_db(transaction=True)
def test_writing_events_sends_the_task_and_a_worker_delivers_them(
    celery_app, celery_delivery, segment_server, connect_to
):
    first, second = connect_to(segment_server), connect_to(segment_server)
    enqueue(first, range(4))  # each commit sends a task
    enqueue(second, range(3))
    wait_for(lambda: statuses() == {"delivered": 7}, SAFETY_SECONDS)
    assert segment_server.duplicates() == {}


@pytest.mark.django_db(transaction=True)
def test_the_beat_schedule_names_the_task_that_delivers_retries(
    celery_app, segment_server, connect_to
):
    connection = connect_to(segment_server)
    enqueue(connection, range(2))  # nothing listens: as if the task had been lost
    entry = tasks.BEAT_SCHEDULE["configcat-segment-deliver"]
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] > 0
    celery_app.send_task(entry["task"])  # what beat does on schedule
    wait_for(lambda: statuses() == {"delivered": 2}, SAFETY_SECONDS)


@pytest.mark.django_db(transaction=True)
def test_the_task_reports_what_it_did(segment_server, connect_to):
    connection = connect_to(segment_server)
    enqueue(connection, range(3))
    report = tasks.deliver.apply().get()
    assert (report["delivered"], report["claimed"]) == (3, 3)
