"""What forwarding evaluations costs the whole host process, until Segment has everything.

    .venv/bin/python benchmarks/host_cost.py [--reps 3] [--evaluations 10000]
        [--postgres postgres://postgres@127.0.0.1:5432/cs_bench_host]

Each run is a fresh process that evaluates one Zipf-distributed stream (1,000 users,
20 flags of a config_v6 file with targeting rules and percentage options: the workload of
``benchmarks/evaluations.py``) through the real ConfigCat SDK, and stops the clock only
when a Segment-compatible server, in another process, has received every message the
variant sends. ``time.process_time()`` counts the CPU of every thread of the process (the
writer and the delivery threads as well as the calling one), from the first ``get_value``
to the last message received. The variants:

- ``bare``: the SDK alone, nothing forwarded (what every other variant is compared to);
- ``ours``: ``configcat_segment.get_client()`` with the embedded ``thread`` delivery on a
  SQLite file (and on PostgreSQL with ``--postgres``): dedup, the outbox, delivery;
- ``naive``: the seed's approach: an ``identify`` and a ``track`` per evaluation through
  segment-analytics-python's ``Client`` (``send=True``), then ``flush()``.

The table shows the medians of the runs, the CPU each variant adds to ``bare``, that cost
per message delivered, and naive ÷ ours. Runs are interleaved; the machine is shared, so
read the ratios.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluations import USERS, make_user, write_config, zipf_draws  # noqa: E402

WRITE_KEY = "host-cost-write-key"
POLL_SECONDS = 0.02


# -- the Segment-compatible server, in its own process ------------------------------------


def _publish_count(server: Any, fd: int) -> None:
    while True:
        os.pwrite(fd, len(server.accepted_ids).to_bytes(8, "little"), 0)
        time.sleep(0.005)


def serve_forever(counter_path: str) -> None:
    """Run the strict local Segment server; publish its accepted-message count in a small
    file, so the measured process can tell when everything has arrived."""
    import threading

    from tests.segment_server import SegmentServer

    fd = os.open(counter_path, os.O_RDWR)
    with SegmentServer(write_keys=[WRITE_KEY]) as server:
        threading.Thread(target=_publish_count, args=(server, fd), daemon=True).start()
        print(server.url, flush=True)
        sys.stdin.readline()  # until the parent closes our stdin


def received(counter: int) -> int:
    return int.from_bytes(os.pread(counter, 8, 0), "little")


def wait_for(counter: int, expected: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while received(counter) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"the server has {received(counter)} of {expected} messages")
        time.sleep(POLL_SECONDS)


# -- one measured run, in a fresh process -------------------------------------------------


def child(variant: str, url: str, counter_path: str, config: str, count: int) -> None:
    counter = os.open(counter_path, os.O_RDONLY)
    users = [make_user(f"user-{n}", n) for n in range(USERS)]
    stream = [(users[u], f"flag{f:02d}") for u, f in zipf_draws(count)]
    if variant == "bare":
        client = _local_client(config, "host/bare")
        start = time.process_time()
        for user, key in stream:
            client.get_value(key, None, user)
        messages = 0
    elif variant == "naive":
        from segment.analytics import Client as SegmentClient

        # Its default queue (10,000 messages) drops what does not fit when evaluations
        # outpace its one consumer thread; the queue is sized so that it sends everything.
        segment = SegmentClient(WRITE_KEY, host=url, send=True, max_queue_size=2 * count + 1)
        client = _local_client(config, "host/naive", _naive_hook(segment))
        start = time.process_time()
        for user, key in stream:
            client.get_value(key, None, user)
        segment.flush()
        messages = 2 * count
        wait_for(counter, messages)
        segment.shutdown()
    else:
        client, messages_written = _ours(url, config)
        start = time.process_time()
        for user, key in stream:
            client.get_value(key, None, user)
        messages = messages_written()
        wait_for(counter, messages)
    cpu = time.process_time() - start
    print(json.dumps({"cpu": cpu, "messages": messages}))
    os._exit(0)  # skip exit hooks: everything was delivered and counted


def _local_client(config: str, sdk_key: str, hook: Any = None) -> Any:
    import configcatclient
    from configcatclient.configcatoptions import ConfigCatOptions, Hooks
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour

    overrides = LocalFileFlagOverrides(config, OverrideBehaviour.LocalOnly)
    hooks = Hooks(on_flag_evaluated=hook) if hook else None
    return configcatclient.get(sdk_key, ConfigCatOptions(flag_overrides=overrides, hooks=hooks))


def _naive_hook(segment: Any) -> Any:
    def hook(details: Any) -> None:
        """The seed's sample: an identify and a track through analytics-python, every time."""
        user = details.user
        user_dict = json.loads(str(user))
        segment.identify(user.get_identifier(), user_dict)
        segment.track(
            user.get_identifier(),
            "Feature Flag Evaluated",
            {
                "feature_flag_key": details.key,
                "value": details.value,
                "variation_id": details.variation_id,
                "user": user_dict,
            },
            context={"integration": {"name": "configcat", "version": "1.0.0"}},
        )

    return hook


def _ours(url: str, config: str) -> tuple[Any, Any]:
    """The app set up as a user would, before the clock starts: migrated, one connection."""
    os.environ["HOST_COST_CONFIG"] = config
    import django
    from django.core.management import call_command
    from django.core.signals import request_started

    django.setup()
    call_command("migrate", verbosity=0)
    import configcat_segment
    from configcat_segment.models import Event, SegmentConnection

    SegmentConnection.objects.create(
        name="host cost", write_key=WRITE_KEY, region="custom", custom_endpoint=url
    )
    client = configcat_segment.get_client()
    request_started.send(sender=None)  # the embedded delivery starts with the first request

    def messages_written() -> int:
        configcat_segment.flush()  # what a request's end or the writer thread would do
        return Event.objects.count()

    return client, messages_written


# -- the parent: interleaved runs and the table -------------------------------------------


def run_once(variant: str, config: Path, count: int, env: dict[str, str]) -> dict[str, float]:
    fd, counter_path = tempfile.mkstemp(prefix="host_cost_count_")
    os.write(fd, bytes(8))
    os.close(fd)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", counter_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        name = variant.split(":")[0]
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, url, counter_path, str(config), str(count)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            check=False,
        )
        if out.returncode:
            raise SystemExit(f"{variant} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(30)
        os.unlink(counter_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--postgres", help="also measure ours on this PostgreSQL database")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_forever(args.serve)
        return
    if args.child:
        variant, url, counter_path, config, count = args.child
        child(variant, url, counter_path, config, int(count))
        return

    workdir = Path(tempfile.mkdtemp(prefix="host_cost_"))
    config = workdir / "config_v6.json"
    write_config(config)
    base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.host_cost_settings"}
    variants = ["bare", "ours:sqlite", "naive"]
    if args.postgres:
        variants.insert(2, "ours:postgres")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for rep in range(args.reps):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for variant in order:
            env = dict(base_env)
            if variant == "ours:sqlite":
                env["DATABASE_URL"] = f"sqlite:///{workdir}/run-{rep}.sqlite3"
            elif variant == "ours:postgres":
                env["DATABASE_URL"] = args.postgres
                _reset_postgres(args.postgres)
            results[variant].append(run_once(variant, config, args.evaluations, env))
            print(f"  rep {rep + 1} {variant}: {results[variant][-1]}", file=sys.stderr)

    bare = statistics.median(r["cpu"] for r in results["bare"])
    naive_added = statistics.median(r["cpu"] for r in results["naive"]) - bare
    print(f"\n{args.evaluations:,} evaluations, median of {args.reps} fresh processes each")
    print("| variant | CPU s | added µs / evaluation | messages | µs / message | naive ÷ this |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in variants:
        cpu = statistics.median(r["cpu"] for r in results[variant])
        messages = int(statistics.median(r["messages"] for r in results[variant]))
        added = cpu - bare
        per_eval = added / args.evaluations * 1e6
        per_message = f"{added / messages * 1e6:.1f}" if messages else "-"
        ratio = f"{naive_added / added:.2f}x" if variant != "bare" and added > 0 else "-"
        print(
            f"| {variant} | {cpu:.3f} | {per_eval:.1f} | {messages:,} | {per_message} | {ratio} |"
        )


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


if __name__ == "__main__":
    main()
