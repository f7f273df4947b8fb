"""``DELIVERY = "celery"``: a Celery task runs the dispatcher, for projects that run Celery.

Install with ``pip install configcat-segment[celery]``. Every commit that writes events
sends :func:`deliver`, and a beat entry (``configcat_segment.tasks.BEAT_SCHEDULE``) picks
up retries whose time has come.

Any number of these tasks may run at once, on any number of Celery workers: they share
the events the way ``configcat_segment_worker`` processes do. The task is registered here
and imported by :mod:`configcat_segment.tasks`, where Celery's autodiscovery looks.
"""

from __future__ import annotations

from celery import shared_task

from ..runner import Runner
from .base import DeliveryBackend

TASK_NAME = "configcat_segment.deliver"


@shared_task(name=TASK_NAME, ignore_result=True)
def deliver() -> dict[str, int]:
    """Deliver everything due now; returns what was done (counts). (Reconciliation has a
    task of its own, ``configcat_segment.tasks.reconcile``.)"""
    return Runner(periodic=False).run(until_idle=True).as_dict()


class CeleryBackend(DeliveryBackend):
    """Sends the delivery task after every commit that writes events."""

    def on_enqueued(self) -> None:
        deliver.delay()
