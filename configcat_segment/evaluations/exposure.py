"""Which evaluations count as exposures: the policy, allow and deny lists, per-flag sampling.

Pure: no Django, no I/O. The same rules are used twice, with the same meaning: from
settings, by the evaluation hook (what the process records at all), and from each
connection, by the writer (what that connection sends of it).

For one flag, in this order:

1. a key matching a **deny** pattern is never sent;
2. with an **allow** list, a key matching none of its patterns is never sent;
3. the flag's **policy** (the first matching per-flag pattern, else the default):
   ``"all"`` sends every evaluation, ``"decided"`` only those a targeting rule or a
   percentage option decided (``matched_targeting_rule`` / ``matched_percentage_option``
   in the SDK's ``EvaluationDetails``: a flag's default value is not an exposure),
   ``"none"`` sends nothing;
4. the flag's **sample rate** (the first matching per-flag pattern, else 1): the share of
   users whose evaluations of that flag are sent, chosen by a hash of (user, flag), so a
   user's history of one flag is complete or absent. It applies on top of ``SAMPLE_RATE``,
   which chooses users for every flag alike.

Patterns are shell-style globs (``checkout*``, ``exp-?``, ``[ab]-test``), matched against
the whole key, case-sensitively, as ConfigCat keys are.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from .payloads import in_sample

ALL = "all"
DECIDED = "decided"
NONE = "none"
POLICIES = (ALL, DECIDED, NONE)

# ConfigCat keys are letters, digits, "_" and "-"; "." is accepted too, to be lenient.
# Glob wildcards on top: *, ?, [...] and [!...].
_PATTERN = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]+")
# A flag key list in a text box: separated by commas, spaces or new lines.
_SEPARATORS = re.compile(r"[\s,]+")
# Flags remembered per rule set before the memory starts again (keys are few in practice).
_MAX_REMEMBERED_FLAGS = 10_000

T = TypeVar("T")


class FlagRule(NamedTuple):
    """What the rules say about one flag."""

    policy: str
    sample_rate: float

    @property
    def sends_nothing(self) -> bool:
        return self.policy == NONE or self.sample_rate <= 0


SEND_ALL = FlagRule(ALL, 1.0)
SEND_NOTHING = FlagRule(NONE, 0.0)


# -- validating and parsing ----------------------------------------------------------------


def pattern_problem(pattern: Any) -> str | None:
    """What is wrong with ``pattern`` as a flag key glob, or None."""
    if not isinstance(pattern, str) or not pattern:
        return f"{pattern!r} is not a flag key pattern: it must be a non-empty string"
    if not _PATTERN.fullmatch(pattern):
        return (
            f"{pattern!r} is not a flag key pattern: use letters, digits, _ - . and the "
            "wildcards * ? [...]"
        )
    depth = 0
    for char in pattern:
        if char == "[":
            if depth:
                return f"{pattern!r} has a [ inside [...]"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return f"{pattern!r} has a [ without its closing ]"
    return None


def policy_problem(policy: Any) -> str | None:
    if policy in POLICIES:
        return None
    return f"{policy!r} is not an exposure policy: use " + ", ".join(repr(p) for p in POLICIES)


def rate_problem(rate: Any) -> str | None:
    number = isinstance(rate, int | float) and not isinstance(rate, bool)
    if number and rate == rate and 0 <= rate <= 1:
        return None
    return f"{rate!r} is not a sample rate: use a number from 0 to 1"


def split_list(text: str) -> list[str]:
    """The items of a list typed into a text box: separated by commas, spaces or new lines."""
    return [item for item in _SEPARATORS.split(text.strip()) if item]


def parse_patterns(text: str) -> list[str]:
    """Flag key patterns from a text box; ``ValueError`` naming the first bad one."""
    patterns = split_list(text)
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            raise ValueError(problem)
    return patterns


def parse_flag_values(text: str, parse: Callable[[str], T]) -> list[tuple[str, T]]:
    """``pattern value`` lines from a text box, in order; ``ValueError`` naming the line.

    ``parse`` turns the value's text into a value, raising ``ValueError`` when it cannot.
    """
    found: list[tuple[str, T]] = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.replace(":", " ").replace("=", " ").split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(
                f"line {number} ({line.strip()!r}) must be a flag key pattern and a value, "
                "separated by a space"
            )
        pattern, value = parts
        problem = pattern_problem(pattern)
        if problem:
            raise ValueError(f"line {number}: {problem}")
        try:
            found.append((pattern, parse(value)))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return found


def parse_policy(text: str) -> str:
    problem = policy_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def parse_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a sample rate: use a number from 0 to 1") from None
    problem = rate_problem(rate)
    if problem:
        raise ValueError(problem)
    return rate


def overlap_problem(allowed: Iterable[str] | None, denied: Iterable[str]) -> str | None:
    """A pattern that is both allowed and denied (the deny list wins; say so)."""
    both = sorted(set(allowed or ()) & set(denied))
    if both:
        return f"{', '.join(repr(p) for p in both)} is both allowed and denied"
    return None


# -- the rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureRules:
    """The rules, compiled. ``rule_for(key)`` is remembered per key; ``admits`` is the test."""

    policy: str = ALL
    allowlist: tuple[str, ...] | None = None
    denylist: tuple[str, ...] = ()
    flag_policies: tuple[tuple[str, str], ...] = ()
    flag_sample_rates: tuple[tuple[str, float], ...] = ()
    _remembered: dict[str, FlagRule] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        policy: str = ALL,
        allowlist: Iterable[str] | None = None,
        denylist: Iterable[str] = (),
        flag_policies: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        flag_sample_rates: Mapping[str, float] | Iterable[tuple[str, float]] = (),
    ) -> ExposureRules:
        """Rules from already validated parts (settings, or a connection's parsed fields)."""
        return cls(
            policy=policy,
            allowlist=None if allowlist is None else tuple(allowlist),
            denylist=tuple(denylist),
            flag_policies=tuple(_pairs(flag_policies)),
            flag_sample_rates=tuple((p, float(r)) for p, r in _pairs(flag_sample_rates)),
        )

    @property
    def sends_everything(self) -> bool:
        """True when the rules let every evaluation through (the defaults)."""
        return (
            self.policy == ALL
            and self.allowlist is None
            and not self.denylist
            and all(policy == ALL for _, policy in self.flag_policies)
            and all(rate >= 1 for _, rate in self.flag_sample_rates)
        )

    def rule_for(self, key: str) -> FlagRule:
        rule = self._remembered.get(key)
        if rule is None:
            rule = self._decide(key)
            if len(self._remembered) >= _MAX_REMEMBERED_FLAGS:
                self._remembered.clear()
            self._remembered[key] = rule
        return rule

    def _decide(self, key: str) -> FlagRule:
        if _first_match(key, ((p, True) for p in self.denylist)):
            return SEND_NOTHING
        if self.allowlist is not None and not _first_match(
            key, ((p, True) for p in self.allowlist)
        ):
            return SEND_NOTHING
        policy = _first_match(key, self.flag_policies) or self.policy
        rate = _first_match(key, self.flag_sample_rates)
        return FlagRule(policy, 1.0 if rate is None else rate)

    def admits(self, key: str, identity: str | None, *, by_rule: bool, by_percentage: bool) -> bool:
        """Whether an evaluation of ``key`` for ``identity`` is an exposure to send."""
        rule = self.rule_for(key)
        if rule.policy == NONE:
            return False
        if rule.policy == DECIDED and not (by_rule or by_percentage):
            return False
        if rule.sample_rate >= 1:
            return True
        sampled = None if identity is None else f"{identity}\x1f{key}"
        return in_sample(sampled, rule.sample_rate)


EVERYTHING = ExposureRules()


def _pairs(items: Mapping[str, T] | Iterable[tuple[str, T]]) -> Sequence[tuple[str, T]]:
    return list(items.items()) if isinstance(items, Mapping) else list(items)


def _first_match(key: str, pairs: Iterable[tuple[str, T]]) -> T | None:
    for pattern, value in pairs:
        if fnmatch.fnmatchcase(key, pattern):
            return value
    return None
