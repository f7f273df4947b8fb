from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from ...conf import get_settings
from ...models import EvaluationCounter, Event, EventCount, SegmentConnection
from ...operations import check
from ...serializers import connection_json
from ...settings_validators import MAX_SECONDS
from ..base import JSONCommand, seconds, whole_number


class Command(JSONCommand):
    help = (
        "Print connections and event counts by status as one JSON object. With --check, "
        "print one line and exit 0 (OK), 1 (WARNING) or 2 (CRITICAL), for monitoring."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="One line and an exit code: 0 OK, 1 WARNING, 2 CRITICAL.",
        )
        parser.add_argument(
            "--lag-warning",
            type=seconds(MAX_SECONDS),
            metavar="SECONDS",
            help="Warn when an event has waited longer (default: HEALTH_MAX_LAG_SECONDS, 300).",
        )
        parser.add_argument(
            "--lag-critical",
            type=seconds(MAX_SECONDS),
            metavar="SECONDS",
            help="Critical when an event has waited longer (default: six times --lag-warning).",
        )
        parser.add_argument(
            "--dead-warning",
            type=whole_number(1, 10**9),
            default=1,
            metavar="N",
            help="Warn from this many dead events within --dead-window (default: 1).",
        )
        parser.add_argument(
            "--dead-critical",
            type=whole_number(1, 10**9),
            default=100,
            metavar="N",
            help="Critical from this many dead events within --dead-window (default: 100).",
        )
        parser.add_argument(
            "--dead-window",
            type=seconds(MAX_SECONDS),
            default=86400.0,
            metavar="SECONDS",
            help="Count dead events created this long ago or later (default: 86400, a day).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            self.check_and_exit(options)
        statuses = [choice.value for choice in Event.Status]
        counts: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(statuses, 0))
        # From the event counts the database keeps: a few rows per connection and hour,
        # however many events there are.
        for connection_id, per_status in EventCount.objects.by_connection(statuses).items():
            counts[connection_id].update(per_status)
        totals = dict.fromkeys(statuses, 0)
        for per_connection in counts.values():
            for status, n in per_connection.items():
                totals[status] += n
        self.emit(
            {
                "connections": [
                    connection_json(c, counts=counts[c.pk]) for c in SegmentConnection.objects.all()
                ],
                "events": totals,
                # Evaluations not forwarded, summed over every process: "dropped" when
                # the in-memory buffer was full, "failed" when the SDK could not evaluate.
                # And a cost: "random_anonymous_ids", the anonymous ids drawn at random
                # (no cookie, no session) and sent, each one a tracked user in Segment.
                "evaluations": {
                    EvaluationCounter.DROPPED: 0,
                    EvaluationCounter.FAILED: 0,
                    EvaluationCounter.RANDOM_ANONYMOUS_IDS: 0,
                    **EvaluationCounter.objects.totals(),
                },
            }
        )

    def check_and_exit(self, options: dict[str, Any]) -> None:
        lag_warning = options["lag_warning"] or float(get_settings().HEALTH_MAX_LAG_SECONDS)
        lag_critical = options["lag_critical"] or 6 * lag_warning
        if lag_critical < lag_warning:
            raise CommandError(
                f"--lag-critical ({lag_critical:g}) must not be below --lag-warning "
                f"({lag_warning:g}).",
                returncode=2,
            )
        if options["dead_critical"] < options["dead_warning"]:
            raise CommandError(
                f"--dead-critical ({options['dead_critical']}) must not be below "
                f"--dead-warning ({options['dead_warning']}).",
                returncode=2,
            )
        thresholds = check.Thresholds(
            lag_warning=lag_warning,
            lag_critical=lag_critical,
            dead_warning=options["dead_warning"],
            dead_critical=options["dead_critical"],
            dead_window=options["dead_window"],
        )
        try:
            code, line = check.run(thresholds)
        except DatabaseError as exc:
            code, line = (
                check.CRITICAL,
                f"CRITICAL: cannot read the database ({type(exc).__name__})",
            )
        self.stdout.write(line)
        sys.exit(code)
