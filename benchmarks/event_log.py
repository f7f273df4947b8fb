"""The event log at a million events: server-side render times, beside the admin changelist.

    python benchmarks/event_log.py                       # SQLite (a temporary file)
    python benchmarks/event_log.py --postgres postgres://postgres@127.0.0.1:5432/cs_bench

Each database runs in its own process (Django is configured once per process). The
events are bulk-generated once per database (SQLite: executemany in one transaction;
PostgreSQL: INSERT ... SELECT generate_series) and kept for the next run. Every page is
rendered through the real view by Django's test client, signed in as a superuser; the
cases are interleaved in each repetition, and the table shows medians in milliseconds.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 150
NEXT_LINK = re.compile(r'href="([^"]+)" rel="next"')

FLAGS = 200
USERS = 50_000
DAYS = 30


def status_of(i: int) -> str:
    """96.5 % delivered, 0.5 % pending, 0.5 % failed, 2.5 % dead."""
    slot = i % 200
    if slot < 1:
        return "pending"
    if slot < 2:
        return "failed"
    if slot < 7:
        return "dead"
    return "delivered"


# -- data ---------------------------------------------------------------------------------


def generate_sqlite(cursor: Any, connection_ids: list[str], count: int, now: float) -> None:
    import datetime as dt

    step = DAYS * 86400 / count
    errors = {"failed": "HTTP 503 Service Unavailable", "dead": "HTTP 400: invalid message"}
    kinds = [("track", "Feature Flag Changed")] + [("track", "Feature Flag Evaluated")] * 7
    kinds += [("identify", "")] * 2

    def row(i: int) -> tuple[Any, ...]:
        created = dt.datetime.fromtimestamp(now - (count - i) * step, dt.UTC)
        naive = created.replace(tzinfo=None)  # how Django stores UTC times in SQLite
        status = status_of(i)
        kind, name = kinds[i % 10]
        flag, user = f"flag_{i % FLAGS}", f"user-{i % USERS}"
        payload = {
            "type": kind,
            **({"event": name} if name else {}),
            "userId": user,
            "properties": {"feature_flag_key": flag, "value": i % 2 == 0, "variation_id": "v1"},
            "timestamp": created.isoformat(),
            "messageId": f"bench-{i}",
            "context": {"integration": {"name": "configcat", "version": "1.0.0"}},
        }
        stamp = naive.isoformat(sep=" ")
        return (
            i,
            connection_ids[i % len(connection_ids)],
            kind,
            name,
            flag,
            user,
            f"bench-{i}",
            json.dumps(payload),
            status,
            {"delivered": 1, "failed": 3, "dead": 20}.get(status, 0),
            stamp,
            errors.get(status, ""),
            stamp,
            stamp,
            (naive + dt.timedelta(seconds=1)).isoformat(sep=" ") if status == "delivered" else None,
        )

    sql = (
        "INSERT INTO configcat_segment_event (id, connection_id, type, event_name, flag_key, "
        "user_id, message_id, payload, status, attempts, next_attempt_at, last_error, "
        "created_at, queued_at, delivered_at) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    chunk = 50_000
    for start in range(1, count + 1, chunk):
        cursor.executemany(sql, [row(i) for i in range(start, min(start + chunk, count + 1))])


# The same rows as generate_sqlite() writes, made by PostgreSQL itself.
POSTGRES_INSERT = """
INSERT INTO configcat_segment_event (id, connection_id, type, event_name, flag_key, user_id,
    message_id, payload, status, attempts, next_attempt_at, last_error, created_at, queued_at,
    delivered_at)
SELECT i, (%(connections)s::uuid[])[1 + i %% %(n_connections)s],
    CASE WHEN i %% 10 >= 8 THEN 'identify' ELSE 'track' END,
    CASE WHEN i %% 10 = 0 THEN 'Feature Flag Changed'
         WHEN i %% 10 < 8 THEN 'Feature Flag Evaluated' ELSE '' END,
    'flag_' || (i %% %(flags)s), 'user-' || (i %% %(users)s), 'bench-' || i,
    jsonb_build_object('type', CASE WHEN i %% 10 >= 8 THEN 'identify' ELSE 'track' END,
        'userId', 'user-' || (i %% %(users)s),
        'properties', jsonb_build_object('feature_flag_key', 'flag_' || (i %% %(flags)s),
            'value', i %% 2 = 0, 'variation_id', 'v1'),
        'timestamp', created, 'messageId', 'bench-' || i,
        'context', jsonb_build_object('integration',
            jsonb_build_object('name', 'configcat', 'version', '1.0.0'))),
    s.status,
    CASE s.status WHEN 'delivered' THEN 1 WHEN 'failed' THEN 3 WHEN 'dead' THEN 20 ELSE 0 END,
    created,
    CASE s.status WHEN 'failed' THEN 'HTTP 503 Service Unavailable'
         WHEN 'dead' THEN 'HTTP 400: invalid message' ELSE '' END,
    created, created,
    CASE WHEN s.status = 'delivered' THEN created + interval '1 second' END
FROM generate_series(1, %(count)s) AS i,
    LATERAL (SELECT to_timestamp(%(now)s - (%(count)s - i) * %(step)s) AS created) AS t,
    LATERAL (SELECT CASE WHEN i %% 200 < 1 THEN 'pending' WHEN i %% 200 < 2 THEN 'failed'
                         WHEN i %% 200 < 7 THEN 'dead' ELSE 'delivered' END AS status) AS s
"""


def generate_postgres(cursor: Any, connection_ids: list[str], count: int, now: float) -> None:
    parameters = {
        "connections": connection_ids,
        "n_connections": len(connection_ids),
        "count": count,
        "now": now,
        "step": DAYS * 86400 / count,
        "flags": FLAGS,
        "users": USERS,
    }
    cursor.execute(POSTGRES_INSERT, parameters)
    sequence = "SELECT setval(pg_get_serial_sequence('configcat_segment_event', 'id'), %s)"
    cursor.execute(sequence, [count])


def prepare(count: int) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from configcat_segment.models import Event, SegmentConnection

    call_command("migrate", verbosity=0, interactive=False)
    if Event.objects.order_by("-pk").values_list("pk", flat=True).first() == count:
        return
    Event.objects.all().delete()
    SegmentConnection.objects.all().delete()
    connections = [
        SegmentConnection.objects.create(
            name=name, write_key=f"bench_write_key_{name}_0123456789", region="us"
        )
        for name in ("Production", "Staging", "Mobile")
    ]
    started = time.perf_counter()
    ids = [str(c.pk) if connection.vendor == "postgresql" else c.pk.hex for c in connections]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            generate_postgres(cursor, ids, count, time.time())
        else:
            generate_sqlite(cursor, ids, count, time.time())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The steady state of a live table: autovacuum (triggered by inserts since
            # PostgreSQL 13) sets the visibility map soon after a bulk load, which lets the
            # overview's counts be index-only scans. Outside a transaction, as VACUUM must be.
            cursor.execute("VACUUM ANALYZE configcat_segment_event")
        else:
            cursor.execute("ANALYZE")
    print(f"generated {count:,} events in {time.perf_counter() - started:.0f} s", file=sys.stderr)


# -- measuring ----------------------------------------------------------------------------


def measure(count: int, runs: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    prepare(count)
    user_model = get_user_model()
    user = user_model.objects.filter(
        username="bench"
    ).first() or user_model.objects.create_superuser(
        "bench", "bench@example.com", "bench-password-0"
    )
    client = Client()
    client.force_login(user)

    # The 50th page, reached as a user would: following "Older" 49 times.
    url = "/configcat-segment/events/"
    for _ in range(49):
        page = client.get(url).content.decode()
        url = "/configcat-segment/events/" + html.unescape(NEXT_LINK.search(page)[1])
    fiftieth = url

    log, admin = "/configcat-segment/events/", "/admin/configcat_segment/event/"
    cases = {
        "event log: first page": log,
        "event log: status dead + one flag key": log + "?status=dead&flag_key=flag_7",
        "event log: 50th page (cursor)": fiftieth,
        "event log: search (substring)": log + "?q=user-4242",
        "JSON API: first page": "/configcat-segment/api/events/",
        "admin changelist: first page": admin,
        "admin changelist: status dead + one flag key": admin + "?status__exact=dead&q=flag_7",
        "admin changelist: 50th page": admin + "?p=49",
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for url in cases.values():  # warm up caches, templates, connections
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    for _ in range(runs):
        for name, url in cases.items():
            started = time.perf_counter()
            response = client.get(url)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            timings[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return {
        "vendor": connection.vendor,
        "medians": {name: statistics.median(values) for name, values in timings.items()},
    }


def child(database_url: str, count: int, runs: int) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DEBUG": "false",
            "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnop",
            "ALLOWED_HOSTS": "testserver",
            "CONFIGCAT_SEGMENT_DELIVERY": "worker",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(json.dumps(measure(count, runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--sqlite", default=str(Path(tempfile.gettempdir()) / "configcat_segment_bench.sqlite3")
    )
    parser.add_argument("--postgres", help="a PostgreSQL database URL (its data is replaced)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.runs)
        return

    databases = [("SQLite", f"sqlite:///{args.sqlite}")]
    if args.postgres:
        databases.append(("PostgreSQL", args.postgres))
    results = {}
    for label, url in databases:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                url,
                "--events",
                str(args.events),
                "--runs",
                str(args.runs),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        sys.stderr.write(out.stderr)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])["medians"]

    names = list(next(iter(results.values())))
    width = max(len(n) for n in names)
    runs = f"median of {args.runs} interleaved runs"
    print(f"{args.events:,} events; {runs}, in ms (target: at most {TARGET_MS} ms)\n")
    header = f"| {'page':<{width}} |" + "".join(f" {label:>10} |" for label in results)
    print(header)
    print(
        "|"
        + "-" * (width + 2)
        + "|"
        + "".join("-" * 12 + ":|" for _ in results).replace("-:|", ":|")
    )
    for name in names:
        print(
            f"| {name:<{width}} |"
            + "".join(f" {results[label][name]:>10.1f} |" for label in results)
        )
    print()
    pairs = [
        ("first page", "event log: first page", "admin changelist: first page"),
        (
            "status dead + one flag key",
            "event log: status dead + one flag key",
            "admin changelist: status dead + one flag key",
        ),
        ("50th page", "event log: 50th page (cursor)", "admin changelist: 50th page"),
    ]
    print(
        "| admin changelist time / event log time |"
        + "".join(f" {label:>10} |" for label in results)
    )
    print("|---|" + "---:|" * len(results))
    for label_, log, admin in pairs:
        print(
            f"| {label_} |"
            + "".join(f" {results[db][admin] / results[db][log]:>9.1f}x |" for db in results)
        )


if __name__ == "__main__":
    main()
