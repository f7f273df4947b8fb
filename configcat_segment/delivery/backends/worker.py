"""``DELIVERY = "worker"``: nothing delivers in the web process.

``manage.py configcat_segment_worker`` processes (any number, on any number of machines)
run a :class:`~configcat_segment.delivery.runner.Runner` in their main thread and deliver
what every process writes.
"""

from __future__ import annotations

from .base import DeliveryBackend


class WorkerBackend(DeliveryBackend):
    """Delivers nothing in this process: the events wait for a worker."""
