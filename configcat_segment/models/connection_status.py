"""Whether a connection is connected, and whether Segment accepts it: the fields and the
changes to them, as a group.

The connect / disconnect buttons and the dispatcher keep these fields, never a form.
Health changes send ``connection_unhealthy`` / ``connection_healthy`` once the transaction
commits. An abstract model: the fields are :class:`.connection.SegmentConnection`'s, in
its table.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, ClassVar

from django.conf import settings
from django.db import models, router, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..signals import connection_healthy, connection_unhealthy


class ConnectionStatus(models.Model):
    # Kept by the connect / disconnect buttons and by the dispatcher, never by a form.
    HISTORY_FIELDS: ClassVar[tuple[str, ...]] = (
        "connected",
        "connected_at",
        "connected_by",
        "disconnected_at",
        "disconnected_by",
    )
    HEALTH_FIELDS: ClassVar[tuple[str, ...]] = (
        "unhealthy_since",
        "unhealthy_reason",
        "delivery_paused_until",
    )

    connected = models.BooleanField(_("connected"), default=True)
    connected_at = models.DateTimeField(
        _("connected at"), null=True, blank=True, default=timezone.now
    )
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("connected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    disconnected_at = models.DateTimeField(_("disconnected at"), null=True, blank=True)
    disconnected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("disconnected by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # Set when Segment refuses the write key (401/403); events wait until it is fixed.
    unhealthy_since = models.DateTimeField(_("unhealthy since"), null=True, blank=True)
    unhealthy_reason = models.TextField(_("unhealthy because"), blank=True)
    # Set when Segment is unavailable (5xx, 429, no answer) or refuses the connection: no
    # request is made for it before then, whatever events are written meanwhile.
    delivery_paused_until = models.DateTimeField(
        _("delivery paused until"), null=True, blank=True, editable=False
    )

    class Meta:
        abstract = True

    @property
    def is_healthy(self) -> bool:
        return self.unhealthy_since is None

    def is_paused(self, now: dt.datetime) -> bool:
        """Whether delivery waits (backoff, ``Retry-After`` or a probe) at ``now``."""
        return self.delivery_paused_until is not None and self.delivery_paused_until > now

    def connect(self, by: Any = None) -> bool:
        """Connect (or reconnect). Returns False when it already was connected."""
        if self.connected:
            return False
        self.connected = True
        self.connected_at = timezone.now()
        self.connected_by = by if getattr(by, "pk", None) else None
        self.save(update_fields=["connected", "connected_at", "connected_by", "updated_at"])
        return True

    def disconnect(self, by: Any = None) -> bool:
        """Stop forwarding; history stays. Returns False when it already was disconnected."""
        if not self.connected:
            return False
        self.connected = False
        self.disconnected_at = timezone.now()
        self.disconnected_by = by if getattr(by, "pk", None) else None
        self.save(update_fields=["connected", "disconnected_at", "disconnected_by", "updated_at"])
        return True

    def mark_unhealthy(self, reason: str) -> bool:
        """Record that Segment refused this connection's credentials; whether it was
        healthy until now (in the database, whatever this instance said)."""
        now = timezone.now()
        became = (
            type(self)
            ._default_manager.filter(pk=self.pk, unhealthy_since__isnull=True)
            .update(unhealthy_since=now)
        )
        type(self)._default_manager.filter(pk=self.pk).update(
            unhealthy_reason=reason, updated_at=now
        )
        self.refresh_from_db(fields=["unhealthy_since", "unhealthy_reason", "updated_at"])
        if became:
            self._send_after_commit(connection_unhealthy, reason=reason)
        return bool(became)

    def mark_healthy(self) -> bool:
        """Record that the connection works; whether it was unhealthy until now (in the
        database, whatever this instance said)."""
        if self.unhealthy_since is None:
            return False
        recovered = (
            type(self)
            ._default_manager.filter(pk=self.pk, unhealthy_since__isnull=False)
            .update(unhealthy_since=None, unhealthy_reason="", updated_at=timezone.now())
        )
        self.unhealthy_since, self.unhealthy_reason = None, ""
        if recovered:
            self._send_after_commit(connection_healthy)
        return bool(recovered)

    def _send_after_commit(self, signal: Signal, **kwargs: Any) -> None:
        """Send ``signal`` (robustly) once the current transaction commits."""
        send = functools.partial(signal.send_robust, sender=type(self), connection=self, **kwargs)
        transaction.on_commit(send, using=router.db_for_write(type(self), instance=self))
