"""A fleet of processes forwarding one stream of evaluations: is dedup fleet-wide?

    .venv/bin/python benchmarks/fleet.py [--processes 4 16] [--evaluations 10000]

Not a timed test: it counts. One Zipf stream (10,000 evaluations, 1,000 users, 20 flags
with targeting rules and percentage options, as in benchmarks/evaluations.py) is evaluated
by N separate processes (each a fresh interpreter, like gunicorn workers), against one
PostgreSQL database: each process first evaluates its share of the stream (every N-th
evaluation), then replays the whole stream, as if every worker saw every visitor. Each
process has its own dedup memory and its own writer; the outbox's unique messageId is
all they share. Then ``configcat_segment_worker --once`` delivers everything to a
Segment-compatible server on loopback (tests/segment_server.py).

It prints, per fleet size:

- the **distinct floor**: distinct users (one ``identify`` each) plus distinct (user, flag,
  variation) keys in the stream, per the SDK itself: the least any per-(user, flag, value)
  dedup can send;
- **messages ÷ floor**: what Segment received over that floor (must stay ≤ 1.02);
- **inserts attempted per distinct key**: events the processes tried to insert (each
  process's first-seen evaluations; the database refused the repeats) over the floor:
  the price of per-process dedup, paid by the database and not by Segment.

The dedup window is the default 300 s. A run that would straddle a window boundary waits
for the next window first (a boundary legitimately makes new messageIds).

PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names
the server; a throwaway database ``cs_fleet_<pid>`` is created on it and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.evaluations import (  # noqa: E402
    FLAG_COUNT,
    USERS,
    make_user,
    write_config,
    zipf_draws,
)

WINDOW_SECONDS = 300
# A run is refused to start with less than this left in the current dedup window.
MAX_RUN_SECONDS = 120
WRITE_KEY = "wk_fleet_benchmark_0123456789"


# -- a child process: one member of the fleet ----------------------------------------------


def child(index: int, processes: int, evaluations: int) -> None:
    """Evaluate this process's share, then the whole stream; print what was attempted."""
    import project.settings as demo

    demo.CONFIGCAT_SEGMENT["EVALUATION_WRITER"] = "manual"  # flush() counts every insert
    demo.LOGGING["root"]["level"] = "ERROR"
    import django

    django.setup()
    import configcat_segment

    users = [make_user(f"user-{n}", n) for n in range(USERS + 1)]
    draws = [(users[u], f"flag{f:02d}") for u, f in zipf_draws(evaluations)]
    client = configcat_segment.get_client()
    attempted = 0
    for phase in (draws[index::processes], draws):
        for n, (user, key) in enumerate(phase, 1):
            client.get_value(key, None, user)
            if n % 1000 == 0:
                attempted += configcat_segment.flush()
        attempted += configcat_segment.flush()
    print(json.dumps({"attempted": attempted}))


# -- the parent -------------------------------------------------------------------------------


def distinct_floor(config: Path, evaluations: int) -> tuple[int, int]:
    """(distinct users, distinct (user, flag, variation) keys) in the stream, per the SDK."""
    import configcatclient
    from configcatclient.configcatoptions import ConfigCatOptions
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour

    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(config), OverrideBehaviour.LocalOnly)
    )
    client = configcatclient.get("fleet-benchmark/bare-client", options)
    users = [make_user(f"user-{n}", n) for n in range(USERS + 1)]
    seen_users, keys = set(), set()
    for u, f in zipf_draws(evaluations):
        details = client.get_value_details(f"flag{f:02d}", None, users[u])
        seen_users.add(u)
        keys.add((u, details.key, details.variation_id))
    client.close()
    return len(seen_users), len(keys)


def wait_for_a_fresh_window() -> None:
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < MAX_RUN_SECONDS:
        print(f"(waiting {left:.0f} s for the next dedup window)", file=sys.stderr)
        time.sleep(left + 0.5)


def run_fleet(processes: int, evaluations: int, env: dict[str, str], server: Any) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM configcat_segment_event")
    server.accepted_ids.clear()
    wait_for_a_fresh_window()
    window = int(time.time() // WINDOW_SECONDS)
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(i), str(processes), str(evaluations)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    attempted = 0
    for process in children:
        out, _ = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise SystemExit(f"a fleet process failed (exit {process.returncode})")
        attempted += json.loads(out.strip().splitlines()[-1])["attempted"]
    seconds = time.monotonic() - started
    if int(time.time() // WINDOW_SECONDS) != window:
        print("(note: this run crossed a dedup window boundary)", file=sys.stderr)
    subprocess.run(
        [sys.executable, "manage.py", "configcat_segment_worker", "--once"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM configcat_segment_event")
        (stored,) = cursor.fetchone()
    return {
        "processes": processes,
        "attempted": attempted,
        "stored": stored,
        "messages": len(server.accepted_ids),
        "duplicates": len(server.accepted_ids) - len(set(server.accepted_ids)),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import dj_database_url
    import psycopg

    server_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin = dj_database_url.parse(server_url)
    name = f"cs_fleet_{os.getpid()}"
    conninfo = {
        "host": admin["HOST"],
        "port": admin["PORT"] or 5432,
        "user": admin["USER"],
        "password": admin["PASSWORD"] or None,
    }
    with psycopg.connect(dbname=admin["NAME"], autocommit=True, **conninfo) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        measure(args, server_url.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with psycopg.connect(dbname=admin["NAME"], autocommit=True, **conninfo) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(args: argparse.Namespace, database_url: str) -> None:
    from tests.segment_server import SegmentServer

    workdir = Path(tempfile.mkdtemp(prefix="configcat_segment_fleet_"))
    config = workdir / "config_v6.json"
    write_config(config)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url,
        "CONFIGCAT_FLAG_OVERRIDES": str(config),
        "CONFIGCAT_SEGMENT_DELIVERY": "worker",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from configcat_segment.models import SegmentConnection

    call_command("migrate", verbosity=0)
    users, keys = distinct_floor(config, args.evaluations)
    floor = users + keys
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        SegmentConnection.objects.create(
            name="Fleet", write_key=WRITE_KEY, region="custom", custom_endpoint=server.url
        )
        results = [run_fleet(n, args.evaluations, env, server) for n in args.processes]
    print(
        f"\n### A fleet forwarding one Zipf stream ({args.evaluations:,} evaluations, "
        f"{USERS:,} users, {FLAG_COUNT} flags; each process evaluates its share, then "
        "replays the whole stream; PostgreSQL)\n"
    )
    print(f"Distinct floor: {users:,} users + {keys:,} (user, flag, variation) keys = {floor:,}\n")
    header = [
        "processes",
        "evaluations made",
        "messages to Segment",
        "messages ÷ floor",
        "duplicates at Segment",
        "inserts attempted",
        "inserts attempted per distinct key",
        "wall s",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in results:
        evaluations_made = r["processes"] * args.evaluations + args.evaluations
        row = [
            r["processes"],
            f"{evaluations_made:,}",
            f"{r['messages']:,}",
            f"{r['messages'] / floor:.3f}",
            r["duplicates"],
            f"{r['attempted']:,}",
            f"{r['attempted'] / floor:.2f}",
            f"{r['seconds']:.0f}",
        ]
        print("| " + " | ".join(str(cell) for cell in row) + " |")
        if r["messages"] / floor > 1.02:
            print(f"  ^ over the 1.02 bound with {r['processes']} processes", file=sys.stderr)


if __name__ == "__main__":
    main()
