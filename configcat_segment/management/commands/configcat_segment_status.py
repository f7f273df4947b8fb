from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count

from ...models import EvaluationCounter, Event, SegmentConnection
from ...serializers import connection_json
from ..base import JSONCommand


class Command(JSONCommand):
    help = "Print connections and event counts by status as one JSON object."

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = [choice.value for choice in Event.Status]
        counts: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(statuses, 0))
        rows = Event.objects.order_by().values("connection_id", "status").annotate(n=Count("id"))
        for row in rows:
            counts[row["connection_id"]][row["status"]] = row["n"]
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
