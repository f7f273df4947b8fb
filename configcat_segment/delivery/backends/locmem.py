"""``DELIVERY = "locmem"``: delivery into a list in memory, for a project's test suite.

Like Django's locmem email backend (``django.core.mail.outbox``): nothing leaves the
process. When a transaction that writes events commits, the real dispatcher delivers them
at once, in the same thread, and its request to Segment appends the messages to
:data:`outbox` instead. The events are marked delivered as by a real delivery (status,
``delivered_at``, the ``event_delivered`` signal), so a test can assert what a view sent
without a server. Evaluations are written neither by a background thread nor at exit:
they stay buffered until ``configcat_segment.flush()``.

Read the outbox through :mod:`configcat_segment.testing`, whose ``sent()`` also writes
the evaluations still buffered and delivers what the test's transaction holds (inside a
``TestCase``, on-commit work waits for a commit that never comes).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ...segment.transport import Answer
from ..dispatcher import Dispatcher
from ..report import Report
from .base import DeliveryBackend

# The messages "sent" to Segment, oldest first, as dicts: what Segment would have received.
outbox: list[dict[str, Any]] = []
_lock = threading.Lock()


def send_to_outbox(
    messages: Sequence[Mapping[str, Any]],
    *,
    endpoint: str,
    write_key: str,
    sent_at: str,
    gzip: bool,
    timeout: float,
) -> Answer:
    """The dispatcher's sender: "Segment" accepts every message, into :data:`outbox`."""
    with _lock:
        outbox.extend(dict(message) for message in messages)
    return Answer(200)


def clear_outbox() -> None:
    """Forget what was sent."""
    with _lock:
        outbox.clear()


class LocmemBackend(DeliveryBackend):
    """Delivers synchronously into :data:`outbox` whenever events are written."""

    flushes_evaluations = False

    def on_enqueued(self) -> None:
        self.deliver()

    def deliver(self) -> Report:
        """Deliver everything due now into :data:`outbox`; returns what was done."""
        return Dispatcher(send=send_to_outbox).deliver_due()
