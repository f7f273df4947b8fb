"""The writer's CPU per message: recorded evaluations turned into stored events.

    .venv/bin/python benchmarks/writer_cpu.py [--batch 450] [--reps 9]
        [--postgres postgres://postgres@127.0.0.1:5432/cs_bench_writer]

The evaluations are those of ``benchmarks/host_cost.py``'s workload (10,000 Zipf draws,
1,000 users, 20 flags), recorded by the real SDK and hook with the writer thread off.
Each repetition writes them, ``--batch`` at a time (about what the writer thread takes
per round in ``host_cost.py``), into an emptied events table: ``store.write``, which
builds the messages (``_build``) and inserts them. The table gives the median CPU
(``time.process_time()``) per message written, for building alone and for the whole
write. To compare with another tree, copy this script into its export and run it there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluations import USERS, make_user, write_config, zipf_draws  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=450)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (its public schema is emptied)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cs-writer-"))
    config = workdir / "config_v6.json"
    write_config(config)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="benchmarks.host_cost_settings",
        HOST_COST_CONFIG=str(config),
        DATABASE_URL=args.postgres or f"sqlite:///{workdir / 'writer.sqlite3'}",
    )
    if args.postgres:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as connection:
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import configcat_segment
    from configcat_segment.evaluations import store
    from configcat_segment.evaluations.buffer import get_writer
    from configcat_segment.models import Event, SegmentConnection

    SegmentConnection.objects.create(
        name="writer cpu", write_key="k", region="custom", custom_endpoint="http://127.0.0.1:9"
    )
    get_writer().allow_background(False)  # keep everything buffered: only flush() writes
    client = configcat_segment.get_client()
    users = [make_user(f"user-{n}", n) for n in range(USERS)]
    for user, flag in zipf_draws(args.evaluations):
        client.get_value(f"flag{flag:02d}", None, users[user])
    evaluations = list(get_writer()._buffer)
    get_writer()._buffer.clear()
    connections = list(SegmentConnection.objects.forwarding_evaluations())
    batches = [
        evaluations[start : start + args.batch] for start in range(0, len(evaluations), args.batch)
    ]

    build, write, messages = [], [], 0
    for _ in range(args.reps):
        Event.objects.all().delete()
        start = time.process_time()
        for batch in batches:
            store._build(batch, connections)
        build.append(time.process_time() - start)
        Event.objects.all().delete()
        start = time.process_time()
        messages = sum(store.write(batch).events for batch in batches)
        write.append(time.process_time() - start)

    print(f"{len(evaluations):,} evaluations recorded, {messages:,} messages, batches of")
    print(f"{args.batch}, median of {args.reps} (µs of CPU per message):")
    print("| | build | write (build + insert) |")
    print("|---|---:|---:|")
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"| {database} | {statistics.median(build) * 1e6 / messages:.1f} "
        f"| {statistics.median(write) * 1e6 / messages:.1f} |"
    )


if __name__ == "__main__":
    main()
