"""ConfigCat's retries of a webhook, absorbed.

``X-ConfigCat-Webhook-ID`` is unique per request: a retry (after a slow 2xx that
ConfigCat timed out, say) may carry a new id, which the receipts' unique webhook id does
not catch. Its body, though, is the same bytes. So a signed webhook whose non-empty body
is identical to one its connection received and processed less than
``WEBHOOK_DUPLICATE_SECONDS`` ago is stored as a ``duplicate`` receipt linking to that
original, answered 2xx, and creates nothing.

The trade-off: two genuinely identical changes (the same person, notes and details) within
the window arrive as one. Reconciliation with the audit log, when it is on, sees both
entries against one webhook and forwards the other (see :mod:`..reconcile.matching`).
Empty bodies (GET webhooks) are never compared: they are all alike; nor are unsigned
webhooks (``ALLOW_UNSIGNED_WEBHOOKS``), which anyone could have sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.utils.translation import gettext as _
from rest_framework.response import Response

from ..conf import get_settings
from ..models import SegmentConnection, WebhookReceipt

Outcome = WebhookReceipt.Outcome
ORIGINAL_OUTCOMES = (Outcome.PROCESSED, Outcome.PROCESSED_WITH_ERRORS)


def body_hash(body: bytes) -> str:
    """What identical bodies are found by ("" for an empty one: never compared)."""
    return hashlib.sha256(body).hexdigest() if body else ""


def original_of(receipt: WebhookReceipt) -> WebhookReceipt | None:
    """The receipt ``receipt`` repeats, or None. Call it in the transaction that stored
    ``receipt``: on PostgreSQL it waits for another webhook of the connection being
    processed, so of two identical bodies arriving at once one is the original."""
    seconds = get_settings().WEBHOOK_DUPLICATE_SECONDS
    if not seconds or not receipt.body_sha256:
        return None
    # FOR NO KEY UPDATE: webhooks of a connection one at a time; events may still be
    # written for it meanwhile (their foreign key takes only a key-share lock).
    list(
        SegmentConnection.objects.select_for_update(no_key=True)
        .filter(pk=receipt.connection_id)
        .values_list("pk", flat=True)
    )
    return (
        WebhookReceipt.objects.filter(
            connection_id=receipt.connection_id,
            body_sha256=receipt.body_sha256,
            received_at__gte=receipt.received_at - dt.timedelta(seconds=seconds),
            outcome__in=ORIGINAL_OUTCOMES,
            duplicate_of__isnull=True,
        )
        .exclude(pk=receipt.pk)
        .order_by("-received_at", "-pk")
        .first()
    )


def absorb(receipt: WebhookReceipt, original: WebhookReceipt) -> Response:
    """Mark ``receipt`` as a retry of ``original``; the 2xx answer that tells ConfigCat
    to stop."""
    seconds = max(0, round((receipt.received_at - original.received_at).total_seconds()))
    detail = _(
        "The same body was received %(seconds)s s ago (receipt %(original)s): this is "
        "taken as ConfigCat's retry of it, and nothing new was created."
    ) % {"seconds": seconds, "original": original.pk}
    receipt.outcome, receipt.error, receipt.duplicate_of = Outcome.DUPLICATE, detail, original
    WebhookReceipt.objects.filter(pk=receipt.pk).update(
        outcome=Outcome.DUPLICATE, error=detail, duplicate_of=original
    )
    return Response(
        {
            "status": "duplicate",
            "receipt": receipt.pk,
            "duplicate_of": original.pk,
            "detail": detail,
        }
    )
