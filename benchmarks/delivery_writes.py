"""What delivering costs the database: the writes and the server's CPU per message.

``dispatcher_cpu.py`` counts the dispatcher thread's CPU, which on PostgreSQL leaves out
the server's own work (the events table's indexes, its triggers, the WAL). This delivers
10,000 pending events (as ``benchmarks/delivery.py`` writes them) with
``Dispatcher.deliver_due()`` to the Segment-compatible server in this process and reports,
per message delivered, medians of ``--repeat`` runs:

- ``thread µs``: the dispatcher thread's CPU (with SQLite, the database's work included);
- PostgreSQL only: ``backend µs``, the CPU of the server process serving the dispatcher
  (read from ``/proc``, so the server must run on this machine); ``WAL bytes`` written;
  ``event row writes`` (updates of the events table, from ``pg_stat_user_tables``).

    BENCH_DATABASE_URL=postgres://… python benchmarks/delivery_writes.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.db import connections

import benchmarks.delivery as bench  # sets Django up, its settings
from configcat_segment.delivery.dispatcher import Dispatcher

EVENTS = 10_000
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_state(alias: str) -> tuple[int, int]:
    """WAL position (bytes) and updates of the events table so far."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
            "(SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = %s)",
            ["configcat_segment_event"],
        )
        wal, updated = cursor.fetchone()
    return int(wal), int(updated)


def run(alias: str, url: str, repetition: int) -> dict[str, float]:
    payloads = bench.make_messages(EVENTS, f"writes-{repetition}-{alias}-{time.time()}")
    bench.prepare(alias, url, payloads)
    bench.SwitchRouter.alias = alias
    postgres = connections[alias].vendor == "postgresql"
    result: dict[str, float] = {}
    if postgres:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        wal, updated = server_state(alias)
        backend = process_cpu(pid)
    started = time.thread_time()
    Dispatcher().deliver_due()
    result["thread µs"] = (time.thread_time() - started) / EVENTS * 1e6
    if postgres:
        result["backend µs"] = (process_cpu(pid) - backend) / EVENTS * 1e6
        wal_after, updated_after = server_state(alias)
        result["WAL bytes"] = (wal_after - wal) / EVENTS
        result["event row writes"] = (updated_after - updated) / EVENTS
    connections.close_all()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    for alias in bench.DATABASES.values():
        call_command("migrate", database=alias, verbosity=0)
    results: dict[str, list[dict[str, float]]] = {db: [] for db in bench.DATABASES}
    with bench.SegmentServer(write_keys={bench.WRITE_KEY}) as server:
        for repetition in range(options.repeat):
            for db, alias in bench.DATABASES.items():
                results[db].append(run(alias, server.url, repetition))
    bench.SQLITE_PATH.unlink(missing_ok=True)
    names = list(results["postgres"][0]) if "postgres" in results else ["thread µs"]
    print("| database | " + " | ".join(f"{n} (median)" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for db, runs in results.items():
        cells = []
        for name in names:
            values = [r[name] for r in runs if name in r]
            cells.append(f"{statistics.median(values):.1f}" if values else "-")
        print(f"| {db} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
