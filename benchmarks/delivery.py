"""Delivery throughput: the durable outbox vs segment-analytics-python's in-memory Client.

Both send the same events to the same local Segment-compatible server (tests/segment_server.py,
in this process), gzip on. Measured in child processes (fork), so each starts equal:

- ``client``: ``segment.analytics.Client`` (one consumer thread; its default batches of
  100 messages, and batches of 500 as the outbox sends), from the first ``track()`` until
  ``flush()`` returns;
- ``outbox <db> <n>w``: the events already written as pending rows; ``n`` worker processes
  (``Runner.run(until_idle=True)``, as ``configcat_segment_worker --once``) from start until
  every event is delivered and marked so in the database, on SQLite and PostgreSQL; on
  PostgreSQL also ``settling inline``, the lanes as they were before they settled what
  Segment accepted on a thread of their own (``delivery/settler.py``).

The variants run interleaved, ``--repeat`` times; the table shows medians and the ratio to
the client with its defaults. Peak memory is tracemalloc's peak of the measured process
(the busiest worker), in one extra run per variant, so tracing never slows the timed runs.

    python benchmarks/delivery.py [--events 10000] [--repeat 5]

PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cs_issue4);
its events table is emptied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.delivery_settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.utils import timezone  # noqa: E402
from segment.analytics import Client  # noqa: E402

from benchmarks.delivery_settings import SQLITE_PATH, SwitchRouter  # noqa: E402
from configcat_segment.delivery.dispatcher import Dispatcher  # noqa: E402
from configcat_segment.delivery.runner import Runner  # noqa: E402
from configcat_segment.models import Event, EventClaim, SegmentConnection  # noqa: E402
from configcat_segment.segment import payloads as messages  # noqa: E402
from tests.segment_server import SegmentServer  # noqa: E402

WRITE_KEY = "wk_benchmark_0123456789abcdef"
DATABASES = {"sqlite": "default", "postgres": "postgres"}


def make_messages(count: int, run: str) -> list[dict]:
    """Evaluation-like track messages, about 600 bytes each, unique messageIds per run."""
    now = timezone.now()
    return [
        messages.track(
            event="Feature Flag Evaluated",
            properties={
                "feature_flag_key": f"flag_{n % 40}",
                "value": n % 3 == 0,
                "variation_id": f"v{n % 3}",
                "environment_name": "Production",
                "product_name": "Shop",
                "user": {"Identifier": f"user-{n % 5000}", "Email": f"user{n % 5000}@example.com"},
            },
            user_id=f"user-{n % 5000}",
            timestamp=now,
            message_id=f"bench-{run}-{n}",
        )
        for n in range(count)
    ]


def prepare(alias: str, endpoint: str, payloads: list[dict]) -> None:
    SwitchRouter.alias = alias
    Event.objects.all().delete()
    EventClaim.objects.all().delete()  # none, unless a run was interrupted
    connection, _ = SegmentConnection.objects.update_or_create(
        name="Benchmark",
        defaults={"write_key": WRITE_KEY, "region": "custom", "custom_endpoint": endpoint},
    )
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(
                connection=connection,
                type="track",
                event_name=p["event"],
                flag_key=p["properties"]["feature_flag_key"],
                user_id=p["userId"],
                message_id=p["messageId"],
                payload=p,
                next_attempt_at=now,
                queued_at=now,
                created_at=now,
            )
            for p in payloads
        ],
        batch_size=1000,
    )
    if connections[alias].vendor == "postgresql":
        # As autovacuum would between runs: without it the deleted rows of every earlier
        # run stay in the indexes and each run reads more of them than the last.
        with connections[alias].cursor() as cursor:
            cursor.execute("VACUUM ANALYZE configcat_segment_event")
            cursor.execute("VACUUM ANALYZE configcat_segment_eventclaim")
    connections.close_all()


# -- what runs in the child processes -----------------------------------------------------


def _measured(work, trace: bool):
    """(start, end, peak traced bytes, CPU seconds of the whole process) of ``work()``."""
    if trace:
        tracemalloc.start()
    cpu = time.process_time()
    start = time.monotonic()
    work()
    end = time.monotonic()
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    return start, end, peak, time.process_time() - cpu


def process_cpu(stat: str, *, children: bool = False) -> float:
    """CPU seconds (user + system; with ``children``, its reaped children's too) from the
    text of a ``/proc/<pid>/stat``."""
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name
    ticks = sum(map(int, fields[11 : 15 if children else 13]))  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL server process on this machine, from
    /proc, the backends that have exited included (the postmaster's reaped children);
    0.0 where there is no /proc."""
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            total += process_cpu(stat, children=True)
    return total


def client_child(endpoint, payloads, upload_size, trace, barrier, results):
    def work():
        client = Client(
            WRITE_KEY,
            host=endpoint,
            gzip=True,
            max_queue_size=len(payloads) + 1,
            upload_size=upload_size,
        )
        for p in payloads:
            client.track(
                user_id=p["userId"],
                event=p["event"],
                properties=p["properties"],
                context=p["context"],
                timestamp=dt.datetime.fromisoformat(p["timestamp"]),
                message_id=p["messageId"],
            )
        client.flush()
        client.join()

    barrier.wait()
    results.put(_measured(work, trace))


class SettlingInline(Dispatcher):
    """The dispatcher as it was before lanes settled deliveries in the background."""

    settles_in_background = False


def outbox_child(alias, inline, trace, barrier, results):
    SwitchRouter.alias = alias

    def work():
        Runner(SettlingInline() if inline else None, poll_seconds=0.05).run(until_idle=True)

    barrier.wait()
    results.put(_measured(work, trace))


def run_children(context, target, args, workers, results) -> list:
    """Start ``workers`` processes of ``target(*args)``; what each put in ``results``."""
    children = [context.Process(target=target, args=args) for _ in range(workers)]
    for child in children:
        child.start()
    measured = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join()
    return measured


def run_variant(variant, server, payloads, trace=False, prepared=False):
    """One measured run: (events per second, peak traced bytes, CPU seconds of the
    measured processes). ``prepared``: the outbox's events are written already."""
    kind, db, workers, *how = variant
    before = len(server.accepted_ids)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(workers), context.Queue()
    if kind == "client":
        upload_size = int(db)
        target, args = client_child, (server.url, payloads, upload_size, trace, barrier, results)
    else:
        if not prepared:
            prepare(DATABASES[db], server.url, payloads)
        target, args = outbox_child, (DATABASES[db], how == ["inline"], trace, barrier, results)
    measured = run_children(context, target, args, workers, results)
    delivered = len(server.accepted_ids) - before
    assert delivered == len(payloads), f"{variant}: {delivered} of {len(payloads)} delivered"
    if kind == "outbox":
        SwitchRouter.alias = DATABASES[db]
        assert Event.objects.filter(status="delivered").count() == len(payloads)
        connections.close_all()
    elapsed = max(end for _, end, _, _ in measured) - min(start for start, *_ in measured)
    cpu = sum(cpu for *_, cpu in measured)
    return len(payloads) / elapsed, max(peak for _, _, peak, _ in measured), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    for alias in DATABASES.values():
        call_command("migrate", database=alias, verbosity=0)
    connections.close_all()

    # ("client", upload size, 1): its default batches of 100, and batches of 500 like ours.
    # On PostgreSQL, lanes settle deliveries in the background; "inline" is without that.
    variants = [("client", "100", 1), ("client", "500", 1)] + [
        ("outbox", db, workers, *how)
        for db in DATABASES
        for workers in (1, 4)
        for how in ([()] if db == "sqlite" else [(), ("inline",)])
    ]
    rates: dict[tuple, list[float]] = {v: [] for v in variants}
    peaks: dict[tuple, int] = {}
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        for repetition in range(options.repeat):
            for variant in variants:
                payloads = make_messages(
                    options.events, f"{repetition}-{'-'.join(map(str, variant))}"
                )
                rate, *_ = run_variant(variant, server, payloads)
                rates[variant].append(rate)
        for variant in variants:
            payloads = make_messages(options.events, f"mem-{'-'.join(map(str, variant))}")
            peaks[variant] = run_variant(variant, server, payloads, trace=True)[1]
        requests = len(server.requests)
    SQLITE_PATH.unlink(missing_ok=True)

    client_rate = statistics.median(rates[variants[0]])
    print(
        f"\n{options.events:,} events, {options.repeat} repetitions, "
        f"{requests:,} requests in all, "
        f"Python {sys.version.split()[0]}, Django {django.__version__}\n"
    )
    print("| variant | events/s (median) | min - max | vs client | peak memory (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for variant in variants:
        kind, db, workers, *how = variant
        if kind == "client":
            name = f"segment-analytics-python Client, upload_size={db}"
        else:
            name = f"outbox, {db}, {workers} worker{'s' if workers > 1 else ''}"
            name += ", settling inline" if how else ""
        median = statistics.median(rates[variant])
        print(
            f"| {name} | {median:,.0f} | {min(rates[variant]):,.0f} - {max(rates[variant]):,.0f} "
            f"| {median / client_rate:.2f}x | {peaks[variant] / 2**20:.1f} |"
        )


if __name__ == "__main__":
    main()
