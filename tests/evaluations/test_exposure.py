"""What counts as an exposure: the real SDK on config_v6.json, every control, both levels.

In config_v6.json, for PRO_USER: ``isPremium`` and ``maxItems`` are decided by a targeting
rule, ``checkoutVariant`` by a percentage option, ``betaRollout`` by a rule's percentage
option; ``bannerJson`` and ``discountRate`` have their default value. For PLAIN_USER only
``checkoutVariant`` is decided (by a percentage option); the rest are default values.
The expectations are computed from what an unforwarded client reports, not written down.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from configcatclient.user import User
from django.test import AsyncClient, Client

import configcat_segment
from configcat_segment.evaluations.exposure import FlagRule
from configcat_segment.evaluations.payloads import in_sample
from configcat_segment.models import Event

from .conftest import FLAGS, PLAIN_USER, PRO_USER, tracks

pytestmark = pytest.mark.django_db

USERS = (PRO_USER, PLAIN_USER)


def evaluate_everything(users: tuple[Any, ...] = USERS) -> None:
    client = configcat_segment.get_client()
    for user in users:
        for key in FLAGS:
            client.get_value(key, None, user)
    configcat_segment.flush()


def sent(**filters: Any) -> set[tuple[str, str]]:
    return {(t["userId"], t["properties"]["feature_flag_key"]) for t in tracks(**filters)}


def decided(bare_client: Any, users: tuple[Any, ...] = USERS) -> set[tuple[str, str]]:
    """(user, flag) pairs a targeting rule or a percentage option decided, per the SDK."""
    found = set()
    for user in users:
        for key in FLAGS:
            details = bare_client.get_value_details(key, None, user)
            if details.matched_targeting_rule or details.matched_percentage_option:
                found.add((user.get_identifier(), key))
    return found


def every_pair(users: tuple[Any, ...] = USERS) -> set[tuple[str, str]]:
    return {(user.get_identifier(), key) for user in users for key in FLAGS}


def test_the_default_sends_every_evaluation(segment_connection):
    evaluate_everything()
    assert sent() == every_pair()


def test_decided_sends_only_what_a_rule_or_a_percentage_option_decided(
    segment_connection, configure, bare_client
):
    configure(EXPOSURE_POLICY="decided")
    evaluate_everything()
    expected = decided(bare_client)
    # The config has all three kinds, so the test means something.
    assert expected == {
        ("u-pro", "isPremium"),  # a targeting rule
        ("u-pro", "maxItems"),  # a targeting rule on a custom attribute
        ("u-pro", "checkoutVariant"),  # a percentage option
        ("u-pro", "betaRollout"),  # a rule's percentage option
        ("u-plain", "checkoutVariant"),  # a percentage option
    }
    assert sent() == expected
    # An identify only for users something is sent for: both have a decided evaluation.
    assert Event.objects.filter(type="identify").count() == 2


def test_none_sends_nothing_and_the_per_flag_policy_wins(segment_connection, configure):
    configure(EXPOSURE_POLICY="none", FLAG_EXPOSURE_POLICIES={"max*": "all", "is*": "decided"})
    evaluate_everything()
    assert sent() == {("u-pro", "maxItems"), ("u-plain", "maxItems"), ("u-pro", "isPremium")}


def test_the_first_matching_per_flag_policy_counts(segment_connection, configure):
    configure(FLAG_EXPOSURE_POLICIES={"checkoutVariant": "all", "*": "none"})
    evaluate_everything()
    assert sent() == {("u-pro", "checkoutVariant"), ("u-plain", "checkoutVariant")}


def test_allow_and_deny_lists_of_patterns(segment_connection, configure):
    configure(FLAG_ALLOWLIST=["is*", "max?tems", "[bd]*"], FLAG_DENYLIST=["banner*"])
    evaluate_everything()
    flags = {key for _, key in sent()}
    assert flags == {"isPremium", "maxItems", "betaRollout", "discountRate"}


def test_an_empty_allowlist_sends_nothing(segment_connection, configure):
    configure(FLAG_ALLOWLIST=[])
    evaluate_everything()
    assert Event.objects.count() == 0


def test_a_per_flag_sample_rate_keeps_whole_user_histories_of_that_flag(
    segment_connection, configure
):
    configure(FLAG_SAMPLE_RATES={"checkout*": 0.5}, DEDUP_WINDOW_SECONDS=0)
    users = tuple(User(f"visitor-{n}") for n in range(200))
    client = configcat_segment.get_client()
    for _ in range(2):  # twice: a user sampled in is sent every time, one out never
        for user in users:
            client.get_value("checkoutVariant", "", user)
            client.get_value("discountRate", 0.0, user)
    configcat_segment.flush()
    expected = {
        user.get_identifier()
        for user in users
        if in_sample(f"{user.get_identifier()}\x1fcheckoutVariant", 0.5)
    }
    assert 70 < len(expected) < 130  # about half: the hash really splits them
    checkout = [t["userId"] for t in tracks(flag_key="checkoutVariant")]
    assert sorted(checkout) == sorted(2 * list(expected))
    assert len(tracks(flag_key="discountRate")) == 2 * len(users)  # other flags untouched


def test_the_per_flag_rate_is_on_top_of_the_per_user_one(segment_connection, configure):
    configure(SAMPLE_RATE=0.5, FLAG_SAMPLE_RATES={"checkoutVariant": 0.5})
    users = tuple(User(f"visitor-{n}") for n in range(200))
    evaluate_everything(users)
    ids = [user.get_identifier() for user in users]
    users_in = {i for i in ids if in_sample(i, 0.5)}
    both_in = {i for i in users_in if in_sample(f"{i}\x1fcheckoutVariant", 0.5)}
    assert {t["userId"] for t in tracks(flag_key="checkoutVariant")} == both_in
    assert {t["userId"] for t in tracks(flag_key="discountRate")} == users_in
    assert 0 < len(both_in) < len(users_in) < len(ids)


def test_rules_are_read_again_when_the_settings_change(segment_connection, configure):
    configure(FLAG_DENYLIST=["*"])
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    configure(FLAG_DENYLIST=[])
    configcat_segment.get_client().get_value("isPremium", False, PLAIN_USER)
    configcat_segment.flush()
    assert sent() == {("u-plain", "isPremium")}


# -- per connection ---------------------------------------------------------------------------


def test_each_connection_applies_its_own_rules(make_connection, bare_client):
    everything = make_connection(name="Everything")
    experiments = make_connection(
        name="Experiments",
        exposure_policy="decided",
        flag_denylist="isPremium",
    )
    chosen = make_connection(
        name="Chosen",
        flag_allowlist="max*, discount*\nbanner*",
        flag_exposure_policies="banner* none\nmax* decided",
        flag_sample_rates="discount* 0",
    )
    evaluate_everything()
    assert sent(connection=everything) == every_pair()
    assert sent(connection=experiments) == decided(bare_client) - {("u-pro", "isPremium")}
    assert sent(connection=chosen) == {("u-pro", "maxItems")}


def test_settings_decide_what_is_recorded_connections_only_narrow_it(make_connection, configure):
    configure(FLAG_ALLOWLIST=["isPremium"])
    connection = make_connection(flag_allowlist="isPremium\nmaxItems")
    evaluate_everything()
    assert sent(connection=connection) == {("u-pro", "isPremium"), ("u-plain", "isPremium")}


def test_a_connection_that_sends_nothing_of_an_evaluation_sends_no_identify(make_connection):
    quiet = make_connection(name="Quiet", flag_denylist="*")
    loud = make_connection(name="Loud")
    evaluate_everything()
    assert Event.objects.filter(connection=quiet).count() == 0
    assert Event.objects.filter(connection=loud, type="identify").count() == 2


def test_a_connection_field_that_does_not_validate_falls_back_to_its_default(make_connection):
    # Written without full_clean(): the writer must not fail, nor drop the evaluations.
    connection = make_connection(flag_denylist="broken[", exposure_policy="sometimes")
    evaluate_everything()
    assert sent(connection=connection) == every_pair()


# -- get_all_values -------------------------------------------------------------------------


@pytest.mark.urls("tests.evaluations.urls")
def test_request_flags_get_all_values_sends_nothing(segment_connection, bare_client):
    response = Client().get("/all-values/")
    assert response.json() == bare_client.get_all_values(None)
    configcat_segment.flush()
    assert Event.objects.count() == 0


@pytest.mark.urls("tests.evaluations.urls")
def test_aget_all_values_sends_nothing_either(segment_connection, bare_client):
    response = asyncio.run(AsyncClient().get("/async-all-values/"))
    assert response.json() == bare_client.get_all_values(None)
    configcat_segment.flush()
    assert Event.objects.count() == 0


@pytest.mark.urls("tests.evaluations.urls")
def test_the_sdks_get_all_values_sends_one_evaluation_per_flag(segment_connection, configure):
    Client().get("/sdk-all-values/")
    configcat_segment.flush()
    assert {t["properties"]["feature_flag_key"] for t in tracks()} == set(FLAGS)
    # With "decided", an anonymous visitor's get_all_values sends nothing: without a user,
    # no rule and no percentage option can decide anything.
    Event.objects.all().delete()
    configure(EXPOSURE_POLICY="decided")
    Client().get("/sdk-all-values/")
    configcat_segment.flush()
    assert Event.objects.count() == 0


def test_without_forwarding_is_not_remembered_by_the_dedup(segment_connection):
    client = configcat_segment.get_client()
    with configcat_segment.without_forwarding():
        assert client.get_all_values(PRO_USER)["isPremium"] is True
        client.get_value("maxItems", 0, PRO_USER)
    configcat_segment.flush()
    assert Event.objects.count() == 0
    # The user sees the flag later: that exposure is sent, not taken for a repeat.
    client.get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert sent() == {("u-pro", "isPremium")}


def test_flag_rules_are_remembered_per_key():
    from configcat_segment.evaluations.exposure import ExposureRules

    rules = ExposureRules.build(denylist=["a*"], flag_sample_rates={"b*": 0.25})
    assert rules.rule_for("abc") == FlagRule("none", 0.0)
    assert rules.rule_for("bcd") == FlagRule("all", 0.25)
    assert rules.rule_for("cde") == FlagRule("all", 1.0)
    assert set(rules._remembered) == {"abc", "bcd", "cde"}
