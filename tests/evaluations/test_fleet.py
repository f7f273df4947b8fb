"""Processes that forward the same evaluations share nothing but the outbox: on PostgreSQL,
their writers insert the same messageIds at once, and must neither deadlock nor lose any.

(benchmarks/fleet.py measures the same with 4 and 16 real processes.)
"""

from __future__ import annotations

import random

import pytest
from configcatclient.user import User

from configcat_segment.evaluations.store import write
from configcat_segment.models import EvaluationCounter, Event

from ..threads import run_together
from .test_writer import evaluation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_writers_inserting_the_same_ids_in_any_order_neither_deadlock_nor_lose_any(
    segment_connection,
):
    users = [User(f"user-{n}") for n in range(400)]
    evaluations = [
        evaluation(f"flag{n % 7}", users[n % len(users)], identify=n < len(users))
        for n in range(2400)
    ]
    shuffled = list(evaluations)
    random.Random(5).shuffle(shuffled)
    orders = [evaluations, list(reversed(evaluations)), shuffled, list(reversed(shuffled))]
    results = run_together(write, [(batch,) for batch in orders])
    assert all(r.unwritable == [] for r in results), results
    distinct = {(e.user_id, e.flag_key) for e in evaluations}
    assert Event.objects.filter(type="track").count() == len(distinct)
    assert Event.objects.filter(type="identify").count() == len(users)
    assert EvaluationCounter.objects.totals().get("unwritable", 0) == 0
