"""Celery: the app's tasks, where Celery's autodiscovery looks for them.

Install with ``pip install configcat-segment[celery]``. With
``CONFIGCAT_SEGMENT["DELIVERY"] = "celery"``, every commit that writes events sends
:func:`deliver` (defined with the backend, in
:mod:`configcat_segment.delivery.backends.celery`); :func:`reconcile` reads ConfigCat's
audit log for connections whose interval has passed. Add the beat entries that run both
on schedule (retries become due without anything being written)::

    from configcat_segment.tasks import BEAT_SCHEDULE

    app.conf.beat_schedule = {**app.conf.beat_schedule, **BEAT_SCHEDULE}

Any number of these tasks may run at once, on any number of Celery workers: they share
the events the way ``configcat_segment_worker`` processes do.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .delivery.backends.celery import TASK_NAME, deliver
from .reconcile import run_due

__all__ = ["BEAT_SCHEDULE", "RECONCILE_TASK_NAME", "TASK_NAME", "deliver", "reconcile"]

RECONCILE_TASK_NAME = "configcat_segment.reconcile"

# Retries become due without anything being written, so something must look for them;
# reconciliation looks each minute for connections whose interval has passed.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "configcat-segment-deliver": {"task": TASK_NAME, "schedule": 10.0},
    "configcat-segment-reconcile": {"task": RECONCILE_TASK_NAME, "schedule": 60.0},
}


@shared_task(name=RECONCILE_TASK_NAME, ignore_result=True)
def reconcile() -> dict[str, int]:
    """Reconcile the connections whose interval has passed with ConfigCat's audit log
    (any number at once: each connection is read by one of them)."""
    outcomes = run_due()
    return {
        "connections": len(outcomes),
        "forwarded": sum(o.forwarded for o in outcomes),
        "errors": sum(1 for o in outcomes if o.error),
    }
