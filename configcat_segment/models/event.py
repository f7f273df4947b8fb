"""The events table: every Segment message, written before it is sent (the outbox) and
kept after (the log). Its statuses, and the sets of them each job works on, are named here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..constants import EXPERIMENT_VIEWED, FLAG_CHANGED, FLAG_EVALUATED
from .connection import SegmentConnection
from .lookups import AnyOf, InConstants
from .receipt import WebhookReceipt


class EventStatus(models.TextChoices):
    """Where an event is on its way to Segment (``Event.Status``)."""

    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead")


# Sent by the dispatcher once their next attempt is due (``Event.DUE``). Named outside the
# model because its Meta, which cannot see the model's names, indexes exactly these.
DUE_STATUSES = (EventStatus.PENDING, EventStatus.FAILED)


SOURCE_WEBHOOK = "webhook"
SOURCE_AUDIT_LOG = "audit_log"
SOURCE_LABELS = {SOURCE_WEBHOOK: _("webhook"), SOURCE_AUDIT_LOG: _("audit log")}
_NOT_READ = object()


class EventQuerySet(models.QuerySet["Event"]):
    def due(self, now: Any = None) -> EventQuerySet:
        """Events the dispatcher should send now."""
        now = now or timezone.now()
        return self.filter(status__in_constants=Event.DUE, next_attempt_at__lte=now)


class Event(models.Model):
    """One Segment message: written before it is sent, kept as the log after."""

    class Type(models.TextChoices):
        TRACK = "track", _("track")
        IDENTIFY = "identify", _("identify")

    Status = EventStatus

    # The sets of statuses each job works on, named once.
    DUE: ClassVar[tuple[EventStatus, ...]] = DUE_STATUSES
    # Still needing something (or someone): what the event log counts per connection.
    WAITING: ClassVar[tuple[EventStatus, ...]] = (Status.PENDING, Status.FAILED, Status.DEAD)
    # Queued again by a retry (the event log, the admin), and by a replay.
    RETRYABLE: ClassVar[tuple[EventStatus, ...]] = (Status.FAILED, Status.DEAD)
    REPLAYABLE: ClassVar[tuple[EventStatus, ...]] = (Status.DELIVERED,)
    # What ``configcat_segment_requeue --status`` accepts.
    REQUEUABLE: ClassVar[tuple[EventStatus, ...]] = (Status.DEAD, Status.FAILED, Status.DELIVERED)

    # No index of its own: cs_event_conn_newest starts with it (the cascade from a deleted
    # connection and every "this connection's events" read that one).
    connection = models.ForeignKey(
        SegmentConnection, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(max_length=10, choices=Type.choices)
    event_name = models.CharField(_("event"), max_length=200, blank=True)
    flag_key = models.CharField(_("flag key"), max_length=255, blank=True)
    user_id = models.CharField(
        _("user id"), max_length=255, blank=True, help_text=_("userId, else anonymousId.")
    )
    # Unique: an event written twice (a retried webhook, reconciliation) is written once.
    # (Django's PostgreSQL-only prefix index beside it, for LIKE 'x%', is dropped by 0013:
    # nothing looks a messageId up by prefix.)
    message_id = models.CharField(_("Segment messageId"), max_length=100, unique=True)
    payload = models.JSONField(_("message"), help_text=_("The exact message sent to Segment."))

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # When the event last entered the queue: its creation, or a retry / replay. The
    # maximum age is counted from here, so a requeued old event gets a fair chance.
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    receipt = models.ForeignKey(
        WebhookReceipt,
        verbose_name=_("webhook receipt"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,  # cs_event_receipt, partial: evaluations have no receipt
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        # Every index costs writes: on each insert (evaluations: thousands a second) and
        # each settle (on SQLite, the indexes holding a column it changes; on PostgreSQL,
        # all of them: a new status makes a new row version), a partial one only for the
        # rows it holds. So each one names the page or query that needs it (0013).
        indexes = [
            # The dispatcher's claim and "which connections have due events" (claims.py);
            # partial, so it stays small as delivered rows pile up.
            models.Index(
                fields=["connection", "next_attempt_at"],
                condition=Q(status__in=list(DUE_STATUSES)),
                name="cs_event_conn_due",
            ),
            # Event log filtered by connection, newest first; deleting a connection's events.
            models.Index(fields=["connection", "-id"], name="cs_event_conn_newest"),
            # Event log filtered by status alone, newest first, every connection.
            models.Index(fields=["status", "-id"], name="cs_event_status_newest"),
            # Event log filtered by flag key (and any status but dead), newest first.
            models.Index(fields=["flag_key", "-id"], name="cs_event_flag_newest"),
            # Event log: "dead + one flag key", where repairs start. Partial: an event enters
            # it once, when it dies; writing and delivering events never touch it.
            models.Index(
                fields=["flag_key", "-id"],
                condition=Q(status=EventStatus.DEAD),
                name="cs_event_flag_dead",
            ),
            # Event log filtered by user id, newest first.
            models.Index(fields=["user_id", "-id"], name="cs_event_user_newest"),
            # The event log's From / Until filters (the chart's links to an hour); changes
            # forwarded from the audit log in the metrics window (operations/reconciliation.py);
            # on PostgreSQL, dead events of the last hours (operations/check.py).
            models.Index(fields=["created_at", "status"], name="cs_event_created_status"),
            # Per connection and status: the overview's last failed / dead event, the oldest
            # waiting event (operations/health.py), the metrics' counts, a connection's
            # failed events (delivery/claims.py, credentials.py); the event log's
            # connection + status page (the overview's count links).
            models.Index(
                fields=["status", "connection", "-id"], name="cs_event_status_conn_newest"
            ),
            # Each connection's last delivery (overview, metrics' latency); partial: an
            # event enters it when it is delivered, not when it is written.
            models.Index(
                fields=["connection", "delivered_at"],
                condition=Q(delivered_at__isnull=False),
                name="cs_event_conn_delivered_at",
            ),
            # A receipt's events (the webhook's redelivery answer, reconciliation's webhook
            # changes) and SET NULL when a receipt is deleted; partial: evaluations, most
            # events, have no receipt and never enter it.
            models.Index(
                fields=["receipt"],
                condition=Q(receipt__isnull=False),
                name="cs_event_receipt",
            ),
        ]

    def __str__(self) -> str:
        label = self.event_name or self.type
        return f"{label} {self.flag_key}".strip() + f" [{self.status}]"

    @property
    def is_queued(self) -> bool:
        """Whether it waits in the outbox to be sent: pending, or failed and to be retried
        (an event being sent right now is too: its lease is in ``EventClaim``, not here)."""
        return self.status in self.DUE

    @property
    def source(self) -> str:
        """Where a "Feature Flag Changed" event came from: ``webhook`` or ``audit_log``
        (reconciliation marks its messages); "" for other events. The event log's queries
        annotate ``source_marker`` so a deferred payload is not loaded for it."""
        if self.event_name != FLAG_CHANGED:
            return ""
        marker = self.__dict__.get("source_marker", _NOT_READ)
        if marker is _NOT_READ:
            properties = self.payload.get("properties") if isinstance(self.payload, dict) else {}
            marker = properties.get("source") if isinstance(properties, dict) else None
        return event_source(self.event_name, marker)

    @property
    def source_display(self) -> str:
        return str(SOURCE_LABELS.get(self.source, ""))

    @property
    def kind(self) -> str:
        """``changed``, ``evaluated``, ``experiment`` or ``identify``: what the event log shows."""
        return event_kind(self.type, self.event_name)


def event_kind(type_: str, event_name: str) -> str:
    """:attr:`Event.kind` from an event's ``type`` and ``event_name``."""
    if type_ == Event.Type.IDENTIFY:
        return "identify"
    return _KINDS.get(event_name, event_name)


def event_source(event_name: str, marker: Any) -> str:
    """:attr:`Event.source` from an event's ``event_name`` and its message's
    ``properties.source`` (the ``source_marker`` the event log's queries annotate)."""
    if event_name != FLAG_CHANGED:
        return ""
    return SOURCE_AUDIT_LOG if marker == SOURCE_AUDIT_LOG else SOURCE_WEBHOOK


_KINDS = {FLAG_CHANGED: "changed", FLAG_EVALUATED: "evaluated", EXPERIMENT_VIEWED: "experiment"}


# The outbox's queries name the statuses of its partial index in their SQL (see lookups).
Event._meta.get_field("status").register_lookup(InConstants)
# The dispatcher settles its claimed events by their keys, 500 at a time, as one parameter.
Event._meta.get_field("id").register_lookup(AnyOf)


class EventLog(Event):
    """No data of its own: puts the event log page on the admin index (its admin redirects)."""

    class Meta:
        proxy = True
        verbose_name = _("event log")
        verbose_name_plural = _("event log")
