"""What ``configcat_segment.compat`` reads of the two SDKs is still there, and still means
what it did: when an upgrade changes one of these private attributes, these tests fail
and name it."""

import datetime as dt
from typing import Any

import configcatclient
import pytest
import requests
from configcatclient.configcatclient import ConfigCatClient
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.localdictionarydatasource import LocalDictionaryFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from requests.adapters import HTTPAdapter
from segment.analytics import request as segment_request

from configcat_segment import compat
from configcat_segment.segment import payloads, transport
from tests.segment_server import SegmentServer

KEY = "tests-compat/own-client"
WRITE_KEY = "wk_compat_0123456789"


def own_client(key: str = KEY) -> Any:
    overrides = LocalDictionaryFlagOverrides({"isPremium": True}, OverrideBehaviour.LocalOnly)
    return configcatclient.get(key, ConfigCatOptions(flag_overrides=overrides))


# -- configcat-client --------------------------------------------------------------------------


def test_the_sdk_still_keeps_its_clients_by_key():
    assert isinstance(getattr(ConfigCatClient, "_instances", None), dict), (
        "configcat-client no longer has ConfigCatClient._instances: update compat.py"
    )
    client = own_client()
    try:
        assert getattr(client, "_sdk_key", None) == KEY, (
            "configcat-client no longer has ConfigCatClient._sdk_key: update compat.py"
        )
        assert compat.configcat_client_is_open(client)
    finally:
        client.close()
    assert not compat.configcat_client_is_open(client)


def test_a_client_closed_by_close_all_is_not_open_and_its_successor_is():
    closed = own_client()
    configcatclient.close_all()
    successor = own_client()
    try:
        assert not compat.configcat_client_is_open(closed)
        assert compat.configcat_client_is_open(successor)
    finally:
        successor.close()


def test_the_sdk_still_lists_its_flag_evaluated_callbacks_and_closing_empties_them():
    evaluated = []
    client = own_client()
    try:
        assert compat.flag_evaluated_callbacks(client) == ()
        client.get_hooks().add_on_flag_evaluated(evaluated.append)
        assert compat.flag_evaluated_callbacks(client) == (evaluated.append,), (
            "configcat-client no longer lists callbacks in Hooks._on_flag_evaluated_callbacks"
        )
        assert client.get_value("isPremium", False) is True
        assert [details.key for details in evaluated] == ["isPremium"]
    finally:
        client.close()
    assert compat.flag_evaluated_callbacks(client) == ()


# -- segment-analytics-python ------------------------------------------------------------------


class CountingAdapter(HTTPAdapter):
    """requests' own adapter, counting what goes through it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.closed = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent += 1
        return super().send(request, **kwargs)

    def close(self) -> None:
        self.closed += 1
        super().close()


def send(url: str) -> transport.Answer:
    message = payloads.track(
        event="Feature Flag Changed",
        properties={"feature_flag_key": "isPremium"},
        user_id="user-1",
        timestamp=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        message_id=payloads.random_message_id(),
    )
    return transport.send(
        [message], endpoint=url, write_key=WRITE_KEY, sent_at="", gzip=False, timeout=5.0
    )


@pytest.fixture
def counted() -> Any:
    session = getattr(segment_request, "_session", None)
    # Once the app has sent, a stand-in of segment/network.py holds the library's session.
    library = getattr(session, "library", session)
    assert isinstance(library, requests.Session), (
        "segment-analytics-python no longer has request._session: update compat.py"
    )
    with SegmentServer(write_keys={WRITE_KEY}) as server:
        adapter = CountingAdapter()
        library.mount(server.url, adapter)
        try:
            yield server, adapter
        finally:
            del library.adapters[server.url]
            adapter.close()


def library_post(url: str) -> Any:
    """segment-analytics-python's own call, as any other user of it in the process makes it."""
    message = {"type": "track", "event": "x", "userId": "u", "messageId": "compat-1"}
    return segment_request.post(WRITE_KEY, host=url, gzip=False, timeout=5.0, batch=[message])


def test_segment_still_posts_through_its_module_session_which_compat_closes(counted):
    server, adapter = counted
    assert library_post(server.url).status_code == 200
    assert adapter.sent == 1, "segment.analytics.request.post no longer uses request._session"
    compat.close_segment_connections()
    assert adapter.closed == 1
    assert library_post(server.url).status_code == 200, "the session stays usable after closing"
    assert adapter.sent == 2


def test_the_app_sends_through_its_own_session_and_leaves_the_library_s_alone(counted):
    server, adapter = counted
    assert send(server.url).status == 200
    assert adapter.sent == 0  # the guarded session of segment/network.py sent it
    stand_in = compat.segment_session()
    assert stand_in.library.adapters[server.url] is adapter
    assert library_post(server.url).status_code == 200
    assert adapter.sent == 1
