"""How cheaply could any PostgreSQL outbox deliver on this machine? Bounds for issue 11.

Is "four workers ≥ 3x segment-analytics-python's Client" out of reach because of how this
app claims and settles, or because of what a durable outbox on PostgreSQL costs here? Each
variant below is an outbox written with raw SQL and none of our dispatcher's Python,
sending the same messages through our transport (``segment.transport.send`` with stored
texts) to the same local Segment-compatible server as ``benchmarks/delivery.py``, side by
side with the ``Client`` and with our dispatcher:

- ``ours``: our workers (``Runner.run(until_idle=True)``: claims table, settling thread);
- ``locks``: our events table as migrated (every index, the search indexes, the count
  triggers), claimed by row locks held in a transaction across the send instead of claim
  rows: ``SELECT … FOR UPDATE SKIP LOCKED``, the send, one ``UPDATE``, commit;
- ``rounds``: our events table, one lease row per round (claims of a connection take
  turns under an advisory lock, so each one sees the rounds committed before it);
- ``split``: the event log's row with no index on any column settling changes (so the
  update is HOT; fillfactor 45 leaves it room), the queue in a narrow due table, locks;
- ``split-lease``: the same with leases in the due table instead of locks;
- ``narrow``: an outbox table without the event log (id, text, status, times), locks;
- ``queue``: a pure queue: ``DELETE … RETURNING``, one row per delivered batch.

Every outbox runs ``--workers`` processes, interleaved, ``--repeat`` times; the table
shows medians: events/s at the server (first worker's start to last worker's end, every
event accepted once), its ratio to the ``Client`` with its defaults, and CPU per event:
the sending processes', PostgreSQL's (all its processes, from /proc) and this process's
(the Segment-compatible server, on threads here).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_main_bench \\
        python benchmarks/delivery_floor.py [--events 10000] [--repeat 5] [--workers 4]
        [--only ours,locks,...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.db import connections
from django.utils import timezone

from benchmarks import delivery  # sets Django up
from benchmarks.delivery import (
    DATABASES,
    WRITE_KEY,
    SwitchRouter,
    make_messages,
    run_variant,
)
from configcat_segment.segment import transport
from configcat_segment.segment.wire import Messages, dumps

ALIAS = DATABASES["postgres"]
BATCH = 500

NARROW = """
DROP TABLE IF EXISTS bench_floor_narrow;
CREATE TABLE bench_floor_narrow (
    id bigserial PRIMARY KEY,
    text text NOT NULL,
    status varchar(10) NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at timestamptz
);
CREATE INDEX bench_floor_narrow_due ON bench_floor_narrow (next_attempt_at)
    WHERE status IN ('pending', 'failed');
DROP TABLE IF EXISTS bench_floor_queue;
CREATE TABLE bench_floor_queue (
    id bigserial PRIMARY KEY, text text NOT NULL, next_attempt_at timestamptz NOT NULL
);
CREATE INDEX bench_floor_queue_due ON bench_floor_queue (next_attempt_at);
DROP TABLE IF EXISTS bench_split_event;
CREATE TABLE bench_split_event (
    LIKE configcat_segment_event INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) WITH (fillfactor = 45);
ALTER TABLE bench_split_event ADD PRIMARY KEY (id);
ALTER TABLE bench_split_event ADD UNIQUE (message_id);
CREATE INDEX ON bench_split_event (connection_id, id DESC);
CREATE INDEX ON bench_split_event (flag_key, id DESC);
CREATE INDEX ON bench_split_event (user_id, id DESC);
CREATE INDEX ON bench_split_event (created_at);
CREATE INDEX ON bench_split_event (receipt_id) WHERE receipt_id IS NOT NULL;
CREATE INDEX ON bench_split_event USING gin (flag_key gin_trgm_ops);
CREATE INDEX ON bench_split_event USING gin (user_id gin_trgm_ops);
CREATE TRIGGER bench_split_count_update AFTER UPDATE ON bench_split_event
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION configcat_segment_count_events();
DROP TABLE IF EXISTS bench_split_outbox;
CREATE TABLE bench_split_outbox (
    event_id bigint PRIMARY KEY, connection_id uuid NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until timestamptz NOT NULL DEFAULT '-infinity', claims integer NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
CREATE INDEX ON bench_split_outbox (connection_id, next_attempt_at);
DROP TABLE IF EXISTS bench_floor_round;
CREATE TABLE bench_floor_round (
    id bigserial PRIMARY KEY, connection_id uuid NOT NULL, lease_until timestamptz NOT NULL,
    event_ids bigint[] NOT NULL
);
DROP TABLE IF EXISTS bench_floor_delivery;
CREATE TABLE bench_floor_delivery (
    id bigserial PRIMARY KEY, first_id bigint, last_id bigint, events integer,
    delivered_at timestamptz
);
"""

# (claim, settle) per variant; %(n)s is the batch size, %(ids)s the claimed keys.
SQL = {
    "locks": (
        "SELECT id, payload::text FROM configcat_segment_event"
        " WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()"
        " ORDER BY connection_id, next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
        "UPDATE configcat_segment_event SET status = 'delivered', attempts = attempts + 1,"
        " delivered_at = now(), last_error = '' WHERE id = ANY(%s::bigint[])",
    ),
    "split": (
        "WITH claimed AS (DELETE FROM bench_split_outbox WHERE event_id IN ("
        " SELECT event_id FROM bench_split_outbox WHERE next_attempt_at <= now()"
        " ORDER BY connection_id, next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING event_id)"
        " SELECT e.id, e.payload::text FROM bench_split_event e"
        " JOIN claimed c ON e.id = c.event_id",
        "UPDATE bench_split_event SET status = 'delivered', attempts = attempts + 1,"
        " delivered_at = now(), last_error = '' WHERE id = ANY(%s::bigint[])",
    ),
    # Leases instead of locks: the claim is its own transaction, committed before the send.
    "split-lease": (
        "WITH claimed AS (UPDATE bench_split_outbox SET lease_until = now() + '60 s',"
        " claims = claims + 1 WHERE event_id IN ("
        " SELECT event_id FROM bench_split_outbox WHERE next_attempt_at <= now()"
        " AND lease_until < now()"
        " ORDER BY connection_id, next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING event_id)"
        " SELECT e.id, e.payload::text FROM bench_split_event e"
        " JOIN claimed c ON e.id = c.event_id",
        "WITH settled AS (DELETE FROM bench_split_outbox WHERE event_id = ANY(%s::bigint[])"
        " RETURNING event_id, claims)"
        " UPDATE bench_split_event e SET status = 'delivered', attempts = attempts + s.claims,"
        " delivered_at = now(), last_error = '' FROM settled s WHERE e.id = s.event_id",
    ),
    # A lease per round: claims of a connection take turns (an advisory lock, so each
    # one's snapshot sees the rounds committed before it), skip the events live rounds
    # hold, and write one row for the whole round; settling updates the events and
    # deletes that row.
    "rounds": (
        "WITH due AS (SELECT e.id, e.payload::text AS text FROM configcat_segment_event e"
        " WHERE e.connection_id = %s AND e.status IN ('pending', 'failed')"
        " AND e.next_attempt_at <= now() AND e.id NOT IN ("
        " SELECT unnest(event_ids) FROM bench_floor_round"
        " WHERE connection_id = %s AND lease_until > now())"
        " ORDER BY e.next_attempt_at LIMIT %s),"
        " round AS (INSERT INTO bench_floor_round (connection_id, lease_until, event_ids)"
        " SELECT %s, now() + '60 s', coalesce(array_agg(id), '{}') FROM due RETURNING id)"
        " SELECT due.id, due.text, round.id FROM due, round",
        "UPDATE configcat_segment_event SET status = 'delivered', attempts = attempts + 1,"
        " delivered_at = now(), last_error = '' WHERE id = ANY(%s::bigint[])",
    ),
    "narrow": (
        "SELECT id, text FROM bench_floor_narrow"
        " WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
        "UPDATE bench_floor_narrow SET status = 'delivered', attempts = attempts + 1,"
        " delivered_at = now() WHERE id = ANY(%s::bigint[])",
    ),
    "queue": (
        "DELETE FROM bench_floor_queue WHERE id IN (SELECT id FROM bench_floor_queue"
        " WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED) RETURNING id, text",
        "INSERT INTO bench_floor_delivery (first_id, last_id, events, delivered_at)"
        " SELECT min(x), max(x), count(*), now() FROM unnest(%s::bigint[]) AS x",
    ),
}


def prepare_floor(table: str, endpoint: str, payloads: list[dict]) -> None:
    if table == "split-lease":
        table = "split"
    if table in ("locks", "split", "rounds"):
        delivery.prepare(ALIAS, endpoint, payloads)
    if table in ("locks", "rounds"):
        return
    if table == "split":
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("TRUNCATE bench_split_event, bench_split_outbox")
            cursor.execute("INSERT INTO bench_split_event SELECT * FROM configcat_segment_event")
            cursor.execute(
                "INSERT INTO bench_split_outbox SELECT id, connection_id, next_attempt_at"
                " FROM bench_split_event"
            )
            cursor.execute("VACUUM ANALYZE bench_split_event")
            cursor.execute("VACUUM ANALYZE bench_split_outbox")
        connections.close_all()
        return
    SwitchRouter.alias = ALIAS
    now = timezone.now()
    texts = [dumps(p) for p in payloads]
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"TRUNCATE bench_floor_{table}")
        if table == "narrow":
            cursor.executemany(
                "INSERT INTO bench_floor_narrow (text, status, next_attempt_at)"
                " VALUES (%s, 'pending', %s)",
                [(text, now) for text in texts],
            )
        else:
            cursor.executemany(
                "INSERT INTO bench_floor_queue (text, next_attempt_at) VALUES (%s, %s)",
                [(text, now) for text in texts],
            )
        cursor.execute(f"VACUUM ANALYZE bench_floor_{table}")
    connections.close_all()


def floor_child(table, endpoint, barrier, results):
    SwitchRouter.alias = ALIAS
    claim, settle = SQL[table]

    def work():
        connection = connections[ALIAS]
        connection.ensure_connection()
        raw = connection.connection
        # As the dispatcher's bookkeeping does (delivery/claims.py): a lost claim or
        # settlement only means a message sent again, which Segment dedupes.
        raw.execute("SET synchronous_commit TO OFF")
        raw.commit()
        leased = table == "split-lease"
        if table == "rounds":
            return rounds(raw)
        while True:
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute(claim, (BATCH,))
                rows = cursor.fetchall()
                if not rows:
                    return
                if not leased:  # locks: claim, send and settle in one transaction
                    send(rows)
                    cursor.execute(settle, (keys(rows),))
            if leased:  # the lease was committed before the send; settled on its own
                send(rows)
                with raw.transaction(), raw.cursor() as cursor:
                    cursor.execute(settle, (keys(rows),))

    def rounds(raw):
        with raw.cursor() as cursor:
            cursor.execute("SELECT id FROM configcat_segment_segmentconnection")
            key = cursor.fetchone()[0]
            raw.commit()
            while True:
                with raw.transaction():
                    cursor.execute("SELECT pg_advisory_xact_lock(42)")
                    cursor.execute(claim, (key, key, BATCH, key))
                    rows = cursor.fetchall()
                if not rows:
                    return
                send([(pk, text) for pk, text, _ in rows])
                with raw.transaction():
                    cursor.execute(settle, (keys(rows),))
                    cursor.execute("DELETE FROM bench_floor_round WHERE id = %s", (rows[0][2],))

    def send(rows):
        answer = transport.send(
            Messages([text for _, text in rows]),
            endpoint=endpoint,
            write_key=WRITE_KEY,
            sent_at=timezone.now().isoformat(),
            gzip=True,
            timeout=15,
        )
        assert answer.status == 200, answer

    barrier.wait()
    cpu = time.process_time()
    start = time.monotonic()
    work()
    results.put((start, time.monotonic(), time.process_time() - cpu))


def keys(rows) -> str:
    """The rows' keys as one PostgreSQL array parameter (as ``models.lookups.any_of``)."""
    return "{" + ",".join(str(row[0]) for row in rows) + "}"


def run_floor(table, workers, server, payloads) -> tuple[float, float]:
    """One run of events prepared already: (events per second, CPU seconds of the workers)."""
    before = len(server.accepted_ids)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(workers), context.Queue()
    args = (table, server.url, barrier, results)
    measured = delivery.run_children(context, floor_child, args, workers, results)
    delivered = len(server.accepted_ids) - before
    assert delivered == len(payloads), f"{table}: {delivered} of {len(payloads)} delivered"
    elapsed = max(end for _, end, _ in measured) - min(start for start, _, _ in measured)
    return len(payloads) / elapsed, sum(cpu for _, _, cpu in measured)


def run_one(name, workers, server, payloads) -> tuple[float, float, float, float]:
    """(events/s, then CPU µs per event of the workers, of PostgreSQL and of this process,
    which serves Segment's side) for one run of variant ``name``."""
    # The events are written before the clocks start.
    if name == "ours":
        delivery.prepare(ALIAS, server.url, payloads)
    elif name != "client":
        prepare_floor(name, server.url, payloads)
    process, database = time.process_time(), delivery.postgres_cpu()
    if name == "client":
        rate, _, cpu = run_variant(("client", "100", 1), server, payloads)
    elif name == "ours":
        rate, _, cpu = run_variant(("outbox", "postgres", workers), server, payloads, prepared=True)
    else:
        rate, cpu = run_floor(name, workers, server, payloads)
    process, database = time.process_time() - process, delivery.postgres_cpu() - database
    return rate, *(seconds * 1e6 / len(payloads) for seconds in (cpu, database, process))


def main() -> None:
    from django.core.management import call_command

    from tests.segment_server import SegmentServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--only", default="", help="comma-separated variants to run besides the client"
    )
    options = parser.parse_args()

    call_command("migrate", database=ALIAS, verbosity=0)
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(NARROW)
    connections.close_all()

    names = ["client", "ours", "locks", "rounds", "split", "split-lease", "narrow", "queue"]
    if options.only:
        names = ["client", *options.only.split(",")]
    runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        for repetition in range(options.repeat):
            for name in names:
                payloads = make_messages(options.events, f"floor-{repetition}-{name}")
                runs[name].append(run_one(name, options.workers, server, payloads))

    n = options.workers
    labels = {
        "client": "segment-analytics-python Client, upload_size=100 (defaults)",
        "ours": f"ours ({n} workers)",
        "locks": "our events table; claims are row locks held across the send",
        "rounds": "our events table; one lease row per round, claims take turns",
        "split": "log row updated HOT (no index on what settling changes) + due table, locks",
        "split-lease": "the same with leases in the due table instead of locks",
        "narrow": "an outbox table without the event log: id, text, status, times; locks",
        "queue": "a pure queue: DELETE … RETURNING, one row per delivered batch",
    }
    client = statistics.median(rate for rate, *_ in runs["client"])
    print(
        f"\n{options.events:,} events, {n} worker process{'es' if n > 1 else ''} per outbox, "
        f"{options.repeat} repetitions, Python {sys.version.split()[0]}; CPU in µs per event "
        "(medians): the sending processes, PostgreSQL's, and this process's (the Segment "
        "server)\n"
    )
    print(
        "| variant | events/s (median) | min - max | vs client "
        "| CPU: senders | PostgreSQL | server | all |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        rates = [run[0] for run in runs[name]]
        cpu = [statistics.median(run[i] for run in runs[name]) for i in (1, 2, 3)]
        median = statistics.median(rates)
        print(
            f"| {labels[name]} | {median:,.0f} | {min(rates):,.0f} - {max(rates):,.0f} "
            f"| {median / client:.2f}x | {cpu[0]:.0f} | {cpu[1]:.0f} | {cpu[2]:.0f} "
            f"| {sum(cpu):.0f} |"
        )


if __name__ == "__main__":
    main()
