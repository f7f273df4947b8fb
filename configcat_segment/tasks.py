"""Celery: the task that runs the dispatcher, where Celery's autodiscovery looks for it.

See :mod:`configcat_segment.delivery.backends.celery`, which defines it, and
``docs/deployment.md``. Set ``CONFIGCAT_SEGMENT["DELIVERY"] = "celery"`` and add the beat
entry for retries::

    from configcat_segment.tasks import BEAT_SCHEDULE

    app.conf.beat_schedule = {**app.conf.beat_schedule, **BEAT_SCHEDULE}
"""

from __future__ import annotations

from .delivery.backends.celery import BEAT_SCHEDULE, TASK_NAME, deliver

__all__ = ["BEAT_SCHEDULE", "TASK_NAME", "deliver"]
