"""Never miss a change: reconcile with ConfigCat's audit log.

A change reaches Segment only if ConfigCat's webhook reaches us. With a ConfigCat Public
API credential on a connection, :func:`run_due` (called periodically by every delivery
backend) and ``manage.py configcat_segment_reconcile`` read the product's audit log and
forward the setting changes no webhook delivered. See docs/configcat-webhooks.md,
"Missed changes and retries".
"""

from __future__ import annotations

from .run import Busy, Outcome, reconcilable, reconcile, run_due

__all__ = ["Busy", "Outcome", "reconcilable", "reconcile", "run_due"]
