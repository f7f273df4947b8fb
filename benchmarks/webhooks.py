"""Signed ConfigCat webhooks per second, end to end, next to a bare one-insert DRF view.

Starts gunicorn (2 workers: sync, then gthread) on an ephemeral loopback port for SQLite,
then for PostgreSQL, and fires signed webhooks (a fresh webhook id each, two settings changed, so
two events) from a few client threads. Each round measures the webhook view and the bare
view back to back, in alternating order; the table shows medians over the rounds and the
webhook view's throughput as a share of the bare view's.

    .venv/bin/python benchmarks/webhooks.py [--requests 300] [--rounds 5] [--clients 8]
        [--threads 4]
        [--postgres postgres://postgres@127.0.0.1:5432/cs_issue3]

The PostgreSQL database must exist; the rows the benchmark writes are deleted at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from configcat_segment.webhooks.rendering import render_body  # noqa: E402
from configcat_segment.webhooks.signing import signature_headers  # noqa: E402

SETTINGS = "benchmarks.webhook_settings"
KEY = "configcat_whsk_BenchmarkSigningKey000000000000000000000000="
NAME = "benchmark-webhooks"
BODY = render_body(
    {
        "ConfigId": "08d86d63-2726-47cd-8bfc-59608ecb91e2",
        "ConfigName": "Main config",
        "EnvironmentId": "08d86d63-272c-4355-8027-4b52787bc1bd",
        "EnvironmentName": "Production",
        "URL": "https://app.configcat.com/08d86d63-2721-4da6-8c06-584521d516bc/"
        "08d86d63-2726-47cd-8bfc-59608ecb91e2/08d86d63-272c-4355-8027-4b52787bc1bd",
        "ChangedBy": "Jane Doe (jane@example.com)",
        "ChangeNotes": "Benchmark",
    },
    [
        {"settingKey": "flagA", "event": "changed", "details": "\r\nflagA: false ➔ true"},
        {"settingKey": "flagB", "event": "changed", "details": "\r\nflagB: 10 ➔ 20"},
    ],
).encode()


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"manage.py {args[0]} failed:\n{done.stderr}")
    return done.stdout


@contextmanager
def gunicorn(database_url: str, threads: int) -> Iterator[tuple[str, int]]:
    """A gunicorn with 2 workers on 127.0.0.1, port chosen by the kernel; with ``threads``
    over 1, threaded workers (gthread), so one worker overlaps its requests' database waits.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    host, port = listener.getsockname()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": database_url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            "2",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "project.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        pass_fds=[listener.fileno()],
    )
    listener.close()
    try:
        wait_until_serving(host, port, server)
        yield host, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_serving(host: str, port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("gunicorn exited before serving")
        try:
            status, _ = request(host, port, "GET", "/bare/00000000-0000-0000-0000-000000000000/")
        except OSError:
            time.sleep(0.1)
            continue
        if status == 405:
            return
    sys.exit("gunicorn did not start serving within 60 s")


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Run:
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds


def fire(host: str, port: int, path: str, count: int, clients: int) -> Run:
    """``count`` signed webhooks (fresh ids) from ``clients`` threads; 200 is a success."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    remaining = iter(range(count))

    def client() -> None:
        nonlocal failures
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            headers = {
                "Content-Type": "application/json",
                **signature_headers(
                    [KEY], BODY, webhook_id=uuid.uuid4().hex, timestamp=str(int(time.time()))
                ),
            }
            started = time.perf_counter()
            status, _ = request(host, port, "POST", path, BODY, headers)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                failures += status != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(time.perf_counter() - started, latencies, failures)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def benchmark(
    label: str, database_url: str, threads: int, args: argparse.Namespace
) -> list[list[str]]:
    manage(database_url, "migrate", "--noinput")
    manage(database_url, "shell", "-c", DELETE_CONNECTION)
    created = json.loads(
        manage(
            database_url,
            "configcat_segment_connect",
            "--name",
            NAME,
            "--write-key",
            "wk_benchmark_0123456789",
            "--region",
            "us",
            "--signing-key",
            KEY,
            "--no-evaluations",
        )
    )
    paths = {"webhook": created["webhook_path"], "bare": f"/bare/{created['id']}/"}
    runs: dict[str, list[Run]] = {"webhook": [], "bare": []}
    try:
        with gunicorn(database_url, threads) as (host, port):
            for name in ("webhook", "bare"):  # warm-up, not counted
                fire(host, port, paths[name], args.requests // 5, args.clients)
            for round_number in range(args.rounds):
                order = ("webhook", "bare") if round_number % 2 == 0 else ("bare", "webhook")
                for name in order:
                    runs[name].append(fire(host, port, paths[name], args.requests, args.clients))
    finally:
        manage(database_url, "shell", "-c", DELETE_CONNECTION)
    bare = statistics.median(r.throughput for r in runs["bare"])
    rows = []
    for name in ("webhook", "bare"):
        throughput = statistics.median(r.throughput for r in runs[name])
        p50 = statistics.median(percentile(r.latencies, 0.5) for r in runs[name])
        p99 = statistics.median(percentile(r.latencies, 0.99) for r in runs[name])
        rows.append(
            [
                label,
                "2 sync" if threads == 1 else f"2 gthread x {threads}",
                "signed webhook → 2 events" if name == "webhook" else "bare view, 1 insert",
                f"{throughput:.0f}",
                f"{p50 * 1000:.1f}",
                f"{p99 * 1000:.1f}",
                f"{throughput / bare:.2f}x",
                str(sum(r.failures for r in runs[name])),
            ]
        )
    return rows


DELETE_CONNECTION = (
    "from configcat_segment.models import SegmentConnection; "
    f"SegmentConnection.objects.filter(name={NAME!r}).delete()"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per view per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gthread worker (second run)"
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/cs_issue3",
        help="an existing PostgreSQL database (default: %(default)s)",
    )
    args = parser.parse_args()
    if urlsplit(args.postgres).scheme not in ("postgres", "postgresql"):
        sys.exit("--postgres: give a postgres:// URL")
    rows = []
    for threads in (1, args.threads):
        with tempfile.TemporaryDirectory() as directory:
            sqlite = f"sqlite:///{directory}/benchmark.sqlite3"
            rows += benchmark("SQLite", sqlite, threads, args)
        rows += benchmark("PostgreSQL", args.postgres, threads, args)
    header = ["database", "workers", "view", "req/s", "p50 ms", "p99 ms", "vs bare", "non-200"]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(
        f"{args.rounds} rounds x {args.requests} requests per view, {args.clients} client "
        "threads; medians over rounds"
    )
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
