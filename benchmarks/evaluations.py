"""Evaluation forwarding: what it costs the calling thread, and what it saves on Segment.

    .venv/bin/python benchmarks/evaluations.py [--quick]

One process, the real ConfigCat SDK on a generated config_v6 file (20 flags with targeting
rules, percentage options and a long text), a throwaway SQLite database. The things
compared run interleaved (the order rotates every repetition), several times; the tables
show medians and ratios. Nothing leaves the machine: the naive approach uses
segment-analytics-python with ``send=False`` (it builds and checks every message, and skips
only the queue put, so its cost is, if anything, understated).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import io
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USERS = 1000
FLAG_COUNT = 20
ZIPF_S = 1.0


# -- the workload -----------------------------------------------------------------------


def write_config(path: Path) -> None:
    """20 flags: targeting rules on email, country and a custom attribute, percentage
    options, and a long text value (sent as its variation id)."""
    flags: dict[str, Any] = {}
    for n in range(FLAG_COUNT - 1):
        key = f"flag{n:02d}"
        kind = n % 4
        if kind == 0:
            condition = {"u": {"a": "Email", "c": 32, "l": ["@example.com"]}}
            flags[key] = {
                "t": 0,
                "r": [{"c": [condition], "s": {"v": {"b": True}, "i": f"{key}-on"}}],
                "v": {"b": False},
                "i": f"{key}-off",
            }
        elif kind == 1:
            flags[key] = {
                "t": 1,
                "p": [
                    {"p": 50, "v": {"s": "A"}, "i": f"{key}-a"},
                    {"p": 50, "v": {"s": "B"}, "i": f"{key}-b"},
                ],
                "v": {"s": "A"},
                "i": f"{key}-default",
            }
        elif kind == 2:
            condition = {"u": {"a": "plan", "c": 28, "s": "pro"}}
            flags[key] = {
                "t": 2,
                "r": [{"c": [condition], "s": {"v": {"i": 50}, "i": f"{key}-pro"}}],
                "v": {"i": 10},
                "i": f"{key}-default",
            }
        else:
            condition = {"u": {"a": "Country", "c": 0, "l": ["HU", "NL"]}}
            options = [
                {"p": 30, "v": {"b": True}, "i": f"{key}-on"},
                {"p": 70, "v": {"b": False}, "i": f"{key}-off"},
            ]
            flags[key] = {
                "t": 0,
                "r": [{"c": [condition], "p": options}],
                "v": {"b": False},
                "i": f"{key}-default",
            }
    flags[f"flag{FLAG_COUNT - 1:02d}"] = {"t": 1, "v": {"s": "x" * 400}, "i": "long-text"}
    config = {"p": {"u": "https://cdn-global.configcat.com", "r": 0, "s": "bench"}, "f": flags}
    path.write_text(json.dumps(config))


def make_user(name: str, n: int) -> Any:
    from configcatclient.user import User

    return User(
        name,
        email=f"{name}@example.com" if n % 3 == 0 else f"{name}@elsewhere.org",
        country=("HU", "US", "NL", "DE")[n % 4],
        custom={"plan": "pro" if n % 5 == 0 else "free"},
    )


def zipf(n: int, rng: random.Random) -> Callable[[], int]:
    cumulative = list(itertools.accumulate(1 / k**ZIPF_S for k in range(1, n + 1)))
    total = cumulative[-1]
    return lambda: bisect.bisect(cumulative, rng.random() * total)


def zipf_draws(count: int, seed: int = 7) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    user, flag = zipf(USERS, rng), zipf(FLAG_COUNT, rng)
    return [(user(), flag()) for _ in range(count)]


# -- measuring --------------------------------------------------------------------------


def timed(run: Callable[[], None]) -> float:
    """CPU seconds of this process for ``run()``: on a shared machine, time spent waiting
    for a core is not the code's cost. (Nothing here runs in another thread.)"""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        run()
        return time.process_time() - start
    finally:
        gc.enable()


def interleaved(
    variants: dict[str, Callable[[], None]],
    reps: int,
    before: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per run of each variant, ``reps`` times, the order rotating each time."""
    names = list(variants)
    results: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            if before:
                before(name)
            results[name].append(timed(variants[name]))
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired(results: dict[str, list[float]], name: str, baseline: str) -> float:
    """The median over repetitions of ``name``'s time divided by ``baseline``'s in the same
    repetition: pairing cancels the machine's slow drifts, which medians alone do not."""
    return median([a / b for a, b in zip(results[name], results[baseline], strict=True)])


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


# -- the benchmarks ---------------------------------------------------------------------


def bench_dedup_hit(forwarded: Any, bare: Any, users: list[Any], reps: int) -> None:
    pairs = [(user, f"flag{n:02d}") for user in users[:200] for n in range(FLAG_COUNT)]

    def run(client: Any) -> Callable[[], None]:
        def loop() -> None:
            for user, key in pairs:
                client.get_value(key, None, user)

        return loop

    run(forwarded)()  # every pair seen once: what follows are dedup hits
    results = interleaved({"bare": run(bare), "forwarded": run(forwarded)}, reps)
    bare_us = median(results["bare"]) / len(pairs) * 1e6
    forwarded_us = median(results["forwarded"]) / len(pairs) * 1e6
    ratio = paired(results, "forwarded", "bare")
    table(
        f"get_value on a dedup hit ({len(pairs):,} evaluations per run, {reps} runs)",
        ["client", "µs per get_value (median)", "time ratio to bare (paired median)"],
        [
            ["bare ConfigCat client", f"{bare_us:.2f}", "1.00x"],
            ["forwarding, dedup hit", f"{forwarded_us:.2f}", f"{ratio:.3f}x"],
        ],
    )


def bench_first_seen(forwarded: Any, bare: Any, reps: int, count: int) -> None:
    from configcat_segment.evaluations.buffer import get_writer
    from configcat_segment.evaluations.hook import recorder

    batches = iter(
        [[make_user(f"fresh-{rep}-{n}", n) for n in range(count)] for rep in range(reps * 2)]
    )
    current: list[Any] = []
    keys = [f"flag{n % (FLAG_COUNT - 1):02d}" for n in range(count)]

    def before(name: str) -> None:
        current[:] = next(batches)
        recorder.dedup.clear()
        get_writer().discard()

    def run(client: Any) -> Callable[[], None]:
        def loop() -> None:
            for user, key in zip(current, keys, strict=True):
                client.get_value(key, None, user)

        return loop

    results = interleaved({"bare": run(bare), "forwarded": run(forwarded)}, reps, before)
    bare_us = median(results["bare"]) / count * 1e6
    forwarded_us = median(results["forwarded"]) / count * 1e6
    table(
        f"A first-seen evaluation: a new user each time ({count:,} per run, {reps} runs)",
        ["client", "µs per get_value (median)", "added on the calling thread"],
        [
            ["bare ConfigCat client", f"{bare_us:.2f}", ""],
            ["forwarding, first seen", f"{forwarded_us:.2f}", f"{forwarded_us - bare_us:.2f} µs"],
        ],
    )


def bench_naive(forwarded: Any, bare: Any, naive: Any, users: list[Any], reps: int) -> None:
    from configcat_segment.evaluations.buffer import get_writer
    from configcat_segment.evaluations.hook import recorder

    draws = [(users[u], f"flag{f:02d}") for u, f in zipf_draws(10_000)]

    def before(name: str) -> None:
        recorder.dedup.clear()  # every run starts cold: first-seen and hits, as in real life
        get_writer().discard()

    def run(client: Any) -> Callable[[], None]:
        def loop() -> None:
            for user, key in draws:
                client.get_value(key, None, user)

        return loop

    results = interleaved(
        {"bare": run(bare), "ours": run(forwarded), "naive": run(naive)}, reps, before
    )
    per_eval = {name: median(values) / len(draws) * 1e6 for name, values in results.items()}
    ours = per_eval["ours"] - per_eval["bare"]
    naive_cost = per_eval["naive"] - per_eval["bare"]
    table(
        f"Forwarding cost per evaluation, Zipf workload ({len(draws):,} evaluations, "
        f"{USERS:,} users, {FLAG_COUNT} flags, cold start each run, {reps} runs)",
        ["forwarding", "µs per get_value (median)", "forwarding cost µs", "naive ÷ ours"],
        [
            ["none (bare client)", f"{per_eval['bare']:.2f}", "", ""],
            ["ours", f"{per_eval['ours']:.2f}", f"{ours:.2f}", ""],
            [
                "seed's naive (identify + track via analytics-python)",
                f"{per_eval['naive']:.2f}",
                f"{naive_cost:.2f}",
                f"{naive_cost / ours:.1f}x",
            ],
        ],
    )


def bench_wsgi(reps: int, requests: int) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from configcat_segment.evaluations.buffer import get_writer

    with_middleware = WSGIHandler()
    with override_settings(
        MIDDLEWARE=[m for m in _settings().MIDDLEWARE if "FlagEvaluation" not in m]
    ):
        without_middleware = WSGIHandler()
    rng = random.Random(11)
    visitor = zipf(USERS, rng)
    cookies = [f"ajs_anonymous_id=visitor-{visitor()}" for _ in range(requests)]

    def environ(path: str, cookie: str) -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "bench.example.com",
            "SERVER_PORT": "443",
            "HTTP_HOST": "bench.example.com",
            "HTTP_COOKIE": cookie,
            "HTTP_USER_AGENT": "bench/1.0",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        assert status.startswith("200"), status

    def run(handler: Any, path: str) -> Callable[[], None]:
        def loop() -> None:
            for cookie in cookies:
                response = handler(environ(path, cookie), start_response)
                b"".join(response)
                response.close()

        return loop

    variants = {
        "bare": run(without_middleware, "/bare/"),
        "forwarded": run(without_middleware, "/forwarded/"),
        "middleware": run(with_middleware, "/with/"),
    }
    for loop in variants.values():
        loop()  # warm up: URL resolving, templates, the dedup memory
    results = interleaved(variants, reps, lambda name: get_writer().discard())
    throughput = {name: requests / median(values) for name, values in results.items()}
    table(
        f"A Django view doing 5 evaluations through the WSGI handler ({requests} requests per "
        f"run from Zipf-distributed visitors, {reps} runs)",
        ["setup", "requests/s (median)", "throughput ratio to bare (paired median)"],
        [
            ["no middleware, bare client", f"{throughput['bare']:.0f}", "1.00x"],
            [
                "no middleware, forwarding client",
                f"{throughput['forwarded']:.0f}",
                f"{1 / paired(results, 'forwarded', 'bare'):.3f}x",
            ],
            [
                "FlagEvaluationMiddleware + request.flags",
                f"{throughput['middleware']:.0f}",
                f"{1 / paired(results, 'middleware', 'bare'):.3f}x",
            ],
        ],
    )


def bench_middleware(reps: int, count: int) -> None:
    """The middleware's own bookkeeping per request, measured without the rest of Django."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from configcat_segment.middleware import FlagEvaluationMiddleware

    response = HttpResponse("ok")

    def view(request: Any) -> HttpResponse:
        getattr(request, "flags", None)
        return response

    wrapped = FlagEvaluationMiddleware(view)
    request = RequestFactory().get("/page/", HTTP_COOKIE="ajs_anonymous_id=visitor-1")

    def run(handler: Callable[[Any], Any]) -> Callable[[], None]:
        def loop() -> None:
            for _ in range(count):
                handler(request)

        return loop

    results = interleaved({"view": run(view), "middleware": run(wrapped)}, reps)
    added = (median(results["middleware"]) - median(results["view"])) / count * 1e6
    table(
        f"FlagEvaluationMiddleware's own work per request (bind, request.flags, hand-off; "
        f"{count:,} requests per run, {reps} runs)",
        ["", "µs per request (median)"],
        [["added by the middleware", f"{added:.2f}"]],
    )


def bench_segment_calls(bare: Any, users: list[Any]) -> None:
    from configcat_segment.evaluations import buffer as writer
    from configcat_segment.evaluations.hook import Recorder

    details: dict[tuple[int, int], Any] = {}
    counted = {"track": 0, "identify": 0}
    real_add = writer.add

    def count(evaluations: Sequence[Any]) -> None:
        for evaluation in evaluations:
            counted["track"] += 1
            counted["identify"] += evaluation.identify

    def simulate(rate: float | None, seconds: float, **overrides: Any) -> list[Any]:
        from dataclasses import replace

        clock = [0.0]
        recorder = Recorder(clock=lambda: clock[0])
        recorder.configure(replace(recorder.settings, **overrides))
        total = 10_000 if rate is None else int(rate * seconds)
        counted.update(track=0, identify=0)
        keys, identities = set(), set()
        for n, (u, f) in enumerate(zipf_draws(total, seed=3)):
            if rate is not None:
                clock[0] = n / rate
            found = details.get((u, f))
            if found is None:
                found = details[u, f] = bare.get_value_details(f"flag{f:02d}", None, users[u])
            keys.add((u, f, found.variation_id))
            identities.add(u)
            recorder.on_flag_evaluated(found)
        ours = counted["track"] + counted["identify"]
        naive = 2 * total
        floor = f"{len(keys) + len(identities):,}" if rate is None else ""
        return [
            f"{total:,}",
            f"{naive:,}",
            f"{ours:,}",
            floor,
            f"{ours / total * 10_000:,.0f}",
            f"{ours / naive:.1%}",
        ]

    writer.add = count
    try:
        rows = [
            ["burst: all at once, default window (300 s)", *simulate(None, 0)],
            ["10 evaluations/s for 1 h, default window", *simulate(10, 3600)],
            ["100 evaluations/s for 1 h, default window", *simulate(100, 3600)],
            ["1,000 evaluations/s for 10 min, default window", *simulate(1000, 600)],
            ["burst, default window, SAMPLE_RATE 0.4", *simulate(None, 0, SAMPLE_RATE=0.4)],
            [
                "burst, window 0 (every evaluation, like the seed)",
                *simulate(None, 0, DEDUP_WINDOW_SECONDS=0),
            ],
        ]
    finally:
        writer.add = real_add
    table(
        f"Segment calls (tracks + identifies) on a Zipf workload ({USERS:,} users, "
        f"{FLAG_COUNT} flags, s = {ZIPF_S}); naive = identify + track per evaluation",
        [
            "workload",
            "evaluations",
            "naive calls",
            "our calls",
            "distinct users + keys",
            "ours per 10,000",
            "ours ÷ naive",
        ],
        rows,
    )


def bench_memory(total: int) -> None:
    from configcatclient.evaluationdetails import EvaluationDetails
    from configcatclient.user import User

    from configcat_segment.evaluations.buffer import get_writer
    from configcat_segment.evaluations.hook import Recorder

    recorder = Recorder()
    writer = get_writer()
    writer.discard()
    checkpoints = {total // 100, total // 10, total // 4, total // 2, total}
    rows = []
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for n in range(1, total + 1):
        user = User(f"user-{n}", email=f"user-{n}@example.com")
        recorder.on_flag_evaluated(EvaluationDetails("flag00", True, "flag00-on", user=user))
        if n in checkpoints:
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - baseline
            rows.append(
                [
                    f"{n:,}",
                    f"{len(recorder.dedup):,}",
                    f"{len(writer):,}",
                    f"{writer.dropped:,}",
                    f"{used / 2**20:.1f}",
                ]
            )
    tracemalloc.stop()
    settings = recorder.settings
    table(
        f"Memory with {total:,} distinct users, one evaluation each, nothing flushing "
        f"(DEDUP_MAX_KEYS {settings.DEDUP_MAX_KEYS:,}, "
        f"EVALUATION_BUFFER_SIZE {settings.EVALUATION_BUFFER_SIZE:,})",
        ["users so far", "dedup keys", "buffered", "dropped (counted)", "traced MiB"],
        rows,
    )
    writer.discard()


def bench_writer(reps: int, count: int) -> None:
    from configcat_segment.evaluations.payloads import Evaluation
    from configcat_segment.evaluations.store import write
    from configcat_segment.models import Event

    now = time.time()
    runs = []
    for rep in range(reps):
        evaluations = [
            Evaluation(
                flag_key="flag00",
                value=True,
                variation_id="flag00-on",
                timestamp=now,
                user=make_user(f"writer-{rep}-{n}", n),
                user_id=f"writer-{rep}-{n}",
                anonymous_id=None,
                context={"page": {"url": "https://x/", "path": "/", "referrer": ""}},
                identify=True,
                window=int(now // 300),
            )
            for n in range(count)
        ]
        runs.append(timed(lambda evaluations=evaluations: write(evaluations)))
    Event.objects.all().delete()
    per = median(runs) / count * 1e6
    table(
        f"The background writer: {count:,} evaluations (identify + track each) into SQLite, "
        f"one connection, {reps} runs",
        ["work", "µs per evaluation (median)", "where"],
        [["build messages + one bulk INSERT", f"{per:.1f}", "writer thread, not the request"]],
    )


# -- setup ------------------------------------------------------------------------------


def _settings() -> Any:
    from django.conf import settings

    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--only", nargs="*", default=[], help="run only these parts")
    args = parser.parse_args()
    reps = 3 if args.quick else 9

    workdir = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    config = workdir / "config_v6.json"
    write_config(config)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        DEBUG="false",
        SECRET_KEY="benchmark-only-not-secret",  # noqa: S106
        ALLOWED_HOSTS="bench.example.com",
        CONFIGCAT_FLAG_OVERRIDES=str(config),
        CONFIGCAT_SEGMENT_DELIVERY="worker",
    )
    import django

    django.setup()
    import logging

    import configcatclient
    from configcatclient.configcatoptions import ConfigCatOptions, Hooks
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour
    from django.core.management import call_command
    from django.test import override_settings
    from segment.analytics import Client as SegmentClient

    import configcat_segment
    from benchmarks import evaluation_views

    logging.getLogger("configcat").setLevel(logging.ERROR)
    call_command("migrate", verbosity=0)
    call_command(
        "configcat_segment_connect",
        "--name=Bench",
        "--write-key=bench-write-key",
        "--region=us",
        stdout=io.StringIO(),
    )
    override_settings(
        ROOT_URLCONF="benchmarks.evaluation_views",
        CONFIGCAT_SEGMENT={
            **_settings().CONFIGCAT_SEGMENT,
            "EVALUATION_WRITER": "manual",
            "USER_FACTORY": "benchmarks.evaluation_views.visitor_user",
        },
    ).enable()

    def local(sdk_key: str, hooks: Any = None) -> Any:
        overrides = LocalFileFlagOverrides(str(config), OverrideBehaviour.LocalOnly)
        return configcatclient.get(sdk_key, ConfigCatOptions(flag_overrides=overrides, hooks=hooks))

    segment = SegmentClient("bench-write-key", send=False)

    def naive_hook(details: Any) -> None:
        """The seed's sample: an identify and a track through analytics-python, every time."""
        user = details.user
        if user is None:
            return
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

    bare = local("bench/bare")
    naive = local("bench/naive", Hooks(on_flag_evaluated=naive_hook))
    forwarded = configcat_segment.get_client()
    evaluation_views.bare_client = bare
    users = [make_user(f"user-{n}", n) for n in range(USERS)]

    print(f"Python {sys.version.split()[0]}, Django {django.get_version()}, {reps} repetitions")
    parts: dict[str, Callable[[], None]] = {
        "hit": lambda: bench_dedup_hit(forwarded, bare, users, reps * 2),
        "first": lambda: bench_first_seen(forwarded, bare, reps * 2, 2000),
        "naive": lambda: bench_naive(forwarded, bare, naive, users, reps),
        "wsgi": lambda: bench_wsgi(reps * 6, 100),
        "middleware": lambda: bench_middleware(reps, 20_000),
        "calls": lambda: bench_segment_calls(bare, users),
        "writer": lambda: bench_writer(3, 2000),
        "memory": lambda: bench_memory(100_000 if args.quick else 1_000_000),
    }
    for name, part in parts.items():
        if not args.only or name in args.only:
            part()


if __name__ == "__main__":
    main()
