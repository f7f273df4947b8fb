"""Fixtures for delivery tests: a Segment-compatible server, connections to it, a fake clock."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db.models import Max, Min
from django.test import override_settings
from django.utils import timezone

from configcat_segment.conf import get_settings
from configcat_segment.delivery import outbox
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.segment import payloads as messages
from tests.segment_server import SegmentServer


@pytest.fixture
def segment_server() -> Iterator[SegmentServer]:
    with SegmentServer() as server:
        yield server


@pytest.fixture
def connect_to(
    make_connection: Callable[..., SegmentConnection],
) -> Callable[..., SegmentConnection]:
    """A connection whose endpoint is ``server``, with a write key the server accepts."""

    def connect(
        server: SegmentServer, *, accepted: bool = True, **fields: Any
    ) -> SegmentConnection:
        connection = make_connection(region="custom", custom_endpoint=server.url, **fields)
        if accepted:
            server.write_keys.add(connection.write_key)
        return connection

    return connect


@pytest.fixture
def delivery_settings() -> Iterator[Callable[..., None]]:
    """``delivery_settings(BATCH_SIZE=10, ...)``: override delivery settings for the test."""
    overrides: list[Any] = []

    def apply(**values: Any) -> None:
        merged = {**get_settings().__dict__, **values}
        override = override_settings(CONFIGCAT_SEGMENT=merged)
        override.enable()
        overrides.append(override)

    yield apply
    for override in reversed(overrides):
        override.disable()


class FakeClock:
    """A clock the test moves by hand: the dispatcher's idea of now.

    It starts a minute ahead of the real clock, so events the test writes are due.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or timezone.now() + dt.timedelta(minutes=1)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)

    def move_to(self, moment: dt.datetime) -> None:
        self.current = max(self.current, moment)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def track(n: int, *, message_id: str | None = None, **properties: Any) -> dict[str, Any]:
    """A "Feature Flag Changed" message for user ``user-<n>``, messageId ``m<n>`` by default."""
    return messages.track(
        event="Feature Flag Changed",
        properties={"feature_flag_key": f"flag_{n % 7}", "value": n, **properties},
        user_id=f"user-{n}",
        timestamp=timezone.now(),
        message_id=message_id or f"m{n}",
    )


def message_id(connection: SegmentConnection, n: int) -> str:
    return f"{connection.name.replace(' ', '')}-{n}"


def enqueue(
    connection: SegmentConnection, numbers: Iterable[int], *, now: dt.datetime | None = None
) -> list[Event]:
    """Write a pending event per number, messageId ``message_id(connection, n)``."""
    now = now or timezone.now()
    return outbox.enqueue(
        [
            outbox.build_event(connection, track(n, message_id=message_id(connection, n)), now=now)
            for n in numbers
        ]
    )


def deliver_until_done(dispatcher: Any, clock: FakeClock, max_rounds: int = 1000) -> None:
    """Deliver what is due; jump the clock to the next retry or the end of a pause; until
    nothing waits."""
    for _ in range(max_rounds):
        dispatcher.deliver_due()
        waiting = Event.objects.filter(status__in=["pending", "failed"])
        next_attempt = waiting.aggregate(at=Min("next_attempt_at"))["at"]
        if next_attempt is None:
            return
        paused = SegmentConnection.objects.aggregate(until=Max("delivery_paused_until"))
        clock.move_to(max(next_attempt, paused["until"] or next_attempt))
    raise AssertionError("still not delivered")


def statuses(**filters: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Event.objects.filter(**filters).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


# -- processes started by tests ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SAFETY_SECONDS = 60  # bounded waits: only ever reached when something is broken


def subprocess_env(**settings: Any) -> dict[str, str]:
    """Environment for a process that must use this test's database (commit your data:
    ``transactional_db``) with ``CONFIGCAT_SEGMENT`` overrides."""
    database = {
        key: value
        for key, value in db_connection.settings_dict.items()
        if key in {"ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS"}
    }
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.delivery.subprocess_settings",
        "CONFIGCAT_SEGMENT_TEST_DATABASE": json.dumps(database),
        "CONFIGCAT_SEGMENT_TEST_SETTINGS": json.dumps(settings),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_process() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python ARGS...`` in the repository; whatever is still running is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=SAFETY_SECONDS)


def wait_for(condition: Callable[[], bool], timeout: float = SAFETY_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a safety net)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(0.02)
