"""Segment's "Experiment Viewed" and the personal data policies, end to end: the real SDK on
config_v6.json, the outbox, the dispatcher, and a Segment-compatible server on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from configcatclient.user import User

import configcat_segment
from configcat_segment.constants import EXPERIMENT_VIEWED, FLAG_EVALUATED
from configcat_segment.delivery.dispatcher import Dispatcher
from configcat_segment.evaluations.hook import recorder
from configcat_segment.evaluations.privacy import email_pseudonym, pseudonym
from configcat_segment.models import Event, SegmentConnection
from tests.segment_server import SegmentServer

from .conftest import CONFIG_V6, FLAGS, PLAIN_USER, PRO_USER

pytestmark = pytest.mark.django_db


@pytest.fixture
def server() -> Iterator[SegmentServer]:
    with SegmentServer() as running:
        yield running


@pytest.fixture
def connect(make_connection: Any, server: SegmentServer) -> Callable[..., SegmentConnection]:
    def make(**fields: Any) -> SegmentConnection:
        connection: SegmentConnection = make_connection(
            region="custom", custom_endpoint=server.url, **fields
        )
        server.write_keys.add(connection.write_key)
        return connection

    return make


def evaluate_and_deliver(users: tuple[Any, ...] = (PRO_USER, PLAIN_USER)) -> None:
    client = configcat_segment.get_client()
    for user in users:
        for key in FLAGS:
            client.get_value(key, None, user)
    configcat_segment.flush()
    Dispatcher().deliver_due()


def received(server: SegmentServer, connection: SegmentConnection) -> list[dict[str, Any]]:
    """What the server accepted for ``connection``, from its requests' write key."""
    ids = {
        message_id
        for request in server.requests
        if request.write_key == connection.write_key
        for message_id in request.message_ids
    }
    return [m for m in server.accepted_messages if m["messageId"] in ids]


def named(messages: list[dict[str, Any]], event: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for message in messages:
        if message.get("event") == event:
            key = message["properties"].get("feature_flag_key") or message["properties"].get(
                "experiment_id"
            )
            found[message["userId"], key] = message
    return found


# -- Experiment Viewed --------------------------------------------------------------------------


def test_experiment_viewed_as_well_for_percentage_decided_evaluations(connect, server, bare_client):
    connection = connect(experiment_viewed="also")
    evaluate_and_deliver()
    messages = received(server, connection)
    experiments = named(messages, EXPERIMENT_VIEWED)
    evaluated = named(messages, FLAG_EVALUATED)
    # Exactly the evaluations a percentage option decided, per the SDK itself.
    expected = {
        (user.get_identifier(), key)
        for user in (PRO_USER, PLAIN_USER)
        for key in FLAGS
        if bare_client.get_value_details(key, None, user).matched_percentage_option
    }
    assert (
        set(experiments)
        == expected
        == {
            ("u-pro", "checkoutVariant"),
            ("u-pro", "betaRollout"),
            ("u-plain", "checkoutVariant"),
        }
    )
    assert len(evaluated) == 2 * len(FLAGS)  # "as well as": every evaluation still goes
    details = bare_client.get_value_details("checkoutVariant", None, PRO_USER)
    viewed = experiments["u-pro", "checkoutVariant"]
    assert viewed["type"] == "track"
    assert viewed["properties"] == {
        "experiment_id": "checkoutVariant",
        "experiment_name": "checkoutVariant",
        "variation_id": details.variation_id,
        "variation_name": details.value,
    }
    assert viewed["context"]["integration"] == {"name": "configcat", "version": "1.0.0"}
    assert viewed["messageId"] != evaluated["u-pro", "checkoutVariant"]["messageId"]
    assert Event.objects.get(message_id=viewed["messageId"]).kind == "experiment"


def test_experiment_viewed_instead_replaces_only_percentage_decided_evaluations(connect, server):
    connection = connect(experiment_viewed="instead")
    evaluate_and_deliver()
    messages = received(server, connection)
    experiments = named(messages, EXPERIMENT_VIEWED)
    evaluated = named(messages, FLAG_EVALUATED)
    assert set(experiments).isdisjoint(evaluated)
    assert set(experiments) | set(evaluated) == {
        (user.get_identifier(), key) for user in (PRO_USER, PLAIN_USER) for key in FLAGS
    }
    assert ("u-pro", "isPremium") in evaluated  # a targeting rule is no experiment


def test_experiment_viewed_message_ids_are_deduped_like_the_rest(connect, server):
    connection = connect(experiment_viewed="also")
    evaluate_and_deliver()
    first = Event.objects.filter(event_name=EXPERIMENT_VIEWED).count()
    # Another process (no shared memory) evaluating the same in the same window:
    recorder.reset()
    evaluate_and_deliver()
    assert Event.objects.filter(event_name=EXPERIMENT_VIEWED).count() == first == 3
    assert server.duplicates() == {}
    assert len(received(server, connection)) == Event.objects.count()


def test_experiment_viewed_for_a_long_text_variation_names_it_by_its_id(
    connect, server, tmp_path, configure
):
    config = json.loads(CONFIG_V6.read_text())
    long_text = "x" * 400
    config["f"]["checkoutVariant"]["p"][0]["v"] = {"s": long_text}
    config["f"]["checkoutVariant"]["p"][1]["v"] = {"s": long_text + "!"}
    path = tmp_path / "config_v6.json"
    path.write_text(json.dumps(config))
    configure(FLAG_OVERRIDES=str(path))
    connection = connect(experiment_viewed="instead")
    evaluate_and_deliver((PRO_USER,))
    viewed = named(received(server, connection), EXPERIMENT_VIEWED)["u-pro", "checkoutVariant"]
    assert viewed["properties"]["variation_name"] == viewed["properties"]["variation_id"]
    assert viewed["properties"]["variation_id"] in {"v-checkout-a", "v-checkout-b"}


# -- personal data ------------------------------------------------------------------------------


def test_everything_by_default(connect, server):
    connection = connect()
    evaluate_and_deliver((PRO_USER,))
    messages = received(server, connection)
    assert {m["userId"] for m in messages} == {"u-pro"}
    (identify,) = [m for m in messages if m["type"] == "identify"]
    assert identify["traits"] == {"email": "ada@example.com", "country": "HU", "plan": "pro"}


def test_hashed_identifiers_and_emails(connect, server):
    connection = connect(personal_data="hashed", experiment_viewed="also")
    evaluate_and_deliver()
    salt = connection.message_id_salt
    messages = received(server, connection)
    assert len(messages) == 2 + 2 * len(FLAGS) + 3  # identifies, evaluations, experiments
    pro, plain = pseudonym(salt, "u-pro"), pseudonym(salt, "u-plain")
    assert len(pro) == 64
    assert pro != plain
    # Every message of a user carries the same userId: the identity still joins up.
    assert {m["userId"] for m in messages} == {pro, plain}
    (identify,) = [m for m in messages if m["type"] == "identify" and m["userId"] == pro]
    assert identify["traits"] == {
        "email": email_pseudonym(salt, "ada@example.com"),
        "country": "HU",
        "plan": "pro",
    }
    track = named(messages, FLAG_EVALUATED)[pro, "isPremium"]
    assert track["properties"]["user"] == {
        "Identifier": pro,
        "Email": email_pseudonym(salt, "ADA@example.com "),  # trimmed and lower-cased
        "Country": "HU",
        "plan": "pro",
    }
    assert track["properties"]["value"] is True  # the rule on the real email still matched
    text = json.dumps(messages)
    for secret in ("u-pro", "u-plain", "ada@example.com", "bob@elsewhere.org"):
        assert secret not in text
    # The event log shows (and filters by) what was sent.
    assert set(Event.objects.values_list("user_id", flat=True)) == {pro, plain}


def test_pseudonyms_differ_between_connections(connect, server):
    first = connect(name="First", personal_data="hashed")
    second = connect(name="Second", personal_data="hashed")
    evaluate_and_deliver((PRO_USER,))
    ids = {c.pk: {m["userId"] for m in received(server, c)} for c in (first, second)}
    assert ids[first.pk].isdisjoint(ids[second.pk])
    assert len(ids[first.pk]) == len(ids[second.pk]) == 1


def test_an_allowlist_of_attributes_without_the_identifier(connect, server):
    connection = connect(personal_data="allowlist", personal_data_attributes="Country, plan")
    evaluate_and_deliver((PRO_USER,))
    messages = received(server, connection)
    pro = pseudonym(connection.message_id_salt, "u-pro")
    assert {m["userId"] for m in messages} == {pro}
    (identify,) = [m for m in messages if m["type"] == "identify"]
    assert identify["traits"] == {"country": "HU", "plan": "pro"}
    for track in named(messages, FLAG_EVALUATED).values():
        assert track["properties"]["user"] == {"Country": "HU", "plan": "pro"}
    assert "ada@example.com" not in json.dumps(messages)


def test_an_allowlist_with_the_identifier_keeps_the_user_id(connect, server):
    connection = connect(personal_data="allowlist", personal_data_attributes="Identifier")
    evaluate_and_deliver((PRO_USER,))
    messages = received(server, connection)
    assert {m["userId"] for m in messages} == {"u-pro"}
    assert named(messages, FLAG_EVALUATED)["u-pro", "isPremium"]["properties"]["user"] == {
        "Identifier": "u-pro"
    }
    (identify,) = [m for m in messages if m["type"] == "identify"]
    assert identify["traits"] == {}


def test_anonymous_ids_are_not_personal_data(connect, server):
    connection = connect(personal_data="hashed")
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, User("", email="someone@example.com"))  # no id
    configcat_segment.flush()
    Dispatcher().deliver_due()
    (message,) = received(server, connection)
    assert "userId" not in message
    assert message["anonymousId"]
