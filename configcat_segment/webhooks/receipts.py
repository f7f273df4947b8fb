"""The receipt service: a verified webhook is stored first, then turned into events.

:func:`store` saves the raw request as a :class:`WebhookReceipt` (headers without secrets)
before its body is read; :func:`process` turns it into "Feature Flag Changed" events
(:mod:`.body` reads it, :mod:`.changed` builds the messages) and writes the outcome back to
the receipt, in the caller's transaction, so receipt and events commit together.
:func:`reprocess` runs a stored receipt again (a redelivery after a failure, or an admin).
Nothing here knows about HTTP: the view (:mod:`.views`) and the admin call it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import traceback
from collections.abc import Mapping
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import get_settings
from ..delivery import outbox
from ..models import Event, SegmentConnection, WebhookReceipt
from ..redaction import scrub_headers
from ..text import is_clean
from . import body, changed, retries
from .signing import VerifiedWebhook

logger = logging.getLogger(__name__)

Outcome = WebhookReceipt.Outcome


class AlreadyReceived(Exception):
    """The connection already has a receipt with this webhook id (not an error: the view
    answers that it was received before)."""


def connection_user_id(connection: SegmentConnection) -> str:
    """The ``userId`` of a change whose changer has no email: stable per connection."""
    return f"configcat-segment:{connection.pk}"


def stored_webhook_id(webhook_id: str) -> str:
    """The id as the unique column holds it: ids that cannot fit are stored as a hash."""
    if len(webhook_id) <= 255 and is_clean(webhook_id):
        return webhook_id
    return "sha256:" + hashlib.sha256(webhook_id.encode("utf-8", "replace")).hexdigest()


def store(
    connection: SegmentConnection,
    verified: VerifiedWebhook,
    raw_body: bytes,
    *,
    method: str,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> WebhookReceipt:
    """Save the receipt, or raise :class:`AlreadyReceived` for a redelivered webhook.

    The database decides what is a redelivery: the per-connection unique webhook id
    refuses a second insert, even from a concurrent request (which waits for the first to
    commit). Call it inside ``transaction.atomic()``: the refused insert rolls that block
    back, and only that block, so an ``ATOMIC_REQUESTS`` transaction stays usable.
    """
    return _insert(_new_receipt(connection, verified, raw_body, method, headers, remote_addr))


def _new_receipt(
    connection: SegmentConnection,
    verified: VerifiedWebhook,
    raw_body: bytes,
    method: str,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> WebhookReceipt:
    return WebhookReceipt(
        connection=connection,
        webhook_id=stored_webhook_id(verified.webhook_id),
        webhook_timestamp=verified.timestamp,
        received_at=timezone.now(),
        method=method,
        headers=scrub_headers(headers),
        body=raw_body,
        # Only a signed body can be ConfigCat's retry (a key means it was verified).
        body_sha256=retries.body_hash(raw_body) if connection.signing_keys else "",
        remote_addr=_ip_address(remote_addr),
    )


def _insert(receipt: WebhookReceipt) -> WebhookReceipt:
    try:
        receipt.save(force_insert=True)
    except IntegrityError:
        if not receipt.webhook_id:
            raise
        raise AlreadyReceived(receipt.webhook_id) from None
    return receipt


def receive(
    connection: SegmentConnection,
    verified: VerifiedWebhook,
    raw_body: bytes,
    *,
    method: str,
    headers: Mapping[str, str],
    remote_addr: str | None,
) -> Received:
    """:func:`store` then :func:`process`, in as few statements as they can take. Call it
    inside ``transaction.atomic()``.

    The receipt is inserted first, as processed: nothing reads it before its outcome is
    known (others see it once the transaction commits), and when processing goes as
    planned it is not written again. A receipt that repeats a recent one
    (:func:`.retries.original_of`) is not processed: the caller absorbs it. The events are
    inserted in a savepoint; when that fails, or processing does, the receipt is updated
    with the error, so what a signed sender sent is never lost.
    """
    unsaved = _new_receipt(connection, verified, raw_body, method, headers, remote_addr)
    unsaved.outcome = Outcome.PROCESSED
    receipt = _insert(unsaved)
    original = retries.original_of(receipt)
    if original is not None:
        return Received(receipt, [], original)
    planned = _plan(receipt)
    created: list[Event] = []
    if planned.events:
        try:
            with transaction.atomic():
                created = outbox.enqueue(planned.events)
        except Exception as exc:
            planned = _Planned(Outcome.FAILED, traceback.format_exc(), [], exc)
    if planned.failure is not None:
        logger.error(
            "configcat_segment: processing webhook receipt %s failed",
            receipt.pk,
            exc_info=planned.failure,
        )
    if (planned.outcome, planned.error) != (receipt.outcome, receipt.error):
        receipt.outcome, receipt.error = planned.outcome, planned.error
        WebhookReceipt.objects.filter(pk=receipt.pk).update(
            outcome=receipt.outcome, error=receipt.error
        )
    outbox.announce_changes(receipt.connection, created)
    return Received(receipt, created)


class Received(NamedTuple):
    """What :func:`receive` did: the stored receipt, the events it created, and the
    receipt it repeats, if it is ConfigCat's retry of one (then nothing was processed)."""

    receipt: WebhookReceipt
    created: list[Event]
    original: WebhookReceipt | None = None


class _Planned(NamedTuple):
    outcome: str
    error: str
    events: list[Event]
    failure: Exception | None = None


def _plan(receipt: WebhookReceipt) -> _Planned:
    """What processing ``receipt`` will write, without writing anything: its outcome and
    its events (unsaved). A failure is the outcome, with its traceback."""
    try:
        return _Planned(*_forward(receipt, again=False, write=False))
    except Exception as exc:
        return _Planned(Outcome.FAILED, traceback.format_exc(), [], exc)


def process(receipt: WebhookReceipt, *, again: bool = False) -> list[Event]:
    """Turn a stored receipt into events and write the outcome back to it.

    Call it inside the transaction that stored the receipt, so both commit together (or
    use :func:`reprocess`). Problems in the body are recorded, not raised; an unexpected
    error rolls the events back and leaves the receipt ``failed`` with the traceback.
    With ``again``, events that already exist are not created twice. Returns the events
    created.
    """
    created: list[Event] = []
    try:
        with transaction.atomic():
            outcome, error, created = _forward(receipt, again=again)
    except Exception:
        logger.exception("configcat_segment: processing webhook receipt %s failed", receipt.pk)
        outcome, error = Outcome.FAILED, traceback.format_exc()
    receipt.outcome, receipt.error = outcome, error
    WebhookReceipt.objects.filter(pk=receipt.pk).update(outcome=outcome, error=error)
    outbox.announce_changes(receipt.connection, created)
    return created


def reprocess(receipt: WebhookReceipt) -> WebhookReceipt:
    """Process a stored receipt again; returns it updated.

    For a redelivered webhook whose processing failed, or an admin's "reprocess": the
    messageIds are deterministic, so events that were created before are not duplicated,
    and the connection is taken as it is now. The receipt's row is locked meanwhile, so
    two concurrent reprocessings of it run one after the other.
    """
    with transaction.atomic():
        locked = (
            WebhookReceipt.objects.select_for_update()
            .select_related("connection")
            .get(pk=receipt.pk)
        )
        process(locked, again=True)
    return locked


def _ip_address(remote_addr: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(remote_addr or ""))
    except ValueError:
        return None


def _forward(
    receipt: WebhookReceipt, *, again: bool, write: bool = True
) -> tuple[str, str, list[Event]]:
    """The outcome, its problems, and the events: written, or (``write=False``) not yet."""
    connection = receipt.connection
    if not connection.connected:
        return Outcome.IGNORED, "The connection is disconnected: nothing was forwarded.", []
    if not connection.forward_changes:
        return Outcome.IGNORED, "The connection does not forward flag changes.", []
    change, problems = body.parse(
        bytes(receipt.body), max_changes=get_settings().MAX_CHANGES_PER_WEBHOOK
    )
    messages = changed.flag_changed_messages(
        change,
        key=receipt.webhook_id or f"receipt-{receipt.pk}",
        timestamp=receipt.webhook_timestamp or receipt.received_at,
        salt=connection.message_id_salt,
        product_id=connection.product_id,
        product_name=connection.product_name,
        fallback_user_id=connection_user_id(connection),
    )
    events = [
        outbox.build_event(connection, item.message, flag_key=item.flag_key, receipt=receipt)
        for item in messages
    ]
    if again:
        # Only this receipt makes these ids, and its row is locked: the lookup cannot race.
        existing = set(
            Event.objects.filter(message_id__in=[e.message_id for e in events]).values_list(
                "message_id", flat=True
            )
        )
        events = [e for e in events if e.message_id not in existing]
    created = outbox.enqueue(events) if write else events
    outcome = Outcome.PROCESSED_WITH_ERRORS if problems else Outcome.PROCESSED
    return outcome, "\n".join(problems), created
