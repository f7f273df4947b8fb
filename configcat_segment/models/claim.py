"""The dispatcher's leases: which events a round is sending, until when, and how many
claims each has had that its ``attempts`` does not count yet.

A claim writes here, not to the events table: an events row is expensive to update (ten
B-tree indexes, the event log's search index, the count triggers), and a lease in the
row meant writing each delivered event twice, once to claim it and once to settle it.
With the lease here, settling the outcome is the only write to the event
(``configcat_segment.delivery.claims``).
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from .event import Event


class EventClaim(models.Model):
    """A lease on one event: held (``lease_until`` in the future) while a round sends it.

    The primary key is the event's: one claim row per event, whatever the number of
    dispatchers, so the key itself decides which of two racing claims wins (an
    ``INSERT … ON CONFLICT`` that takes over a row only once its lease ran out).
    ``claims`` counts the claims since the event's outcome was last recorded; settling
    adds them to ``Event.attempts`` and deletes the row. A row whose lease ran out is the
    trace of a round that never settled (a worker killed mid-send): its count still
    counts, so a message that kills its worker every time dies after ``MAX_ATTEMPTS``.
    """

    # No foreign key constraint in the database: a constraint would make every delete of
    # events (prune, a connection deleted) check this table row by row, and make a claim
    # fail for an event deleted meanwhile, when all a claim row of a deleted event needs
    # is to go away (its round's settlement deletes it; prune sweeps the rest).
    event = models.OneToOneField(
        Event,
        primary_key=True,
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="+",
    )
    lease_until = models.DateTimeField(_("lease until"))
    claims = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("event claim")
        verbose_name_plural = _("event claims")

    def __str__(self) -> str:
        return f"event {self.event_id} claimed until {self.lease_until.isoformat()}"

    @classmethod
    def holds(cls, now: dt.datetime) -> Exists:
        """For ``Event`` querysets: whether a live lease holds the event (it is being sent
        right now), e.g. ``Event.objects.exclude(EventClaim.holds(now))``."""
        return Exists(cls.objects.filter(event_id=OuterRef("pk"), lease_until__gt=now))
