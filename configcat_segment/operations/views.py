"""The monitoring endpoints: ``health/`` (in the app's URLs) and the Prometheus metrics."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import health as health_report
from .access import monitoring_view

logger = logging.getLogger(__name__)


@monitoring_view
def health(request: HttpRequest) -> HttpResponse:
    """200 when every connected connection delivers in time, else 503 naming which and why."""
    try:
        report = health_report.report()
    except DatabaseError:
        logger.exception("configcat_segment: the health check could not read the database")
        return JsonResponse(
            {"status": "error", "problem": "The database did not answer (see the logs)."},
            status=503,
        )
    return JsonResponse(
        report.as_json(), status=200 if report.ok else 503, json_dumps_params={"indent": 2}
    )


@monitoring_view
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition (text, or OpenMetrics when the scraper asks for it)."""
    try:
        from . import prometheus
    except ImportError:
        return HttpResponse(
            "prometheus-client is not installed: pip install configcat-segment[prometheus]",
            status=501,
            content_type="text/plain; charset=utf-8",
        )
    try:
        return prometheus.respond(request)
    except DatabaseError:
        logger.exception("configcat_segment: the metrics could not read the database")
        return HttpResponse(
            "The database did not answer (see the logs).",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
