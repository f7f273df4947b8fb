from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db import connections, router
from django.utils import timezone

from ...delivery import outbox
from ...models import Event, EventClaim
from ..base import JSONCommand, get_connection, whole_number


def largest_event_id() -> int:
    """The largest primary key the events table can hold."""
    operations = connections[router.db_for_write(Event)].ops
    _, largest = operations.integer_field_range(Event._meta.pk.get_internal_type())
    return int(largest)


class Command(JSONCommand):
    help = (
        "Put events back in the queue, to be sent now with the same messageId: dead ones "
        "by default; failed ones are retried at once; delivered ones are replayed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status",
            action="append",
            choices=[s.value for s in Event.REQUEUABLE],
            help="Which events (repeat for several). Default: dead.",
        )
        parser.add_argument(
            "--connection", metavar="ID_OR_NAME", help="Only this connection's events."
        )
        parser.add_argument(
            "--event",
            action="append",
            type=whole_number(1, largest_event_id()),
            metavar="ID",
            help="Only these events.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the events; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = options["status"] or [Event.Status.DEAD]
        events = Event.objects.filter(status__in=statuses)
        if options["connection"] is not None:
            events = events.filter(connection=get_connection(options["connection"]))
        if options["event"] is not None:
            events = events.filter(pk__in=options["event"])
        if options["dry_run"]:
            # As requeue() counts: not the events being sent right now (a live claim).
            waiting = events.exclude(EventClaim.holds(timezone.now()))
            self.emit({"would_requeue": waiting.count(), "dry_run": True})
        else:
            self.emit({"requeued": outbox.requeue(events)})
