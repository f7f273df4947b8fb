"""The pure parts of the exposure and personal data policies: no Django, no SDK."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from configcat_segment.evaluations import exposure, privacy
from configcat_segment.evaluations.exposure import ExposureRules, FlagRule
from configcat_segment.evaluations.policies import DEFAULT, FIELD_DEFAULTS, _compile, policy_for


@pytest.mark.parametrize(
    "pattern", ["isPremium", "checkout*", "exp-?", "[ab]-test", "beta-[!x]*", "a.b_c-d", "*"]
)
def test_good_patterns(pattern):
    assert exposure.pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        ("", "must be a non-empty string"),
        (3, "must be a non-empty string"),
        ("a b", "use letters, digits"),
        ("a/b", "use letters, digits"),
        ("x[ab", "without its closing ]"),
        ("x[a[b]]", "a [ inside [...]"),
    ],
)
def test_bad_patterns_say_why(pattern, said):
    assert said in exposure.pattern_problem(pattern)


def test_lists_and_lines_from_text_boxes():
    assert exposure.parse_patterns(" a*,b?\n\n c  d ") == ["a*", "b?", "c", "d"]
    assert exposure.parse_patterns("") == []
    assert exposure.parse_flag_values("a* 0.5\n\nb*: 1\nc* = 0", exposure.parse_rate) == [
        ("a*", 0.5),
        ("b*", 1.0),
        ("c*", 0.0),
    ]
    with pytest.raises(ValueError, match=r"line 2: nan is not a sample rate"):
        exposure.parse_flag_values("a* 1\nb* nan", exposure.parse_rate)
    with pytest.raises(ValueError, match=r"line 1: 'x\[' has a \["):
        exposure.parse_flag_values("x[ all", exposure.parse_policy)


def test_the_order_of_the_rules():
    rules = ExposureRules.build(
        policy="decided",
        allowlist=["a*", "b*"],
        denylist=["ab*"],
        flag_policies=[("b1", "none"), ("b*", "all")],
        flag_sample_rates={"a*": 0.5},
    )
    assert rules.rule_for("abc") == FlagRule("none", 0.0)  # denied wins over allowed
    assert rules.rule_for("c") == FlagRule("none", 0.0)  # not allowed
    assert rules.rule_for("a1") == FlagRule("decided", 0.5)  # the default policy
    assert rules.rule_for("b1") == FlagRule("none", 1.0)  # the first matching policy
    assert rules.rule_for("b2") == FlagRule("all", 1.0)
    assert not rules.sends_everything
    assert ExposureRules.build().sends_everything


def test_admits():
    rules = ExposureRules.build(policy="decided", flag_sample_rates={"s": 0.0})
    assert not rules.admits("f", "u", by_rule=False, by_percentage=False)
    assert rules.admits("f", "u", by_rule=True, by_percentage=False)
    assert rules.admits("f", None, by_rule=False, by_percentage=True)
    assert not rules.admits("s", "u", by_rule=True, by_percentage=True)


def test_pseudonyms_are_keyed_sha256():
    expected = hmac.new(
        b"salt", b"configcat_segment.personal-data\x1f42", hashlib.sha256
    ).hexdigest()
    assert privacy.pseudonym("salt", "42") == expected
    assert privacy.pseudonym("other", "42") != expected
    assert privacy.email_pseudonym("salt", " Ada@Example.COM ") == privacy.pseudonym(
        "salt", "ada@example.com"
    )


def test_personal_data_policies():
    user = {"Identifier": "42", "Email": "Ada@Example.com", "Country": "HU", "plan": "pro"}
    everything = privacy.PersonalData.build()
    assert everything.user(user, "s") == user
    assert everything.user_id("42", "s") == "42"
    listed = privacy.PersonalData.build("allowlist", ["Country", "nope"])
    assert listed.user(user, "s") == {"Country": "HU"}
    assert listed.user_id("42", "s") == privacy.pseudonym("s", "42")
    with_id = privacy.PersonalData.build("allowlist", ["Identifier"])
    assert with_id.user_id("42", "s") == "42"
    hashed = privacy.PersonalData.build("hashed")
    assert hashed.user(user, "s") == {
        "Identifier": privacy.pseudonym("s", "42"),
        "Email": privacy.email_pseudonym("s", "ada@example.com"),
        "Country": "HU",
        "plan": "pro",
    }
    assert privacy.split_attribute_names("Country, plan\n signed up ,") == [
        "Country",
        "plan",
        "signed up",
    ]


class Connection:
    def __init__(self, **fields):
        self.__dict__.update(FIELD_DEFAULTS, forward_evaluations=True, **fields)


def test_a_connection_with_the_defaults_has_the_default_policy():
    assert policy_for(Connection()) is DEFAULT
    assert DEFAULT.is_default


def test_a_connection_policy_is_compiled_once_per_text():
    first = policy_for(Connection(flag_denylist="a*"))
    assert policy_for(Connection(flag_denylist="a*")) is first
    assert first.exposure.denylist == ("a*",)


@pytest.mark.parametrize("stored", ["Hashed", "hash", "", "everything"])
def test_a_personal_data_policy_that_does_not_validate_sends_the_least(stored, caplog):
    # A row saved without full_clean() (update(), a fixture, a data migration): the writer
    # must not fall back to sending everything. The listed attributes and pseudonyms only.
    _compile.cache_clear()  # compiled (and warned about) once per text
    policy = policy_for(Connection(personal_data=stored, personal_data_attributes="Country"))
    user = {"Identifier": "42", "Email": "ada@example.com", "Country": "HU", "plan": "pro"}
    assert policy.personal_data.user(user, "s") == {"Country": "HU"}
    assert policy.personal_data.user_id("42", "s") == privacy.pseudonym("s", "42")
    assert not policy.is_default
    assert f"personal_data {stored!r}" in caplog.text


def test_other_fields_that_do_not_validate_fall_back_to_their_defaults():
    policy = policy_for(Connection(exposure_policy="sometimes", personal_data="hashed"))
    assert policy.exposure.policy == exposure.ALL
    assert policy.personal_data.policy == privacy.HASHED
