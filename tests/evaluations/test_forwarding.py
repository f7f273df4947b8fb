"""Evaluations outside requests (commands, tasks, shells): the real SDK, the real outbox."""

from __future__ import annotations

import io
import json
import logging

import pytest
from configcatclient.user import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

import configcat_segment
from configcat_segment.constants import INTEGRATION
from configcat_segment.evaluations import buffer as writer
from configcat_segment.evaluations import store
from configcat_segment.models import EvaluationCounter, Event

from .conftest import FLAGS, PLAIN_USER, PRO_USER, database_away, identifies, tracks

pytestmark = pytest.mark.django_db


def test_every_flag_is_sent_with_exactly_what_the_sdk_computed(segment_connection, bare_client):
    client = configcat_segment.get_client()
    for user in (PRO_USER, PLAIN_USER):
        for key in FLAGS:
            client.get_value(key, None, user)
    assert configcat_segment.flush() == 2 * len(FLAGS) + 2  # plus one identify per user

    sent = {(t["userId"], t["properties"]["feature_flag_key"]): t for t in tracks()}
    assert len(sent) == 2 * len(FLAGS)
    for user in (PRO_USER, PLAIN_USER):
        for key in FLAGS:
            expected = bare_client.get_value_details(key, None, user)
            properties = sent[user.get_identifier(), key]["properties"]
            assert properties["variation_id"] == expected.variation_id
            if key == "bannerJson":
                assert len(expected.value) > 256
                assert properties["value"] == expected.variation_id == "v-banner-long"
            else:
                assert properties["value"] == expected.value
            assert properties["user"] == json.loads(str(user))
    # The targeting rules and percentage options really were evaluated per user.
    assert sent["u-pro", "isPremium"]["properties"]["value"] is True
    assert sent["u-plain", "isPremium"]["properties"]["value"] is False
    assert sent["u-pro", "maxItems"]["properties"]["value"] == 50
    assert sent["u-pro", "checkoutVariant"]["properties"]["variation_id"] in {
        "v-checkout-a",
        "v-checkout-b",
    }


def test_the_track_message_matches_the_seed(segment_connection):
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    (track,) = tracks()
    assert set(track) == {
        "type",
        "event",
        "userId",
        "properties",
        "timestamp",
        "messageId",
        "context",
    }
    assert track["event"] == "Feature Flag Evaluated"
    assert track["userId"] == "u-pro"
    assert set(track["properties"]) == {"feature_flag_key", "value", "variation_id", "user"}
    assert track["context"]["integration"] == INTEGRATION
    assert "page" not in track["context"], "no request, no page"
    event = Event.objects.get(type="track")
    assert event.flag_key == "isPremium"
    assert event.user_id == "u-pro"
    assert event.status == Event.Status.PENDING


def test_an_identify_once_per_user_per_window(segment_connection):
    client = configcat_segment.get_client()
    for key in FLAGS:
        client.get_value(key, None, PRO_USER)
    configcat_segment.flush()
    (identify,) = identifies()
    assert identify["userId"] == "u-pro"
    assert identify["traits"] == {
        "email": "ada@example.com",
        "country": "HU",
        "plan": "pro",
    }


def test_repeats_within_the_window_are_sent_once(segment_connection):
    client = configcat_segment.get_client()
    for _ in range(50):
        client.get_value("isPremium", False, PRO_USER)
        client.get_value("isPremium", False, PLAIN_USER)
    configcat_segment.flush()
    assert len(tracks()) == 2


def test_a_new_value_for_the_same_user_and_flag_is_sent(segment_connection, tmp_path, configure):
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"flags": {"banner": "one"}}))
    configure(FLAG_OVERRIDES=str(flags))
    client = configcat_segment.get_client()
    user = User("u1")
    client.get_value("banner", "", user)
    flags.write_text(json.dumps({"flags": {"banner": "two!"}}))
    import os

    os.utime(flags, (1, 1))  # the SDK reloads on a changed mtime
    assert client.get_value("banner", "", user) == "two!"
    client.get_value("banner", "", user)
    configcat_segment.flush()
    # Both values once, the repeat not (one write stores them in the writer's order).
    assert sorted(t["properties"]["value"] for t in tracks()) == ["one", "two!"]
    assert [t["properties"]["variation_id"] for t in tracks()] == [None, None]


def test_window_zero_sends_every_evaluation_like_the_seed(segment_connection, configure):
    configure(DEDUP_WINDOW_SECONDS=0)
    client = configcat_segment.get_client()
    for _ in range(3):
        client.get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert len(tracks()) == 3
    assert len(identifies()) == 3
    assert len({t["messageId"] for t in tracks()}) == 3


def test_an_evaluation_without_a_user_gets_a_random_anonymous_id(segment_connection):
    configcat_segment.get_client().get_value("discountRate", 0.0)
    configcat_segment.flush()
    (track,) = tracks()
    assert "userId" not in track
    assert track["anonymousId"]
    assert track["properties"] == {
        "feature_flag_key": "discountRate",
        "value": 0.15,
        "variation_id": "v-discount",
    }
    assert identifies() == []


def test_failed_evaluations_are_counted_and_logged_not_sent(segment_connection, caplog):
    client = configcat_segment.get_client()
    with caplog.at_level(logging.WARNING, logger="configcat_segment.evaluations.hook"):
        for _ in range(3):
            assert client.get_value("noSuchFlag", "fallback", PRO_USER) == "fallback"
    configcat_segment.flush()
    assert tracks() == []
    assert EvaluationCounter.objects.totals() == {"failed": 3}
    messages = [
        r.getMessage() for r in caplog.records if r.name == "configcat_segment.evaluations.hook"
    ]
    assert len(messages) == 1, "logged at most once a minute"
    assert "'noSuchFlag'" in messages[0]


def test_sampling_keeps_whole_users(segment_connection, configure):
    configure(SAMPLE_RATE=0.5)
    client = configcat_segment.get_client()
    users = [User(f"user-{n}") for n in range(200)]
    for user in users:
        client.get_value("isPremium", False, user)
        client.get_value("maxItems", 0, user)
    configcat_segment.flush()
    by_user: dict[str, set[str]] = {}
    for track in tracks():
        by_user.setdefault(track["userId"], set()).add(track["properties"]["feature_flag_key"])
    assert 60 < len(by_user) < 140
    assert all(flags == {"isPremium", "maxItems"} for flags in by_user.values())


def test_each_forwarding_connection_gets_its_own_copy(make_connection):
    first = make_connection(name="Production")
    second = make_connection(name="Warehouse")
    make_connection(name="Changes only", forward_evaluations=False)
    make_connection(name="Disconnected", connected=False)
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert sorted(
        Event.objects.filter(type="track").values_list("connection__name", flat=True)
    ) == [
        "Production",
        "Warehouse",
    ]
    ids = {e.connection_id: e.message_id for e in Event.objects.filter(type="track")}
    assert ids[first.pk] != ids[second.pk], "salted per connection"


def test_forwarding_off_sends_nothing(segment_connection, configure):
    configure(FORWARD_EVALUATIONS=False)
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert not Event.objects.exists()


def test_the_same_evaluation_from_two_processes_is_stored_once(segment_connection):
    """Two processes share no memory; the deterministic messageId makes the outbox dedupe."""
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    (evaluation,) = list(writer.get_writer()._buffer)
    store.write([evaluation])
    store.write([evaluation])  # what another process, with its own dedup memory, writes
    assert len(tracks()) == 1
    assert len(identifies()) == 1


def test_a_full_buffer_drops_counts_and_shows_in_status(segment_connection, configure, caplog):
    configure(EVALUATION_BUFFER_SIZE=3)
    client = configcat_segment.get_client()
    with caplog.at_level(logging.WARNING, logger="configcat_segment.evaluations.buffer"):
        for n in range(5):
            client.get_value("isPremium", False, User(f"user-{n}"))
    assert len(writer.get_writer()) == 3
    assert any("buffer is full" in r.getMessage() for r in caplog.records)
    configcat_segment.flush()
    assert len(tracks()) == 3
    out = io.StringIO()
    call_command("configcat_segment_status", stdout=out)
    assert json.loads(out.getvalue())["evaluations"] == {
        "dropped": 2,
        "failed": 0,
        "random_anonymous_ids": 0,
    }


def test_when_the_database_fails_evaluations_wait_for_the_next_flush(segment_connection, caplog):
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)

    with (
        database_away(),
        caplog.at_level(logging.ERROR, logger="configcat_segment.evaluations.buffer"),
    ):
        assert configcat_segment.flush() == 0
    assert "could not write 1 evaluations" in caplog.text
    assert len(writer.get_writer()) == 1
    assert configcat_segment.flush() == 2
    assert len(tracks()) == 1


def test_nothing_is_written_without_a_forwarding_connection(django_assert_num_queries):
    configcat_segment.get_client().get_value("isPremium", False, PRO_USER)
    with django_assert_num_queries(1):
        assert configcat_segment.flush() == 0


def test_one_query_resolves_connections_for_a_whole_flush(segment_connection):
    client = configcat_segment.get_client()
    for n in range(300):
        client.get_value("isPremium", False, User(f"user-{n}"))
    with CaptureQueriesContext(connection) as queries:
        assert configcat_segment.flush() == 600
    # One SELECT of connections, one bulk INSERT (SQLite may split it into a few); around
    # them, the transaction (a savepoint here, inside the test's transaction).
    statements = [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].startswith(("SAVEPOINT ", "RELEASE SAVEPOINT "))
    ]
    assert len(statements) <= 12
