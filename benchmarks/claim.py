"""The dispatcher's claim query on SQLite with a large backlog: statuses as parameters vs
written into the SQL (the ``in_constants`` lookup that ``Event.objects.due()`` uses).

A temporary SQLite file gets ``--events`` due events on one connection; both forms of the
claim's ``SELECT`` (500 rows, in ``next_attempt_at`` order, payloads included) run
interleaved ``--repeat`` times. Prints the plan SQLite chose for each and the medians.

    python benchmarks/claim.py [--events 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = Path(tempfile.mkdtemp()) / "claim.sqlite3"
os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
os.environ["DATABASE_URL"] = f"sqlite:///{DATABASE}"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import QuerySet  # noqa: E402
from django.utils import timezone  # noqa: E402

from configcat_segment.models import Event, SegmentConnection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    source = SegmentConnection.objects.create(
        name="Benchmark", write_key="wk_benchmark_0123456789", region="us"
    )
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(
                connection=source,
                type="track",
                event_name="Feature Flag Evaluated",
                message_id=f"m{n}",
                payload={"type": "track", "messageId": f"m{n}", "properties": {"v": "x" * 400}},
                next_attempt_at=now - dt.timedelta(seconds=n % 3600),
                queued_at=now,
                created_at=now,
            )
            for n in range(options.events)
        ],
        batch_size=2000,
    )
    later = now + dt.timedelta(minutes=1)
    variants = {
        "statuses as parameters": Event.objects.filter(
            status__in=["pending", "failed"], next_attempt_at__lte=later
        ),
        "statuses in the SQL (due())": Event.objects.due(later),
    }
    claims = {
        name: queryset.filter(connection=source)
        .order_by("next_attempt_at")
        .values_list("pk", "payload", "attempts", "queued_at")[:500]
        for name, queryset in variants.items()
    }
    timings: dict[str, list[float]] = {name: [] for name in claims}
    for _ in range(options.repeat):
        for name, claim in claims.items():
            start = time.perf_counter()
            list(claim._chain())  # a fresh queryset: no result cache
            timings[name].append(time.perf_counter() - start)
    base = statistics.median(timings["statuses as parameters"])
    version = connection.Database.sqlite_version
    print(f"\n{options.events:,} due events on one connection, SQLite {version}")
    print(f"{options.repeat} interleaved runs of one claim of 500\n")
    print("| claim | plan | ms (median) | vs parameters |")
    print("|---|---|---:|---:|")
    for name, claim in claims.items():
        median = statistics.median(timings[name])
        print(f"| {name} | {plan(claim)} | {median * 1000:.1f} | {median / base:.2f}x |")
    DATABASE.unlink()


def plan(claim: QuerySet[Event]) -> str:
    sql, params = claim.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "; ".join(str(row[-1]) for row in cursor.fetchall())


if __name__ == "__main__":
    main()
