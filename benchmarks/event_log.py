"""The event log with a million events, against the same pages with a thousand.

    python benchmarks/event_log.py                                    # SQLite only
    python benchmarks/event_log.py --postgres postgres://postgres@127.0.0.1:5432/cs_bench_el

Two tables, each at 1,000 and at 1,000,000 events (three connections, 200 flags, 50,000
users):

- ``30d``: spread over the last 30 days, 96.5 % delivered (a healthy installation);
- ``24h``: all written in the last 24 hours, 75 % pending, failed or dead (Segment has been
  down for hours while the site kept evaluating flags: when the page is opened most).

Every table is generated once by the database itself (``INSERT ... SELECT`` over a series;
on PostgreSQL its count changes are then added in, as a live table's writes would have)
and kept for the next run: SQLite files in the temporary directory, PostgreSQL databases
named after the given one (``cs_bench_el_24h_1000000``; their data is replaced). Each page
is rendered through the real view by Django's test client as a signed-in superuser (the
overview and the chart included); the pages are interleaved in each of ``--runs``
repetitions, in a fresh process per table, and the 1,000- and 1,000,000-event processes
alternate for ``--rounds`` rounds. The tables give medians over all runs, in milliseconds,
and the ratio of a million events to a thousand.
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
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 150
TARGET_RATIO = 2.0
SIZES = (1_000, 1_000_000)
NEXT_LINK = re.compile(r'href="([^"]+)" rel="next"')

FLAGS = 200
USERS = 50_000
CONNECTIONS = ("Production", "Staging", "Mobile")

# Per table: how long the events span, and the statuses of each 200 consecutive events, in
# this order: pending, failed, dead, then delivered.
TABLES: dict[str, dict[str, Any]] = {
    "30d": {"seconds": 30 * 86_400, "pending": 1, "failed": 1, "dead": 5},
    "24h": {"seconds": 86_400, "pending": 80, "failed": 50, "dead": 20},
}

LOG, API = "/configcat-segment/events/", "/configcat-segment/api/events/"
CASES = (
    "event log: first page",
    "event log: status dead + one flag key",
    "event log: 50th page (cursor)",
    "event log: search, rare text",
    "event log: search, common text",
    "JSON API: first page",
    "JSON API: status dead + one flag key",
    "JSON API: 50th page (cursor)",
)


def cases(client: Any, count: int) -> dict[str, str]:
    """The URL of each case. The filter's flag is that of the newest dead event, so that it
    matches something at either size; the rare text matches one user's events (see
    :func:`rare_user`)."""
    from configcat_segment.models import Event

    dead = Event.objects.filter(status="dead").order_by("-pk").values_list("flag_key")[:1]
    flagged = f"?status=dead&flag_key={dead.get()[0]}"
    urls = [
        LOG,
        LOG + flagged,
        fiftieth(client, LOG, api=False),
        LOG + f"?q={rare_user(count)}",
        LOG + "?q=flag_1",
        API,
        API + flagged,
        fiftieth(client, API, api=True),
    ]
    return dict(zip(CASES, urls, strict=True))


def rare_user(count: int) -> str:
    """The user of the event two fifths into the table: ``user-57`` with 1,000 events (its 7
    events), ``user-7142`` with a million (its 21 events: the users repeat every 350,000).

    The text matches that user alone: a longer id starting with the same digits would be at
    least ten times larger, past the last user (``user-142`` with 1,000 events,
    ``user-49999`` with a million). (It used to be ``user-57142`` at a million, past the
    last user: a search that matched nothing.)
    """
    users = min(USERS, count // 7 + 1)  # user-0 .. user-{users - 1}
    user = (count * 2 // 5 // 7) % users
    assert user * 10 >= users, "a longer id starting with the same digits would match too"
    return f"user-{user}"


# -- data ---------------------------------------------------------------------------------

# i = 1 .. count; the event i is created (count - i) * step seconds before now. Each user has
# 7 consecutive events; the flags shift by one every 200 events, so that every flag meets
# every status.
STATUS_SQL = """CASE WHEN i % 200 < {pending} THEN 'pending'
    WHEN i % 200 < {pending} + {failed} THEN 'failed'
    WHEN i % 200 < {pending} + {failed} + {dead} THEN 'dead' ELSE 'delivered' END"""

SQLITE_INSERT = """
WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < {count}),
rows AS (
    SELECT i, {status} AS status,
        'flag_' || ((i + i / 200) % {flags}) AS flag, 'user-' || ((i / 7) % {users}) AS user,
        CASE WHEN i % 10 >= 8 THEN 'identify' ELSE 'track' END AS type,
        CASE WHEN i % 10 = 0 THEN 'Feature Flag Changed'
             WHEN i % 10 < 8 THEN 'Feature Flag Evaluated' ELSE '' END AS name,
        {now} - ({count} - i) * {step} AS at
    FROM series
)
INSERT INTO configcat_segment_event (id, connection_id, type, event_name, flag_key, user_id,
    message_id, payload, status, attempts, next_attempt_at, last_error, created_at, queued_at,
    delivered_at)
SELECT i, CASE i % 3 WHEN 0 THEN '{c0}' WHEN 1 THEN '{c1}' ELSE '{c2}' END, type, name,
    flag, user, 'bench-' || i,
    json_object('type', type, 'event', name, 'userId', user,
        'properties', json_object('feature_flag_key', flag,
            'value', json(CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END),
            'variation_id', 'v1'),
        'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', at, 'unixepoch'), 'messageId', 'bench-' || i,
        'context', json_object('integration',
            json_object('name', 'configcat', 'version', '1.0.0'))),
    status,
    CASE status WHEN 'delivered' THEN 1 WHEN 'failed' THEN 3 WHEN 'dead' THEN 20 ELSE 0 END,
    strftime('%Y-%m-%d %H:%M:%f', at + 60, 'unixepoch'),
    CASE status WHEN 'failed' THEN 'HTTP 503 Service Unavailable'
        WHEN 'dead' THEN 'HTTP 400: invalid message' ELSE '' END,
    strftime('%Y-%m-%d %H:%M:%f', at, 'unixepoch'), strftime('%Y-%m-%d %H:%M:%f', at, 'unixepoch'),
    CASE WHEN status = 'delivered' THEN strftime('%Y-%m-%d %H:%M:%f', at + 1, 'unixepoch') END
FROM rows
"""

POSTGRES_INSERT = """
INSERT INTO configcat_segment_event (id, connection_id, type, event_name, flag_key, user_id,
    message_id, payload, status, attempts, next_attempt_at, last_error, created_at, queued_at,
    delivered_at)
SELECT i, (ARRAY['{c0}', '{c1}', '{c2}']::uuid[])[1 + (i + 2) % 3], type, name, flag, usr,
    'bench-' || i,
    jsonb_build_object('type', type, 'event', name, 'userId', usr,
        'properties', jsonb_build_object('feature_flag_key', flag, 'value', i % 2 = 0,
            'variation_id', 'v1'),
        'timestamp', at, 'messageId', 'bench-' || i,
        'context', jsonb_build_object('integration',
            jsonb_build_object('name', 'configcat', 'version', '1.0.0'))),
    status,
    CASE status WHEN 'delivered' THEN 1 WHEN 'failed' THEN 3 WHEN 'dead' THEN 20 ELSE 0 END,
    at + interval '60 seconds',
    CASE status WHEN 'failed' THEN 'HTTP 503 Service Unavailable'
        WHEN 'dead' THEN 'HTTP 400: invalid message' ELSE '' END,
    at, at, CASE WHEN status = 'delivered' THEN at + interval '1 second' END
FROM generate_series(1, {count}) AS i,
    LATERAL (SELECT {status} AS status, 'flag_' || ((i + i / 200) % {flags}) AS flag,
        'user-' || ((i / 7) % {users}) AS usr,
        CASE WHEN i % 10 >= 8 THEN 'identify' ELSE 'track' END AS type,
        CASE WHEN i % 10 = 0 THEN 'Feature Flag Changed'
             WHEN i % 10 < 8 THEN 'Feature Flag Evaluated' ELSE '' END AS name,
        to_timestamp({now} - ({count} - i) * {step}) AS at) AS r
"""


def generate(
    cursor: Any,
    vendor: str,
    table: str,
    count: int,
    connection_ids: list[str],
    *,
    shape: dict[str, Any] | None = None,
    end: float | None = None,
) -> None:
    """``count`` events in the shape of ``table`` (or ``shape``), the newest at ``end`` (now)."""
    shape = shape or TABLES[table]
    values = {
        "count": count,
        "now": time.time() if end is None else end,
        "step": shape["seconds"] / count,
        "flags": FLAGS,
        "users": USERS,
        "status": STATUS_SQL.format(**shape),
        **{f"c{n}": connection_id for n, connection_id in enumerate(connection_ids)},
    }
    if vendor == "postgresql":
        cursor.execute(POSTGRES_INSERT.format(**values))
        sequence = "SELECT setval(pg_get_serial_sequence('configcat_segment_event', 'id'), %s)"
        cursor.execute(sequence, [count])
    else:
        cursor.execute(SQLITE_INSERT.format(**values))


def prepare(table: str, count: int) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from configcat_segment.database import counts
    from configcat_segment.models import Event, SegmentConnection

    call_command("migrate", verbosity=0, interactive=False)
    if Event.objects.order_by("-pk").values_list("pk", flat=True).first() == count:
        # PostgreSQL: the steady state of a live table, where one writing statement in 32
        # adds the pending count changes in (a generated table's are all still pending).
        counts.add_all_changes()
        return
    Event.objects.all().delete()
    SegmentConnection.objects.all().delete()
    connections = [
        SegmentConnection.objects.create(
            name=name, write_key=f"bench_write_key_{name}_0123456789", region="us"
        )
        for name in CONNECTIONS
    ]
    ids = [str(c.pk) if connection.vendor == "postgresql" else c.pk.hex for c in connections]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        generate(cursor, connection.vendor, table, count, ids)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The steady state of a live table: autovacuum (triggered by inserts since
            # PostgreSQL 13) sets the visibility map soon after a bulk load, which lets
            # counts be index-only scans. Outside a transaction, as VACUUM must be.
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
    counts.add_all_changes()
    took = time.perf_counter() - started
    print(f"  generated {count:,} events ({table}) in {took:.0f} s", file=sys.stderr)


# -- measuring ----------------------------------------------------------------------------


def fiftieth(client: Any, url: str, api: bool) -> str:
    """The 50th page's URL, reached as a user (or a script) would: "Older" 49 times. (With
    1,000 events, 50 a page, the last page is the 20th: that one.)"""
    for _ in range(49):
        if api:
            older = client.get(url).json()["next"]
            if older is None:
                break
            url = older.removeprefix("http://testserver")
        else:
            link = NEXT_LINK.search(client.get(url).content.decode())
            if link is None:
                break
            url = LOG + html.unescape(link[1])
    return url


def measure(table: str, count: int, runs: int, clock: str = "wall") -> dict[str, list[float]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    prepare(table, count)
    user_model = get_user_model()
    user = user_model.objects.filter(
        username="bench"
    ).first() or user_model.objects.create_superuser(
        "bench", "bench@example.com", "bench-password-0"
    )
    client = Client()
    client.force_login(user)
    urls = cases(client, count)
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for url in urls.values():  # warm up caches, templates, connections
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    now = time.process_time if clock == "cpu" else time.perf_counter
    for _ in range(runs):
        for name, url in urls.items():
            started = now()
            response = client.get(url)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            timings[name].append((now() - started) * 1000)
            assert response.status_code == 200
    return timings


def export_times(table: str, count: int) -> dict[str, float]:
    """Seconds to download every event once as CSV and once as JSON Lines (streamed)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    prepare(table, count)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    seconds = {}
    for fmt in ("csv", "jsonl"):
        started = time.perf_counter()
        response = client.get(f"{LOG}export.{fmt}")
        lines = sum(piece.count(b"\n") for piece in response.streaming_content)
        seconds[fmt] = time.perf_counter() - started
        assert lines >= count, (fmt, lines)
    return seconds


def child(
    database_url: str,
    table: str,
    count: int,
    runs: int,
    export: bool = False,
    clock: str = "wall",
) -> None:
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
    print(json.dumps(export_times(table, count) if export else measure(table, count, runs, clock)))


# -- databases ----------------------------------------------------------------------------


def sqlite_url(directory: str, table: str, count: int) -> str:
    return f"sqlite:///{Path(directory) / f'configcat_segment_bench_{table}_{count}.sqlite3'}"


def postgres_url(base: str, table: str, count: int) -> str:
    """``base``'s server, a database of its own for this table (created when missing)."""
    import psycopg

    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/')}_{table}_{count}"
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            db.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_child(
    url: str, table: str, count: int, runs: int, clock: str = "wall"
) -> dict[str, list[float]]:
    command = [sys.executable, __file__, "--child", url, "--table", table]
    command += ["--events", str(count), "--runs", str(runs), "--clock", clock]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    sys.stderr.write(out.stderr)
    timings: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return timings


def report(
    label: str,
    results: dict[tuple[str, int], dict[str, list[float]]],
    tables: list[str],
    sizes: tuple[int, int],
) -> None:
    small, big = sizes
    print(f"\n{label}: median ms over all runs; ratio = {big:,} events / {small:,} events")
    print(f"(targets: at most {TARGET_MS} ms and {TARGET_RATIO:.0f}x)\n")
    header = "| page |" + "".join(
        f" {table}: {small:,} | {table}: {big:,} | {table}: ratio |" for table in tables
    )
    print(header)
    print("|---|" + "---:|---:|---:|" * len(tables))
    missed = []
    for name in CASES:
        cells = []
        for table in tables:
            few = statistics.median(results[table, small][name])
            many = statistics.median(results[table, big][name])
            ratio = many / few
            cells += [f"{few:.1f}", f"{many:.1f}", f"{ratio:.2f}x"]
            if many > TARGET_MS or ratio > TARGET_RATIO:
                missed.append(f"{name} ({table}): {many:.1f} ms, {ratio:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nmissed: " + ("; ".join(missed) if missed else "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per table and size")
    parser.add_argument("--sqlite-dir", default=tempfile.gettempdir())
    parser.add_argument("--postgres", help="a PostgreSQL database URL (its name is a prefix)")
    parser.add_argument("--only", choices=sorted(TABLES), help="one table only")
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=SIZES, help="the two table sizes compared"
    )
    parser.add_argument(
        "--export", action="store_true", help="also time one full CSV and JSON Lines download"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (user and system), which other "
        "work on a shared machine does not inflate; on SQLite that is all of the work, on "
        "PostgreSQL it leaves out the server's",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.table, args.events, args.runs, args.export, args.clock)
        return

    databases = [("SQLite", lambda table, n: sqlite_url(args.sqlite_dir, table, n))]
    if args.postgres:
        databases.append(("PostgreSQL", lambda table, n: postgres_url(args.postgres, table, n)))
    tables = [args.only] if args.only else list(TABLES)
    for label, url_for in databases:
        results: dict[tuple[str, int], dict[str, list[float]]] = {}
        for table in tables:
            for _ in range(args.rounds):
                for count in args.sizes:  # alternating, so that both see the same machine
                    print(f"{label}, {table}, {count:,} events", file=sys.stderr)
                    timings = run_child(url_for(table, count), table, count, args.runs, args.clock)
                    for name, values in timings.items():
                        results.setdefault((table, count), {}).setdefault(name, []).extend(values)
        report(label, results, tables, tuple(args.sizes))
        if args.export:
            big = max(args.sizes)
            for table in tables:
                command = [sys.executable, __file__, "--child", url_for(table, big)]
                command += ["--table", table, "--events", str(big), "--export"]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                took = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"export of {big:,} events ({table}): CSV {took['csv']:.0f} s, "
                    f"JSON Lines {took['jsonl']:.0f} s"
                )


if __name__ == "__main__":
    main()
