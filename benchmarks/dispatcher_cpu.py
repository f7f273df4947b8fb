"""The dispatcher's own CPU per message delivered, on SQLite and PostgreSQL.

10,000 pending events (as ``benchmarks/delivery.py`` writes them), delivered by
``Dispatcher.deliver_due()`` on the calling thread to the Segment-compatible server running
in this process; the dispatcher thread's CPU time (``time.thread_time``), so the server's
work is not counted. Median of ``--repeat`` runs.

    BENCH_DATABASE_URL=postgres://… python benchmarks/dispatcher_cpu.py [--repeat 3]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    for alias in bench.DATABASES.values():
        call_command("migrate", database=alias, verbosity=0)
    micros: dict[str, list[float]] = {db: [] for db in bench.DATABASES}
    with bench.SegmentServer(write_keys={bench.WRITE_KEY}) as server:
        for repetition in range(options.repeat):
            for db, alias in bench.DATABASES.items():
                payloads = bench.make_messages(EVENTS, f"cpu-{repetition}-{db}-{time.time()}")
                bench.prepare(alias, server.url, payloads)
                bench.SwitchRouter.alias = alias
                started = time.thread_time()
                Dispatcher().deliver_due()
                micros[db].append((time.thread_time() - started) / EVENTS * 1e6)
                connections.close_all()
    bench.SQLITE_PATH.unlink(missing_ok=True)
    print("| database | µs per message delivered (median) | runs |")
    print("|---|---:|---|")
    for db, values in micros.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {db} | {statistics.median(values):.1f} | {runs} |")


if __name__ == "__main__":
    main()
