"""Bad exposure and privacy configuration is reported by ``manage.py check`` (stable ids) or
by the connection's admin form, never at request time."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from configcat_segment import checks
from configcat_segment.models import SegmentConnection

from ..conftest import SIGNING_KEY, WRITE_KEY
from .conftest import evaluation_settings

ADD_URL = "/admin/configcat_segment/segmentconnection/add/"


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def check_with(**values: Any) -> list[Any]:
    with override_settings(CONFIGCAT_SEGMENT=evaluation_settings(**values)):
        return [*checks.check_settings(), *checks.check_exposure_settings()]


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("EXPOSURE_POLICY", "sometimes", "must be one of 'all', 'decided', 'none'"),
        ("FLAG_ALLOWLIST", "isPremium", "must be a list of flag key patterns"),
        ("FLAG_DENYLIST", ["ok", "check out"], "'check out' is not a flag key pattern"),
        ("FLAG_DENYLIST", ["beta-[ab"], "'beta-[ab' has a [ without its closing ]"),
        ("FLAG_DENYLIST", [""], "'' is not a flag key pattern"),
        ("FLAG_EXPOSURE_POLICIES", {"a*": "some"}, "'some' is not an exposure policy"),
        ("FLAG_EXPOSURE_POLICIES", ["a*"], "must be a dict of flag key patterns"),
        ("FLAG_SAMPLE_RATES", {"a*": 1.5}, "1.5 is not a sample rate: use a number from 0 to 1"),
        ("FLAG_SAMPLE_RATES", {"a*": -0.1}, "-0.1 is not a sample rate"),
        ("FLAG_SAMPLE_RATES", {"a*": float("nan")}, "nan is not a sample rate"),
        ("FLAG_SAMPLE_RATES", {"a*": True}, "True is not a sample rate"),
        ("FLAG_SAMPLE_RATES", {"a b": 0.5}, "'a b' is not a flag key pattern"),
    ],
)
def test_e003_names_the_key_and_the_bad_entry(key, value, said):
    (message,) = check_with(**{key: value})
    assert message.id == "configcat_segment.E003"
    assert f'CONFIGCAT_SEGMENT["{key}"]' in message.msg
    assert said in message.msg


def test_good_exposure_settings_pass():
    assert (
        check_with(
            EXPOSURE_POLICY="decided",
            FLAG_ALLOWLIST=("checkout*", "beta-?", "[ab]-test", "exp.[!x]*"),
            FLAG_DENYLIST=["internal-*"],
            FLAG_EXPOSURE_POLICIES={"checkout*": "all", "x*": "none"},
            FLAG_SAMPLE_RATES={"banner*": 0.1, "exp*": 0, "y": 1},
        )
        == []
    )


def test_w020_exposure_settings_while_evaluations_are_off():
    (message,) = check_with(FORWARD_EVALUATIONS=False, FLAG_DENYLIST=["x"], EXPOSURE_POLICY="all")
    assert message.id == "configcat_segment.W020"
    assert 'CONFIGCAT_SEGMENT["FLAG_DENYLIST"] is set' in message.msg


def test_w021_a_pattern_both_allowed_and_denied():
    (message,) = check_with(FLAG_ALLOWLIST=["a*", "b*"], FLAG_DENYLIST=["b*"])
    assert message.id == "configcat_segment.W021"
    assert "'b*' is both allowed and denied" in message.msg


@pytest.mark.parametrize(
    "values",
    [
        {"FLAG_ALLOWLIST": []},
        {"EXPOSURE_POLICY": "none"},
        {"EXPOSURE_POLICY": "none", "FLAG_EXPOSURE_POLICIES": {"a*": "none"}},
    ],
)
def test_w022_settings_that_forward_nothing(values):
    assert ids(check_with(**values)) == ["configcat_segment.W022"]


def test_none_with_a_flag_let_through_is_fine():
    assert check_with(EXPOSURE_POLICY="none", FLAG_EXPOSURE_POLICIES={"a*": "decided"}) == []


def test_manage_py_check_fails_on_a_bad_pattern():
    bad = evaluation_settings(FLAG_DENYLIST=["x["])
    with (
        override_settings(CONFIGCAT_SEGMENT=bad),
        pytest.raises(SystemCheckError, match=r"configcat_segment\.E003"),
    ):
        call_command("check")


# -- the admin form ---------------------------------------------------------------------------


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Production",
        "write_key": WRITE_KEY,
        "region": "us",
        "custom_endpoint": "",
        "product_id": "",
        "product_name": "",
        "signing_key": SIGNING_KEY,
        "signing_key_secondary": "",
        "forward_changes": "on",
        "forward_evaluations": "on",
        "exposure_policy": "all",
        "experiment_viewed": "off",
        "personal_data": "all",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def errors_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form should have been refused"
    form = response.context["adminform"].form
    return {name: [html.unescape(str(e)) for e in errors] for name, errors in form.errors.items()}


@pytest.mark.django_db
def test_the_admin_saves_every_policy(staff_client):
    response = staff_client.post_form(
        ADD_URL,
        form_data(
            exposure_policy="decided",
            flag_allowlist="checkout*, beta-?\nexp-*",
            flag_denylist="internal-*",
            flag_exposure_policies="checkout* all\nexp-*: none",
            flag_sample_rates="banner* 0.1",
            experiment_viewed="instead",
            personal_data="allowlist",
            personal_data_attributes="Country, plan\nsigned up",
        ),
    )
    assert response.status_code == 302
    connection = SegmentConnection.objects.get()
    assert connection.experiment_viewed == "instead"
    from configcat_segment.evaluations.policies import policy_for

    policy = policy_for(connection)
    assert policy.exposure.allowlist == ("checkout*", "beta-?", "exp-*")
    assert policy.exposure.flag_policies == (("checkout*", "all"), ("exp-*", "none"))
    assert policy.exposure.flag_sample_rates == (("banner*", 0.1),)
    assert policy.personal_data.attributes == {"Country", "plan", "signed up"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("flag_allowlist", "checkout*, beta/test", "'beta/test' is not a flag key pattern"),
        ("flag_denylist", "exp-[ab", "'exp-[ab' has a [ without its closing ]."),
        ("flag_exposure_policies", "a* all\nb* sometimes", "Line 2: 'sometimes' is not an"),
        ("flag_exposure_policies", "a* all extra", "Line 1 ('a* all extra') must be a flag"),
        ("flag_sample_rates", "a* 0.5\nb* 2", "Line 2: 2.0 is not a sample rate"),
        ("flag_sample_rates", "a* half", "Line 1: 'half' is not a sample rate"),
        ("exposure_policy", "none", "Select a valid choice"),
        ("personal_data", "encrypted", "Select a valid choice"),
    ],
)
def test_the_admin_form_names_the_field_and_the_line(staff_client, field, value, said):
    response = staff_client.post_form(ADD_URL, form_data(**{field: value}))
    errors = errors_of(response)
    assert list(errors) == [field]
    assert said in errors[field][0], errors[field][0]
    assert not SegmentConnection.objects.exists()


@pytest.mark.django_db
def test_a_pattern_both_allowed_and_denied_is_refused(staff_client):
    response = staff_client.post_form(
        ADD_URL, form_data(flag_allowlist="a*, b*", flag_denylist="b*")
    )
    assert errors_of(response) == {
        "flag_denylist": ["'b*' is both allowed and denied: remove it from one of the lists."]
    }


@pytest.mark.django_db
def test_attribute_names_need_the_allowlist_policy(staff_client):
    response = staff_client.post_form(
        ADD_URL, form_data(personal_data="hashed", personal_data_attributes="Country")
    )
    assert list(errors_of(response)) == ["personal_data_attributes"]


@pytest.mark.django_db
def test_policies_on_a_connection_that_forwards_no_evaluations_are_refused(staff_client):
    response = staff_client.post_form(
        ADD_URL,
        form_data(
            forward_evaluations=None,  # unticked
            exposure_policy="decided",
            personal_data="hashed",
            flag_denylist="x",
        ),
    )
    errors = errors_of(response)
    assert set(errors) == {"exposure_policy", "personal_data", "flag_denylist"}
    assert all("forwards no flag evaluations" in e[0] for e in errors.values())


@pytest.mark.django_db
def test_a_form_posted_without_the_policies_keeps_them(staff_client, make_connection):
    connection = make_connection(personal_data="hashed", flag_denylist="x*")
    data = form_data(name=connection.name, write_key="")
    for name in ("exposure_policy", "experiment_viewed", "personal_data"):
        del data[name]
    url = f"/admin/configcat_segment/segmentconnection/{connection.pk}/change/"
    response = staff_client.post_form(url, data)
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.personal_data == "hashed"


@pytest.mark.django_db
def test_the_change_page_shows_the_policies(staff_client, make_connection):
    connection = make_connection(flag_exposure_policies="checkout* decided")
    page = staff_client.get(
        f"/admin/configcat_segment/segmentconnection/{connection.pk}/change/"
    ).content.decode()
    assert "Which evaluations (exposures)" in page
    assert "Personal data in evaluations" in page
    assert "checkout* decided</textarea>" in page
