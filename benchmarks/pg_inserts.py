"""How the outbox writes to PostgreSQL: three ways compared, CPU per row on both sides.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_main_bench \\
        python benchmarks/pg_inserts.py [--rows 2000] [--rounds 7]

Evaluation rows (``build_row``, as the evaluation writer makes them) are written into the
migrated events table (every index, the search indexes, the count triggers), 500 per
transaction, by ``insert_rows``'s three ways on PostgreSQL:

- ``each, client-bound``: one single-row statement per row (``executemany``) with
  Django's default client-side binding: every row a new statement text;
- ``each, server-bound``: the same statement with its parameters sent apart
  (``database/cursors.py``): what ``insert_rows`` does under ``COPY_FROM`` rows;
- ``COPY``: ``COPY`` into the session's staging table, then one ``INSERT … SELECT``
  (``database/staging.py``): what ``insert_rows`` does from ``COPY_FROM`` rows on.

For each: the CPU of this process (``time.process_time()``) and of the PostgreSQL backend
serving it (``/proc``, 10 ms ticks: hence many rows per round), per row; rounds
interleaved, medians printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from benchmarks.delivery import DATABASES, WRITE_KEY, SwitchRouter, make_messages, process_cpu
from configcat_segment.delivery import rows as rows_module
from configcat_segment.models import Event, SegmentConnection

ALIAS = DATABASES["postgres"]
CHUNK = 500


def backend_cpu() -> float:
    """CPU seconds of the backend serving this process's connection."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return process_cpu(Path(f"/proc/{pid}/stat").read_text())


def client_bound(connection):
    return connection.cursor()


WAYS = {
    "each, client-bound": (10**9, client_bound),
    "each, server-bound": (10**9, rows_module.server_bound_cursor),
    "COPY": (1, rows_module.server_bound_cursor),
}


def one_round(way: str, connection_id, count: int, tag: str) -> tuple[float, float]:
    rows_module.COPY_FROM, rows_module.server_bound_cursor = WAYS[way]
    payloads = make_messages(count, tag)
    rows = [
        rows_module.build_row(connection_id, p, flag_key=p["properties"]["feature_flag_key"])
        for p in payloads
    ]
    backend, process = backend_cpu(), time.process_time()
    for start in range(0, count, CHUNK):
        with transaction.atomic(using=ALIAS):
            written = rows_module.insert_rows(rows[start : start + CHUNK], now=timezone.now())
            assert written == len(rows[start : start + CHUNK]), written
    process, backend = time.process_time() - process, backend_cpu() - backend
    return process * 1e6 / count, backend * 1e6 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()

    SwitchRouter.alias = ALIAS
    call_command("migrate", database=ALIAS, verbosity=0)
    Event.objects.using(ALIAS).all().delete()
    connection, _ = SegmentConnection.objects.using(ALIAS).update_or_create(
        name="Benchmark",
        defaults={"write_key": WRITE_KEY, "region": "custom", "custom_endpoint": "http://x"},
    )
    results: dict[str, list[tuple[float, float]]] = {way: [] for way in WAYS}
    for n in range(options.rounds):
        for way in WAYS:
            results[way].append(one_round(way, connection.pk, options.rows, f"{way}-{n}"))
    Event.objects.using(ALIAS).all().delete()

    print(
        f"\n{options.rows:,} rows a round, {CHUNK} a transaction, {options.rounds} rounds, "
        f"Python {sys.version.split()[0]}; µs of CPU per row (medians)\n"
    )
    print("| way | this process | PostgreSQL | both |")
    print("|---|---:|---:|---:|")
    for way, runs in results.items():
        process = statistics.median(p for p, _ in runs)
        backend = statistics.median(b for _, b in runs)
        print(f"| {way} | {process:.1f} | {backend:.0f} | {process + backend:.0f} |")


if __name__ == "__main__":
    main()
