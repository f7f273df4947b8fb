"""What each exposure, experiment and privacy control sends, on one workload. Counts only.

    .venv/bin/python benchmarks/exposure.py [--evaluations 10000] [--visitors 100 --reloads 5]

1. One Zipf stream (10,000 evaluations, 1,000 users, 20 flags with targeting rules and
   percentage options, as in benchmarks/evaluations.py), evaluated once by the real SDK,
   forwarded to several connections at once, each with one control set in the admin's
   fields. Every connection gets the same evaluations, so the counts compare directly.
2. Anonymous visitors (no analytics.js, no session) reloading the demo's home page, which
   evaluates every flag: the tracked users (anonymous ids) and messages they cost, with
   ``SET_ANONYMOUS_ID_COOKIE`` off and on.

A throwaway SQLite database; nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.evaluations import (  # noqa: E402
    FLAG_COUNT,
    USERS,
    make_user,
    table,
    write_config,
    zipf,
    zipf_draws,
)

# One connection per control: (label, fields).
CONTROLS: list[tuple[str, dict[str, str]]] = [
    ("default: every evaluation, everything", {}),
    ('exposures "decided" (a rule or a percentage option)', {"exposure_policy": "decided"}),
    ("allowlist flag0* (10 of 20 flags)", {"flag_allowlist": "flag0*"}),
    ("denylist flag1[0-4] (5 of 20 flags)", {"flag_denylist": "flag1[0-4]"}),
    ("per-flag sample rate 0.1 on flag0?", {"flag_sample_rates": "flag0? 0.1"}),
    ("per-flag policy: flag0? decided", {"flag_exposure_policies": "flag0? decided"}),
    ('"Experiment Viewed" as well', {"experiment_viewed": "also"}),
    ('"Experiment Viewed" instead', {"experiment_viewed": "instead"}),
    (
        '"decided" + "Experiment Viewed" instead',
        {"exposure_policy": "decided", "experiment_viewed": "instead"},
    ),
    ("personal data: hashed", {"personal_data": "hashed"}),
    (
        "personal data: allowlist Country, plan",
        {"personal_data": "allowlist", "personal_data_attributes": "Country, plan"},
    ),
]


def setup(workdir: Path) -> Path:
    config = workdir / "config_v6.json"
    write_config(config)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'exposure.sqlite3'}",
            "CONFIGCAT_FLAG_OVERRIDES": str(config),
            "CONFIGCAT_SEGMENT_DELIVERY": "worker",
        }
    )
    import project.settings as demo

    demo.CONFIGCAT_SEGMENT["EVALUATION_WRITER"] = "manual"
    demo.CONFIGCAT_SEGMENT["EVALUATION_BUFFER_SIZE"] = 1_000_000
    demo.LOGGING["root"]["level"] = "ERROR"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return config


def bench_controls(evaluations: int) -> None:
    import configcat_segment
    from configcat_segment.models import Event, SegmentConnection

    connections = []
    for n, (label, fields) in enumerate(CONTROLS):
        connection = SegmentConnection(
            name=label[:100], write_key=f"wk_bench_{n:02d}_0123456789", region="us", **fields
        )
        connection.full_clean()
        connection.save()
        connections.append(connection)
    users = [make_user(f"user-{n}", n) for n in range(USERS + 1)]
    client = configcat_segment.get_client()
    for u, f in zipf_draws(evaluations):
        client.get_value(f"flag{f:02d}", None, users[u])
    configcat_segment.flush()

    counts: dict[Any, Counter[str]] = {c.pk: Counter() for c in connections}
    sizes: Counter[Any] = Counter()
    for connection_id, kind, event_name, payload in Event.objects.values_list(
        "connection_id", "type", "event_name", "payload"
    ):
        counts[connection_id][event_name or kind] += 1
        sizes[connection_id] += len(json.dumps(payload).encode())
    baseline = sum(counts[connections[0].pk].values())
    rows = []
    for connection in connections:
        found = counts[connection.pk]
        total = sum(found.values())
        rows.append(
            [
                connection.name,
                f"{found['Feature Flag Evaluated']:,}",
                f"{found['Experiment Viewed']:,}",
                f"{found['identify']:,}",
                f"{total:,}",
                f"{total / baseline:.1%}",
                f"{sizes[connection.pk] / max(total, 1):,.0f}",
            ]
        )
    table(
        f"One Zipf stream ({evaluations:,} evaluations, {USERS:,} users, {FLAG_COUNT} flags, "
        "default dedup window) to one connection per control",
        [
            "connection's control",
            "Feature Flag Evaluated",
            "Experiment Viewed",
            "identify",
            "messages",
            "of the default",
            "bytes per message",
        ],
        rows,
    )


def bench_visitors(visitors: int, reloads: int) -> None:
    import random

    from django.test import Client, override_settings

    import configcat_segment
    from configcat_segment.conf import get_settings
    from configcat_segment.evaluations.hook import recorder
    from configcat_segment.models import EvaluationCounter, Event, SegmentConnection

    # One Segment source: the default connection of bench_controls.
    SegmentConnection.objects.exclude(
        pk=SegmentConnection.objects.order_by("created_at")[0].pk
    ).delete()
    rows = []
    for cookie in (False, True):
        Event.objects.all().delete()
        EvaluationCounter.objects.all().delete()
        recorder.reset()
        settings = {**get_settings().__dict__, "SET_ANONYMOUS_ID_COOKIE": cookie}
        rng = random.Random(3)
        visitor = zipf(visitors, rng)
        browsers = [Client(HTTP_HOST="localhost") for _ in range(visitors)]
        with override_settings(CONFIGCAT_SEGMENT=settings):
            for _ in range(visitors * reloads):
                response = browsers[visitor() - 1].get("/")
                assert response.status_code == 200
            configcat_segment.flush()
        tracks = Event.objects.filter(type="track")
        ids = {e.payload["anonymousId"] for e in tracks}
        random_ids = EvaluationCounter.objects.totals().get("random_anonymous_ids", 0)
        rows.append(
            [
                "on" if cookie else "off (the default)",
                f"{visitors * reloads:,}",
                f"{len(ids):,}",
                f"{random_ids:,}",
                f"{tracks.count():,}",
            ]
        )
    table(
        f"Anonymous visitors without analytics.js (Zipf over {visitors} browsers, "
        f"{visitors * reloads} page views, {FLAG_COUNT} flags evaluated per page)",
        [
            "SET_ANONYMOUS_ID_COOKIE",
            "page views",
            "anonymous ids = tracked users",
            "counted as random (status, event log)",
            "messages",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--visitors", type=int, default=100)
    parser.add_argument("--reloads", type=int, default=5)
    args = parser.parse_args()
    setup(Path(tempfile.mkdtemp(prefix="configcat_segment_exposure_")))
    bench_controls(args.evaluations)
    bench_visitors(args.visitors, args.reloads)


if __name__ == "__main__":
    main()
