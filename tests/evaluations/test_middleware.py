"""FlagEvaluationMiddleware: the request's user, anonymous visitors, async views, threads."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.db import connections
from django.test import AsyncClient, Client, override_settings

import configcat_segment
from configcat_segment.evaluations import buffer as writer

from .conftest import identifies, tracks

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.evaluations.urls")]


@pytest.fixture
def member(db: None) -> Any:
    return get_user_model().objects.create_user("ada", "ada@example.com", "pw-ada-123")


@pytest.fixture
def member_client(member: Any) -> Client:
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (tests)")
    client.force_login(member)
    return client


def flushed_tracks() -> list[dict[str, Any]]:
    configcat_segment.flush()
    return tracks()


def test_the_signed_in_user_is_the_configcat_user(
    segment_connection, member, member_client, bare_client
):
    from configcatclient.user import User

    response = member_client.get(
        "/flags/?keys=isPremium,maxItems,checkoutVariant&x=1", HTTP_REFERER="http://ref.example/"
    )
    assert response.status_code == 200
    shown = response.json()
    expected_user = User(str(member.pk), email="ada@example.com")
    for key, details in shown.items():
        computed = bare_client.get_value_details(key, None, expected_user)
        assert details == {"value": computed.value, "variation_id": computed.variation_id}
    assert shown["isPremium"]["value"] is True  # the @example.com targeting rule

    sent = {t["properties"]["feature_flag_key"]: t for t in flushed_tracks()}
    assert set(sent) == {"isPremium", "maxItems", "checkoutVariant"}
    track = sent["isPremium"]
    assert track["userId"] == str(member.pk)
    assert "anonymousId" not in track, "no analytics.js cookie was sent"
    assert track["properties"]["value"] is True
    assert track["properties"]["user"] == {"Identifier": str(member.pk), "Email": "ada@example.com"}
    assert track["context"]["page"] == {
        "url": "http://testserver/flags/?keys=isPremium,maxItems,checkoutVariant&x=1",
        "path": "/flags/",
        "referrer": "http://ref.example/",
    }
    assert track["context"]["userAgent"] == "Mozilla/5.0 (tests)"
    assert "ip" not in track["context"]
    (identify,) = identifies()
    assert identify["userId"] == str(member.pk)
    assert identify["traits"] == {"email": "ada@example.com"}
    assert identify["context"]["page"]["path"] == "/flags/"


def test_the_client_ip_only_when_configured(segment_connection, configure):
    configure(SEND_CLIENT_IP=True)
    Client(REMOTE_ADDR="203.0.113.9").get("/flags/")
    (track,) = flushed_tracks()
    assert track["context"]["ip"] == "203.0.113.9"


@pytest.mark.parametrize(
    "cookie",
    [
        "0f6a4ad8-0d1d-4a87-a2a3-2b0d1c3f4e5a",
        '"0f6a4ad8-0d1d-4a87-a2a3-2b0d1c3f4e5a"',
        "%220f6a4ad8-0d1d-4a87-a2a3-2b0d1c3f4e5a%22",
    ],
)
def test_an_anonymous_visitor_keeps_the_analytics_js_identity(segment_connection, cookie):
    client = Client()
    client.cookies["ajs_anonymous_id"] = cookie
    response = client.get("/flags/?keys=isPremium,discountRate")
    (track, other) = flushed_tracks()
    for message in (track, other):
        assert message["anonymousId"] == "0f6a4ad8-0d1d-4a87-a2a3-2b0d1c3f4e5a"
        assert "userId" not in message
        assert "user" not in message["properties"]
    assert identifies() == []
    assert "ajs_anonymous_id" not in response.cookies, "never set a cookie unless configured"


def test_a_signed_in_user_with_the_cookie_links_both_identities(segment_connection, member_client):
    member_client.cookies["ajs_anonymous_id"] = "anon-42"
    member_client.get("/flags/")
    (track,) = flushed_tracks()
    assert track["anonymousId"] == "anon-42"
    assert track["userId"]


def test_without_the_cookie_the_session_gives_a_stable_id_that_hides_its_key(segment_connection):
    client = Client()
    session = client.session
    session["seen"] = True
    session.save()
    session_key = session.session_key
    client.get("/flags/?keys=isPremium")
    client.get("/flags/?keys=maxItems")
    first, second = flushed_tracks()
    assert first["anonymousId"] == second["anonymousId"]
    assert str(uuid.UUID(first["anonymousId"])) == first["anonymousId"]
    stored = json.dumps([e for e in tracks()])
    assert session_key not in stored


def test_otherwise_a_random_id_per_request_and_a_cookie_only_when_configured(
    segment_connection, configure
):
    response = Client().get("/flags/?keys=isPremium,maxItems")
    first, second = flushed_tracks()
    assert first["anonymousId"] == second["anonymousId"], "one id for the whole request"
    assert "ajs_anonymous_id" not in response.cookies

    configure(SET_ANONYMOUS_ID_COOKIE=True)
    response = Client().get("/flags/?keys=discountRate")
    cookie = response.cookies["ajs_anonymous_id"]
    (third,) = [
        t for t in flushed_tracks() if t["properties"]["feature_flag_key"] == "discountRate"
    ]
    assert cookie.value == third["anonymousId"]
    assert cookie["samesite"] == "Lax"
    assert not cookie["httponly"], "analytics.js must be able to read it"
    assert "ajs_anonymous_id" not in Client().get("/nothing/").cookies


def test_a_configured_cookie_is_not_replaced_when_the_browser_has_one(
    segment_connection, configure
):
    configure(SET_ANONYMOUS_ID_COOKIE=True)
    client = Client()
    client.cookies["ajs_anonymous_id"] = "from-the-browser"
    assert "ajs_anonymous_id" not in client.get("/flags/").cookies


def test_a_view_that_raises_still_hands_its_evaluations_off(segment_connection):
    client = Client(raise_request_exception=False)
    assert client.get("/failing/").status_code == 500
    (track,) = flushed_tracks()
    assert track["properties"]["feature_flag_key"] == "isPremium"


def test_a_request_that_evaluates_nothing_does_no_auth_or_database_work(
    segment_connection, member_client, django_assert_num_queries
):
    with django_assert_num_queries(0):
        # The session is not even loaded: the ConfigCat user is built on first evaluation.
        assert member_client.get("/nothing/").status_code == 200
    assert len(writer.get_writer()) == 0


def test_no_database_write_on_the_request_thread(
    segment_connection, member_client, django_assert_num_queries
):
    # Loading the session and the user: 2 queries; nothing is written before a flush.
    with django_assert_num_queries(2):
        member_client.get("/flags/?keys=isPremium,maxItems,checkoutVariant")
    assert len(writer.get_writer()) == 3
    assert tracks() == []


@pytest.mark.django_db(transaction=True)  # the async client logs in on another thread
def test_async_views(segment_connection, member, bare_client):
    import asyncio

    from configcatclient.user import User

    async def call() -> Any:
        client = AsyncClient()
        await client.aforce_login(member)
        try:
            return await client.get("/async-flags/?keys=isPremium,maxItems")
        finally:
            await sync_to_async(connections.close_all)()

    response = asyncio.run(call())
    assert response.status_code == 200
    expected = bare_client.get_value_details(
        "isPremium", None, User(str(member.pk), email="ada@example.com")
    )
    assert response.json()["isPremium"]["value"] == expected.value
    assert response.json()["enabled"] is expected.value
    sent = {t["properties"]["feature_flag_key"]: t for t in flushed_tracks()}
    assert set(sent) == {"isPremium", "maxItems"}
    assert sent["isPremium"]["userId"] == str(member.pk)
    assert sent["isPremium"]["context"]["page"]["path"] == "/async-flags/"


def test_the_template_tag_uses_the_request_user(segment_connection, member, member_client):
    response = member_client.get("/template/")
    assert response.content == b"max=10"
    (track,) = flushed_tracks()
    assert track["userId"] == str(member.pk)
    assert track["properties"]["feature_flag_key"] == "maxItems"
    assert track["context"]["page"]["path"] == "/template/"


def test_threads_see_the_request_only_when_they_carry_its_context(
    segment_connection, member_client
):
    member_client.get("/threads/")
    sent = {t["properties"]["feature_flag_key"]: t for t in flushed_tracks()}
    assert sent["maxItems"]["context"]["page"]["path"] == "/threads/"
    assert "page" not in sent["discountRate"]["context"]
    assert sent["discountRate"]["userId"] == sent["maxItems"]["userId"]


@pytest.mark.django_db(transaction=True)  # requests on eight threads, eight connections
def test_concurrent_requests_do_not_mix_their_users(segment_connection, db):
    from concurrent.futures import ThreadPoolExecutor

    users = [
        get_user_model().objects.create_user(f"user{n}", f"u{n}@example.com") for n in range(8)
    ]
    clients = []
    for user in users:
        client = Client()
        client.force_login(user)
        clients.append(client)

    def visit(client: Client) -> None:
        try:
            for _ in range(5):
                assert client.get("/flags/?keys=isPremium,maxItems").status_code == 200
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(visit, clients))
    sent = flushed_tracks()
    assert len(sent) == 16
    for track in sent:
        email = track["properties"]["user"]["Email"]
        assert get_user_model().objects.get(pk=track["userId"]).email == email


def test_an_evaluation_without_the_request_user_is_attributed_to_the_visitor(segment_connection):
    client = Client()
    client.cookies["ajs_anonymous_id"] = "visitor-7"
    client.get("/without-user/")
    (track,) = flushed_tracks()
    assert track["anonymousId"] == "visitor-7"
    assert track["context"]["page"]["path"] == "/without-user/"


def test_a_user_factory_from_settings(segment_connection, configure):
    configure(USER_FACTORY="tests.evaluations.factories.country_user")
    Client(HTTP_X_COUNTRY="HU").get("/flags/?keys=betaRollout")
    (track,) = flushed_tracks()
    assert track["userId"] == "visitor-HU"
    assert track["properties"]["user"] == {"Identifier": "visitor-HU", "Country": "HU"}


def test_a_wrong_user_factory_is_a_clear_error(configure):
    from django.core.exceptions import ImproperlyConfigured

    from configcat_segment.evaluations.users import load_user_factory

    with pytest.raises(
        ImproperlyConfigured,
        match=r"CONFIGCAT_SEGMENT\[\"USER_FACTORY\"\] is 'tests.nope.make', which cannot be",
    ):
        load_user_factory("tests.nope.make")
    with pytest.raises(ImproperlyConfigured, match="not a function"):
        load_user_factory("tests.evaluations.factories.NOT_CALLABLE")


def test_check_warns_when_forwarding_without_the_middleware(configure):
    middleware = [m for m in settings.MIDDLEWARE if "FlagEvaluation" not in m]
    with override_settings(MIDDLEWARE=middleware):
        ids = [m.id for m in run_checks()]
        assert "configcat_segment.W003" in ids
        configure(FORWARD_EVALUATIONS=False)
        assert "configcat_segment.W003" not in [m.id for m in run_checks()]
    assert "configcat_segment.W003" not in [m.id for m in run_checks()]


def test_the_template_tag_reports_bad_usage_clearly():
    from django.template import TemplateSyntaxError, engines

    django_engine = engines["django"]
    with pytest.raises(TemplateSyntaxError, match="'flag' did not receive value"):
        django_engine.from_string('{% load configcat_segment %}{% flag "maxItems" %}')
    template = django_engine.from_string(
        "{% load configcat_segment %}{% flag key 0 as value %}{{ value }}"
    )
    with pytest.raises(TemplateSyntaxError, match=r'needs a flag key .* \{% flag "myFlag"'):
        template.render({"key": 42})


def test_the_template_tag_without_a_request_evaluates_without_a_user(segment_connection):
    from django.template import engines

    template = engines["django"].from_string(
        '{% load configcat_segment %}{% flag "discountRate" 0.0 %}'
    )
    assert template.render({}) == "0.15"
    (track,) = flushed_tracks()
    assert "userId" not in track
