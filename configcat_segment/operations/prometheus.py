"""The metrics in Prometheus's format, through ``prometheus-client`` (an optional extra).

:class:`DatabaseCollector` reports :func:`.metrics.collect` at each scrape, so it is right
under any number of processes by construction. Two more metrics can only be counted where
they happen, in the process that sends: requests to Segment by status code, and their
duration. They are counted through the transport's observer hook into prometheus-client's
own metrics, which add up across processes only in its multiprocess mode: set the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory, shared by the web
and worker processes of a machine, before they start. Without it the metrics URL leaves
them out rather than report one random process's count (a project scraping each process on
its own can still read them from prometheus-client's default registry).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..segment import transport
from . import metrics

MULTIPROCESS_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)


class DatabaseCollector(Collector):
    """Everything :func:`.metrics.collect` reads, as Prometheus metric families."""

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        for family in metrics.collect():
            yield convert(family)


def convert(family: metrics.Family) -> Metric:
    labels = list(family.labels)
    result: GaugeMetricFamily | CounterMetricFamily | GaugeHistogramMetricFamily
    if family.kind == "gaugehistogram":
        histogram = GaugeHistogramMetricFamily(family.name, family.documentation, labels=labels)
        for values, buckets, total in family.histograms:
            histogram.add_metric(list(values), [(_bound(le), float(n)) for le, n in buckets], total)
        return histogram
    if family.kind == "counter":
        result = CounterMetricFamily(family.name, family.documentation, labels=labels)
    else:
        result = GaugeMetricFamily(family.name, family.documentation, labels=labels)
    for values, value in family.samples:
        result.add_metric(list(values), value)
    return result


def _bound(value: float) -> str:
    """A bucket's upper bound as Prometheus writes it: ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(value) else repr(float(value))


def multiprocess_dir() -> str | None:
    for name in MULTIPROCESS_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def registry() -> CollectorRegistry:
    """A registry for one scrape: the database, plus the processes' request counters in
    multiprocess mode."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(DatabaseCollector())
    if multiprocess_dir():
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
    return scrape


def respond(request: HttpRequest) -> HttpResponse:
    try:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    except (TypeError, ValueError):  # prometheus-client fails on "version=abc"
        encoder, content_type = choose_encoder("")  # as if it had not asked: the text format
    return HttpResponse(encoder(registry()), content_type=content_type)


# -- counted where requests are sent -----------------------------------------------------

_lock = threading.Lock()
_requests: Counter | None = None
_durations: Histogram | None = None


def install() -> None:
    """Count every request to Segment (idempotent)."""
    global _requests, _durations
    with _lock:
        if _requests is None:
            _requests = Counter(
                f"{metrics.PREFIX}_requests",
                "Requests to Segment's Tracking API, by host and HTTP status ('none': no answer).",
                ["host", "code"],
                registry=REGISTRY,
            )
            _durations = Histogram(
                f"{metrics.PREFIX}_request_duration_seconds",
                "How long requests to Segment's Tracking API took, by host.",
                ["host"],
                buckets=REQUEST_BUCKETS,
                registry=REGISTRY,
            )
    transport.add_observer(observe)


def observe(endpoint: str, answer: transport.Answer, seconds: float, messages: int) -> None:
    if _requests is None or _durations is None:
        return
    host = urlsplit(endpoint).netloc or endpoint
    code = str(answer.status) if answer.status is not None else "none"
    _requests.labels(host=host, code=code).inc()
    _durations.labels(host=host).observe(seconds)
