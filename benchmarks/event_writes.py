"""What the events table's indexes cost each event written and settled: two schemas compared.

    python benchmarks/event_writes.py                                  # SQLite only
    python benchmarks/event_writes.py --postgres postgres://postgres@127.0.0.1:5432/cs_bench_ew

Two databases per engine, the same code: one migrated up to ``--before`` (default
``0012_eventlog_counts``: the indexes before 0013), one to the newest migration. Each is
filled once with ``--prefill`` events (the 30-day shape of ``event_log.py``), so that the
indexes have a realistic depth. Then, in a fresh process per database, alternating between
the two for ``--rounds`` rounds: evaluations written as the evaluation writer writes them
(``insert_rows``, 500 a transaction, no receipt), then settled as the dispatcher settles
them (one ``UPDATE`` of 500 by primary key: delivered, attempts, next attempt, delivered
at). Microseconds per event, the median of each round's batches, then the median over rounds.

``--without search``, ``--without counts``, ``--without indexes`` (repeatable) add the newest
schema less one part, dropped after the prefill: the search index (trigram GIN indexes on
PostgreSQL, the FTS5 triggers on SQLite), the count triggers, or every ``cs_event_*`` index
but the due index: what each part costs a write and a settlement.

    python benchmarks/event_writes.py --prefill 20000 --without search --without counts \
        --without indexes --postgres postgres://postgres@127.0.0.1:5432/cs_bench_ew
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.event_log import postgres_url  # noqa: E402

BATCH = 500
MEASURES = ("insert", "settle", "insert WAL", "settle WAL")
APP = "configcat_segment"


def without(connection: Any, part: str) -> list[str]:
    """The statements that drop ``part`` of the newest schema (see the module docstring)."""
    from configcat_segment.database import counts, search

    vendor = connection.vendor
    if part == "counts":
        return counts.SETS[vendor].drop()
    if part == "search":
        if vendor == "sqlite":
            return search.SQLITE_TRIGGERS.drop()
        return [f"DROP INDEX IF EXISTS {name}" for name in search.TRIGRAM_INDEXES]
    assert part == "indexes", part
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s",
                ["configcat_segment_event"],
            )
        else:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s",
                ["configcat_segment_event"],
            )
        names = [row[0] for row in cursor.fetchall()]
    return [
        f"DROP INDEX IF EXISTS {name}"
        for name in names
        if name.startswith("cs_event_") and name != "cs_event_conn_due"
    ]


def child(
    url: str, target: str, prefill: int, batches: int, drop: str | None = None
) -> dict[str, float]:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DEBUG": "false",
            "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnop",
            "ALLOWED_HOSTS": "testserver",
            "CONFIGCAT_SEGMENT_DELIVERY": "worker",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from benchmarks.event_log import generate
    from configcat_segment.delivery.rows import build_row, insert_rows
    from configcat_segment.models import Event, SegmentConnection

    names = [APP] if target == "latest" else [APP, target]
    call_command("migrate", *names, verbosity=0, interactive=False)
    if not SegmentConnection.objects.exists():
        ids = [
            SegmentConnection.objects.create(
                name=name, write_key=f"bench_write_key_{name}_0123456789", region="us"
            ).pk
            for name in ("Production", "Staging", "Mobile")
        ]
        keys = [str(pk) if connection.vendor == "postgresql" else pk.hex for pk in ids]
        with transaction.atomic(), connection.cursor() as cursor:
            generate(cursor, connection.vendor, "30d", prefill, keys)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    if drop:
        with connection.cursor() as cursor:
            for statement in without(connection, drop):
                cursor.execute(statement)
    source = SegmentConnection.objects.order_by("name").first()
    assert source is not None
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("PRAGMA wal_autocheckpoint = 0")  # the WAL grows by what is written
    clock = time.process_time if sqlite else time.perf_counter
    written = wal_position(connection)
    insert, settle, insert_wal, settle_wal = [], [], [], []
    for _ in range(batches):
        run = uuid.uuid4().hex
        rows = [
            build_row(
                source.pk,
                {
                    "type": "track",
                    "event": "Feature Flag Evaluated",
                    "userId": f"user-{n % 50_000}",
                    "properties": {"feature_flag_key": f"flag_{n % 200}", "value": True},
                    "messageId": f"w-{run}-{n}",
                },
                flag_key=f"flag_{n % 200}",
            )
            for n in range(BATCH)
        ]
        before, started = written(), clock()
        with transaction.atomic():
            insert_rows(rows, now=timezone.now())
        insert.append((clock() - started) / BATCH * 1e6)
        insert_wal.append((written() - before) / BATCH)
        ids = list(
            Event.objects.filter(message_id__startswith=f"w-{run}-").values_list("pk", flat=True)
        )
        now = timezone.now()
        before, started = written(), clock()
        with transaction.atomic():
            Event.objects.filter(pk__any_of=ids).update(
                status=Event.Status.DELIVERED, attempts=1, next_attempt_at=now, delivered_at=now
            )
        settle.append((clock() - started) / BATCH * 1e6)
        settle_wal.append((written() - before) / BATCH)
    return {
        "insert": statistics.median(insert),
        "settle": statistics.median(settle),
        "insert WAL": statistics.median(insert_wal),
        "settle WAL": statistics.median(settle_wal),
    }


def wal_position(connection: Any) -> Any:
    """A function giving how many bytes of WAL were written so far (SQLite: the size of
    the -wal file, which checkpoints no longer empty; PostgreSQL: the WAL position)."""
    if connection.vendor == "sqlite":
        path = Path(connection.settings_dict["NAME"] + "-wal")
        return lambda: path.stat().st_size

    def position() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            return int(cursor.fetchone()[0])

    return position


def sqlite_url(directory: str, variant: str) -> str:
    return f"sqlite:///{Path(directory) / f'configcat_segment_writes_{variant}.sqlite3'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="0012_eventlog_counts")
    parser.add_argument("--prefill", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=10, help="batches of 500 per process")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sqlite-dir", default=tempfile.gettempdir())
    parser.add_argument("--postgres", help="a PostgreSQL database URL (its name is a prefix)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--without", action="append", default=[], choices=["search", "counts", "indexes"]
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--drop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.target, args.prefill, args.batches, args.drop)))
        return

    variants = {"before": args.before, "after": "latest"}
    variants.update({f"after without {part}": "latest" for part in args.without})
    engines = [("SQLite", lambda v: sqlite_url(args.sqlite_dir, v))]
    if args.postgres:
        engines.append(("PostgreSQL", lambda v: postgres_url(args.postgres, "writes", v)))
    for label, url_for in engines:
        results: dict[str, dict[str, list[float]]] = {
            v: {n: [] for n in MEASURES} for v in variants
        }
        for _ in range(args.rounds):
            for variant, target in variants.items():
                name = variant.replace("after without ", "without_")
                command = [sys.executable, __file__, "--child", url_for(name)]
                command += ["--target", target, "--prefill", str(args.prefill)]
                command += ["--batches", str(args.batches)]
                if variant.startswith("after without "):
                    command += ["--drop", variant.removeprefix("after without ")]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                sys.stderr.write(out.stderr)
                got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
                for name in MEASURES:
                    results[variant][name].append(got[name])
        clock = "CPU µs (this process)" if label == "SQLite" else "µs (wall clock)"
        print(
            f"\n{label}: per event, {clock} and WAL bytes; median over {args.rounds} rounds "
            f"(each the median of {args.batches} batches of {BATCH})\n"
        )
        print("| | " + " | ".join(variants) + " | after / before |")
        print("|---|" + "---:|" * (len(variants) + 1))
        for name in MEASURES:
            medians = {v: statistics.median(results[v][name]) for v in variants}
            cells = " | ".join(f"{m:.1f}" for m in medians.values())
            print(f"| {name} | {cells} | {medians['after'] / medians['before']:.2f} |")


if __name__ == "__main__":
    main()
