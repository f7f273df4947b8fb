"""Evaluations that could not be forwarded, counted across every process."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EvaluationCounterQuerySet(models.QuerySet["EvaluationCounter"]):
    def add(self, name: str, amount: int) -> None:
        """Add ``amount`` to the counter ``name``, atomically, from any number of processes."""
        if amount <= 0:
            return
        self.get_or_create(name=name)
        self.filter(name=name).update(value=models.F("value") + amount, updated_at=timezone.now())

    def totals(self) -> dict[str, int]:
        return dict(self.values_list("name", "value"))


class EvaluationCounter(models.Model):
    """Evaluations that were not forwarded, counted across all processes.

    ``dropped``: the in-memory buffer was full (the database could not keep up);
    ``failed``: the SDK could not evaluate the flag (no config, unknown key, ...);
    ``unwritable``: the evaluation could not be written on its own (the database refused
    it, or its messages could not be built).

    And one that is not a loss but a cost: ``random_anonymous_ids``, the evaluations sent
    with an anonymous id drawn at random, each one a new tracked user in Segment.
    """

    DROPPED = "dropped"
    FAILED = "failed"
    UNWRITABLE = "unwritable"
    # Not a loss: anonymous ids drawn at random (no cookie, no session) and sent, each one
    # a tracked user in Segment, per connection.
    RANDOM_ANONYMOUS_IDS = "random_anonymous_ids"

    name = models.CharField(max_length=50, unique=True)
    value = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    objects = EvaluationCounterQuerySet.as_manager()

    class Meta:
        verbose_name = _("evaluation counter")
        verbose_name_plural = _("evaluation counters")

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"
