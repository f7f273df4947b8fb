"""Signals for projects that want to react to what this app does.

All are sent after the database transaction that caused them has committed, on the thread
that ran it: ``event_delivered`` and ``connection_healthy`` may come from a delivery lane's
settling thread (PostgreSQL, a backlog), so do not rely on thread-locals or context
variables set elsewhere.

``flag_changed``
    One per "Feature Flag Changed" event created from a ConfigCat webhook, or from
    ConfigCat's audit log by reconciliation (``event.source == "audit_log"``).
    ``sender`` is ``SegmentConnection``; arguments: ``connection``, ``event``.
``event_delivered``
    Once per batch Segment accepted. ``sender`` is ``Event``; arguments: ``events``
    (a list of delivered ``Event`` rows).
``event_dead``
    Once per group of events that will not be retried any more. ``sender`` is ``Event``;
    arguments: ``events`` (a list), each with its ``last_error``.
``connection_unhealthy``
    When Segment starts refusing a connection (its write key or endpoint: 401, 403, a
    gateway refusing everything); once per episode, not per failed request. ``sender`` is
    ``SegmentConnection``; arguments: ``connection``, ``reason``.
``connection_healthy``
    When such a connection works again (Segment accepted a batch, or its credentials
    were changed). ``sender`` is ``SegmentConnection``; argument: ``connection``.

``docs/operations.md`` shows how to forward them to Slack, PagerDuty and the like; the
app's own mail alerts (``ALERT_EMAILS``) listen to ``event_dead`` and
``connection_unhealthy``. Test events sent from the admin send none of them.
"""

from __future__ import annotations

from django.dispatch import Signal

# Send them with ``send_robust``: a project's receiver that raises is logged by Django
# (logger ``django.dispatch``) and must never undo or stop the app's own work.
flag_changed = Signal()
event_delivered = Signal()
event_dead = Signal()
connection_unhealthy = Signal()
connection_healthy = Signal()
