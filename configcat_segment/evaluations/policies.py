"""A connection's evaluation policies, read from its fields: which exposures it sends
(:mod:`.exposure`), what personal data (:mod:`.privacy`), and whether "Experiment Viewed".

The fields are text typed into the admin; :func:`field_problems` says what is wrong with
them (the model's ``clean()`` reports it on the form), :func:`policy_for` compiles them,
remembering the result for the same text, so the writer pays for it once.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, NamedTuple

from . import exposure, privacy
from .payloads import EXPERIMENT_MODES, EXPERIMENTS_OFF

logger = logging.getLogger(__name__)

# The SegmentConnection fields, with their defaults.
FIELD_DEFAULTS: dict[str, str] = {
    "exposure_policy": exposure.ALL,
    "flag_allowlist": "",
    "flag_denylist": "",
    "flag_exposure_policies": "",
    "flag_sample_rates": "",
    "experiment_viewed": EXPERIMENTS_OFF,
    "personal_data": privacy.ALL,
    "personal_data_attributes": "",
}


class ConnectionPolicy(NamedTuple):
    exposure: exposure.ExposureRules
    personal_data: privacy.PersonalData
    experiments: str

    @property
    def is_default(self) -> bool:
        return (
            self.exposure.sends_everything
            and self.personal_data.sends_everything
            and self.experiments == EXPERIMENTS_OFF
        )


DEFAULT = ConnectionPolicy(exposure.EVERYTHING, privacy.EVERYTHING, EXPERIMENTS_OFF)


def _values(connection: Any) -> tuple[str, ...]:
    return tuple(str(getattr(connection, name, value)) for name, value in FIELD_DEFAULTS.items())


def policy_for(connection: Any) -> ConnectionPolicy:
    """The policies of ``connection`` (a ``SegmentConnection``), compiled.

    Fields that do not validate (only possible when a row was written without
    ``full_clean()``) fall back field by field, with a warning: to their defaults, except
    the personal data policy, which falls back to sending the least (:data:`FAIL_CLOSED`).
    The policy never stops evaluations from being written.
    """
    return _compile(_values(connection))


@functools.lru_cache(maxsize=256)
def _compile(values: tuple[str, ...]) -> ConnectionPolicy:
    fields = dict(zip(FIELD_DEFAULTS, values, strict=True))
    if fields == FIELD_DEFAULTS:
        return DEFAULT
    parsed = _parse(fields)
    return ConnectionPolicy(
        exposure=exposure.ExposureRules.build(
            policy=parsed["exposure_policy"],
            allowlist=parsed["flag_allowlist"] or None,
            denylist=parsed["flag_denylist"],
            flag_policies=parsed["flag_exposure_policies"],
            flag_sample_rates=parsed["flag_sample_rates"],
        ),
        personal_data=privacy.PersonalData.build(
            parsed["personal_data"], parsed["personal_data_attributes"]
        ),
        experiments=parsed["experiment_viewed"],
    )


# What a field that does not validate is read as, where its default would send more than
# was meant: a personal data policy nobody can read sends only the attributes listed (and
# the identifier as a pseudonym), never everything.
FAIL_CLOSED: dict[str, str] = {"personal_data": privacy.ALLOWLIST}


def _parse(fields: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, text in fields.items():
        try:
            parsed[name] = _PARSERS[name](text)
        except ValueError as exc:
            fallback = FAIL_CLOSED.get(name, FIELD_DEFAULTS[name])
            logger.warning(
                "configcat_segment: a connection's %s %r is not valid (%s): read as %r",
                name,
                text,
                exc,
                fallback,
            )
            parsed[name] = _PARSERS[name](fallback)
    return parsed


def _choice(problem: Any) -> Any:
    def parse(text: str) -> str:
        message = problem(text)
        if message:
            raise ValueError(message)
        return text

    return parse


def _experiment_problem(mode: str) -> str | None:
    if mode in EXPERIMENT_MODES:
        return None
    return f"{mode!r} is not an Experiment Viewed setting: use " + ", ".join(
        repr(m) for m in EXPERIMENT_MODES
    )


_PARSERS: dict[str, Any] = {
    "exposure_policy": exposure.parse_policy,
    "flag_allowlist": exposure.parse_patterns,
    "flag_denylist": exposure.parse_patterns,
    "flag_exposure_policies": lambda text: exposure.parse_flag_values(text, exposure.parse_policy),
    "flag_sample_rates": lambda text: exposure.parse_flag_values(text, exposure.parse_rate),
    "experiment_viewed": _choice(_experiment_problem),
    "personal_data": _choice(privacy.policy_problem),
    "personal_data_attributes": privacy.split_attribute_names,
}


def field_problems(connection: Any) -> dict[str, str]:
    """What is wrong with the policy fields of ``connection``, by field name.

    Each field on its own, then together: a pattern both allowed and denied, attribute
    names without the allowlist policy, and any policy on a connection that forwards no
    evaluations (it would do nothing, which is never what was meant).
    """
    problems: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, text in zip(FIELD_DEFAULTS, _values(connection), strict=True):
        try:
            parsed[name] = _PARSERS[name](text)
        except ValueError as exc:
            problems[name] = _sentence(str(exc))
    if "flag_allowlist" not in problems and "flag_denylist" not in problems:
        overlap = exposure.overlap_problem(parsed["flag_allowlist"], parsed["flag_denylist"])
        if overlap:
            problems["flag_denylist"] = _sentence(overlap + ": remove it from one of the lists")
    if (
        parsed.get("personal_data_attributes")
        and parsed.get("personal_data") != privacy.ALLOWLIST
        and "personal_data" not in problems
    ):
        problems["personal_data_attributes"] = (
            "Attribute names are only used with the “allowlist” policy: choose it, or "
            "empty this list."
        )
    if not getattr(connection, "forward_evaluations", True):
        for (field, default), text in zip(FIELD_DEFAULTS.items(), _values(connection), strict=True):
            if text != default and field not in problems:
                problems[field] = (
                    "This connection forwards no flag evaluations, so this does nothing: "
                    "tick “forward flag evaluations”, or set it back to its default."
                )
    return problems


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."
