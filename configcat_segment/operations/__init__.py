"""Knowing from outside whether forwarding works.

``health`` answers "is every connected connection delivering, and in time?" from one
indexed query, for the JSON endpoint ``configcat-segment/health/``, for ``manage.py
configcat_segment_status --check`` (``check``) and for the metrics. ``metrics`` exposes the
outbox to Prometheus (``pip install configcat-segment[prometheus]``), read from the database
at scrape time so that every process, and every machine, gives the same answer. ``alerts``
mails the site's ``ADMINS`` when a connection turns unhealthy or events go dead, at most
once per connection per interval. ``probe`` sends the admin's "Send test event" through the
same transport as real delivery, and ``advice`` explains its answer in words. ``access`` lets
a staff session or the monitoring token in. :func:`install` wires it all up from
``AppConfig.ready()``; ``docs/operations.md`` is the user's guide.
"""

from __future__ import annotations

import importlib.util


def install() -> None:
    """Connect the alert receivers, register the system checks and reconciliation's
    metrics and, when ``prometheus-client`` is installed, count requests to Segment.
    Idempotent."""
    from . import alerts, checks, metrics, reconciliation

    alerts.connect_signals()
    checks.register()
    metrics.add_source(reconciliation.families)
    if importlib.util.find_spec("prometheus_client") is not None:
        from . import prometheus

        prometheus.install()
