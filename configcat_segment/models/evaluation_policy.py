"""What a Segment connection sends of the evaluations: which exposures, what personal data,
and whether "Experiment Viewed" (``evaluations/policies.py`` reads these fields).

The fields hold text as typed into the admin; ``SegmentConnection.clean()`` validates them
(:func:`..evaluations.policies.field_problems`) and the writer compiles them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..evaluations import exposure, privacy
from ..evaluations.payloads import EXPERIMENTS_ALSO, EXPERIMENTS_INSTEAD, EXPERIMENTS_OFF


class ExposurePolicy(models.TextChoices):
    ALL = exposure.ALL, _("Every evaluation")
    DECIDED = exposure.DECIDED, _("Only those a targeting rule or percentage option decided")


class ExperimentViewed(models.TextChoices):
    OFF = EXPERIMENTS_OFF, _("Not sent")
    ALSO = EXPERIMENTS_ALSO, _("As well as “Feature Flag Evaluated”")
    INSTEAD = EXPERIMENTS_INSTEAD, _("Instead of “Feature Flag Evaluated”")


class PersonalDataPolicy(models.TextChoices):
    ALL = privacy.ALL, _("Everything, as it is")
    ALLOWLIST = privacy.ALLOWLIST, _("Only the attributes listed")
    HASHED = privacy.HASHED, _("Identifier and email hashed (SHA-256 with this connection's salt)")


class EvaluationPolicyFields(models.Model):
    """The evaluation policy fields of :class:`~.connection.SegmentConnection`."""

    exposure_policy = models.CharField(
        _("exposures"),
        max_length=10,
        choices=ExposurePolicy.choices,
        default=ExposurePolicy.ALL,
        help_text=_(
            "Which evaluations are sent: all of them, or only those a targeting rule or a "
            "percentage option decided (a flag's default value is then not sent)."
        ),
    )
    flag_allowlist = models.TextField(
        _("only these flags"),
        blank=True,
        help_text=_(
            "Flag key patterns (* ? [...]), separated by commas or new lines. Empty: every flag."
        ),
    )
    flag_denylist = models.TextField(
        _("never these flags"),
        blank=True,
        help_text=_("Flag key patterns; they win over the list above."),
    )
    flag_exposure_policies = models.TextField(
        _("per-flag exposures"),
        blank=True,
        help_text=_(
            "One “pattern policy” per line, the first match wins: e.g. “checkout* decided” "
            "or “internal-* none”. Policies: all, decided, none."
        ),
    )
    flag_sample_rates = models.TextField(
        _("per-flag sample rates"),
        blank=True,
        help_text=_(
            "One “pattern rate” per line, the first match wins: e.g. “banner* 0.1” sends the "
            "evaluations of a tenth of the users (on top of SAMPLE_RATE)."
        ),
    )
    experiment_viewed = models.CharField(
        _("“Experiment Viewed”"),
        max_length=10,
        choices=ExperimentViewed.choices,
        default=ExperimentViewed.OFF,
        help_text=_(
            "Segment's A/B testing event, for evaluations a percentage option decided: "
            "experiment_id and experiment_name are the flag key."
        ),
    )
    personal_data = models.CharField(
        _("personal data"),
        max_length=10,
        choices=PersonalDataPolicy.choices,
        default=PersonalDataPolicy.ALL,
        help_text=_(
            "What of the ConfigCat user is sent, in the user property, the identify traits "
            "and the userId alike."
        ),
    )
    personal_data_attributes = models.TextField(
        _("attributes sent"),
        blank=True,
        help_text=_(
            "With “only the attributes listed”: ConfigCat attribute names (Identifier, "
            "Email, Country, or a custom one), separated by commas or new lines."
        ),
    )

    class Meta:
        abstract = True
