"""The admin's "Send test event": one ``identify`` and one ``track`` to a connection's endpoint.

Sent through the same transport as real delivery (``segment.transport.send``: the same
auth, gzip, timeout and user agent), in one ``/v1/batch`` request, and recorded in the
event log as any event is: written first, not due before the end of a lease (its
``next_attempt_at``, so no dispatcher sends them meanwhile, and if this process dies they
are delivered later with the same messageId), then settled ``delivered``, or ``dead``
(unless a dispatcher claimed them after all, the request having outlasted the lease)
with Segment's answer as the error (a test is never retried). The track is "ConfigCat
Segment Test" and both are from the test user :data:`TEST_USER_ID`, so they are easy to
find, and to tell apart, in Segment's debugger and in the event log. They send no signal
(``event_delivered``, ``event_dead``) and leave the connection's health alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..conf import get_settings
from ..delivery.outbox import build_event
from ..models import Event, EventClaim, SegmentConnection
from ..segment import payloads, transport
from .advice import SUCCESS, Advice, advise

TEST_EVENT = "ConfigCat Segment Test"
TEST_USER_ID = "configcat-segment-test-user"
TEST_TRAITS = {
    "name": "ConfigCat Segment test user",
    "configcat_segment_test": True,
}
NOT_RETRIED = "Test event, not retried. "
_BODY_CHARS = 2000


@dataclass(frozen=True)
class ProbeResult:
    connection: SegmentConnection
    endpoint: str
    status: int | None
    body: str  # the start of the answer's body
    error: str  # the transport's description of a failure
    seconds: float
    advice: Advice
    events: list[Event]

    @property
    def ok(self) -> bool:
        return self.advice.level == SUCCESS

    @property
    def milliseconds(self) -> int:
        return round(self.seconds * 1000)

    def summary(self) -> str:
        """One line for the admin's history (``LogEntry``)."""
        answer = f"{self.status}" if self.status is not None else "no answer"
        return f"Sent test events: {answer} in {self.milliseconds} ms. {self.advice.headline}"


def build_messages(connection: SegmentConnection, now: dt.datetime) -> list[dict[str, Any]]:
    """The test ``identify`` and ``track``, with new messageIds. Pure."""
    context = {"configcat_segment_test": True}
    identify = payloads.identify(
        traits=TEST_TRAITS,
        timestamp=now,
        message_id=payloads.random_message_id(),
        user_id=TEST_USER_ID,
        context=context,
    )
    track = payloads.track(
        event=TEST_EVENT,
        properties={
            "test": True,
            "connection": connection.name,
            "note": "Sent by “Send test event” in the Django admin to check this source's "
            "write key and region; safe to ignore.",
        },
        timestamp=now,
        message_id=payloads.random_message_id(),
        user_id=TEST_USER_ID,
        context=context,
    )
    return [identify, track]


def send_test_events(
    connection: SegmentConnection,
    *,
    send: Callable[..., transport.Answer] = transport.send,
    clock: Callable[[], dt.datetime] = timezone.now,
    timer: Callable[[], float] = time.monotonic,
) -> ProbeResult:
    """Send, record and explain one test ``identify`` and ``track`` for ``connection``."""
    settings = get_settings()
    now = clock()
    lease_until = now + dt.timedelta(seconds=settings.LEASE_SECONDS)
    events = [
        build_event(connection, message, now=now) for message in build_messages(connection, now)
    ]
    for event in events:
        event.attempts, event.next_attempt_at = 1, lease_until
    events = Event.objects.bulk_create(events)
    endpoint = connection.endpoint
    started = timer()
    answer = send(
        [event.payload for event in events],
        endpoint=endpoint,
        write_key=connection.write_key,
        sent_at=payloads.isoformat(clock()),
        gzip=settings.GZIP,
        timeout=settings.HTTP_TIMEOUT_SECONDS,
    )
    seconds = max(0.0, timer() - started)
    advice = advise(
        answer.status,
        answer.error,
        region=connection.region,
        endpoint=endpoint,
        timeout=settings.HTTP_TIMEOUT_SECONDS,
        event=TEST_EVENT,
    )
    # Still ours: neither claimed nor settled by a dispatcher (settling adds to attempts),
    # which could happen only if the request outlasted the lease (its timeout is far
    # shorter); that dispatcher's outcome is the one recorded then.
    held = Event.objects.filter(
        pk__in=[e.pk for e in events], next_attempt_at=lease_until, attempts=1
    ).exclude(Exists(EventClaim.objects.filter(event_id=OuterRef("pk"))))
    if answer.status is not None and 200 <= answer.status < 300:
        held.update(status=Event.Status.DELIVERED, delivered_at=clock(), last_error="")
    else:
        held.update(
            status=Event.Status.DEAD,
            last_error=NOT_RETRIED + (answer.error or f"Segment answered {answer.status}."),
        )
    return ProbeResult(
        connection=connection,
        endpoint=endpoint,
        status=answer.status,
        body=answer.body[:_BODY_CHARS],
        error=answer.error,
        seconds=seconds,
        advice=advice,
        events=list(Event.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")),
    )
