"""get_client() from settings, forward_evaluations(), and a lazy package import."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import configcatclient
import pytest
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.datagovernance import DataGovernance
from configcatclient.pollingmode import AutoPollingMode, LazyLoadingMode, ManualPollingMode
from configcatclient.user import User
from django.core.exceptions import ImproperlyConfigured

import configcat_segment
from configcat_segment.conf import AppSettings, get_settings
from configcat_segment.evaluations import client as client_module
from configcat_segment.evaluations.client import client_options

from ..threads import run_together
from .conftest import CONFIG_V6, PRO_USER, tracks


def test_one_client_per_process_until_closed():
    client = configcat_segment.get_client()
    assert configcat_segment.get_client() is client
    client_module.close()
    assert configcat_segment.get_client() is not client


def test_get_client_is_safe_from_many_threads():
    found = run_together(configcat_segment.get_client, [()] * 8)
    assert len({id(client) for client in found}) == 1


def test_a_missing_flags_file_names_the_setting(configure, tmp_path):
    configure(FLAG_OVERRIDES=str(tmp_path / "nope.json"))
    with pytest.raises(
        ImproperlyConfigured, match=r'CONFIGCAT_SEGMENT\["FLAG_OVERRIDES"\].*nope\.json'
    ):
        configcat_segment.get_client()


def test_no_sdk_key_and_no_local_flags_names_the_setting(configure):
    configure(FLAG_OVERRIDES=None)
    with pytest.raises(ImproperlyConfigured, match=r'CONFIGCAT_SEGMENT\["SDK_KEY"\] is not set'):
        configcat_segment.get_client()
    configure(FLAG_OVERRIDES=str(CONFIG_V6), FLAG_OVERRIDES_BEHAVIOUR="local_over_remote")
    with pytest.raises(ImproperlyConfigured, match="SDK_KEY"):
        configcat_segment.get_client()


@pytest.mark.parametrize(
    ("mode", "kind", "attribute"),
    [
        ("auto", AutoPollingMode, "poll_interval_seconds"),
        ("lazy", LazyLoadingMode, "cache_refresh_interval_seconds"),
        ("manual", ManualPollingMode, None),
    ],
)
def test_options_from_settings(mode, kind, attribute):
    settings = AppSettings(
        SDK_KEY="PKDVCLf-Hq-h-kCzMp-L7Q/psuH7BGHoUmdONrzzUOY7A",
        POLLING_MODE=mode,
        POLL_INTERVAL_SECONDS=17,
        DATA_GOVERNANCE="eu_only",
        BASE_URL="https://configcat-proxy.example.com",
    )
    sdk_key, options = client_options(settings)
    assert sdk_key == settings.SDK_KEY
    assert isinstance(options.polling_mode, kind)
    if attribute:
        assert getattr(options.polling_mode, attribute) == 17
    assert options.data_governance == DataGovernance.EuOnly
    assert options.base_url == "https://configcat-proxy.example.com"
    assert options.flag_overrides is None


@pytest.mark.django_db
def test_forward_evaluations_is_idempotent(segment_connection, configure):
    configure(DEDUP_WINDOW_SECONDS=0)
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour

    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(CONFIG_V6), OverrideBehaviour.LocalOnly)
    )
    client = configcatclient.get("tests-own-client/forwarded", options)
    try:
        assert_forwarded_once_when_attached_twice(client)
    finally:
        client.close()


def assert_forwarded_once_when_attached_twice(client: Any) -> None:
    """(With DEDUP_WINDOW_SECONDS 0, so that a second hook would make a second event.)"""
    assert configcat_segment.forward_evaluations(client) is client
    configcat_segment.forward_evaluations(client)
    client.get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert len(tracks()) == 1


class FakeCDN(BaseHTTPRequestHandler):
    """ConfigCat's CDN, as the SDK sees it: GET .../configuration-files/<key>/config_v6.json."""

    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        body = CONFIG_V6.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def cdn() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCDN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeCDN.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_remote_config_through_base_url(segment_connection, configure, cdn):
    sdk_key = "PKDVCLf-Hq-h-kCzMp-L7Q/psuH7BGHoUmdONrzzUOY7A"
    configure(SDK_KEY=sdk_key, FLAG_OVERRIDES=None, BASE_URL=cdn, POLLING_MODE="lazy")
    client = configcat_segment.get_client()
    assert client.get_value("maxItems", 0, User("u1", custom={"plan": "pro"})) == 50
    assert FakeCDN.requests == [f"/configuration-files/{sdk_key}/config_v6.json"]
    configcat_segment.flush()
    (track,) = tracks()
    assert track["properties"]["variation_id"] == "v-max-pro"


def test_importing_the_package_loads_neither_models_nor_the_sdk():
    code = (
        "import sys, configcat_segment;"
        "print(json.dumps([m in sys.modules for m in "
        "('configcatclient', 'django.db.models', 'configcat_segment.models')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [False, False, False]


class GatedCDN(FakeCDN):
    """The CDN holding its answer until the test releases it: a slow first download."""

    requested = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        type(self).requested.set()
        type(self).release.wait(30)  # a safety net only: the test releases it
        super().do_GET()


@pytest.fixture
def slow_cdn() -> Iterator[str]:
    GatedCDN.requested.clear()
    GatedCDN.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), GatedCDN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    GatedCDN.release.set()
    server.shutdown()
    server.server_close()


def test_the_first_async_evaluation_waits_for_the_config_off_the_event_loop(configure, slow_cdn):
    """In auto polling mode the first evaluation waits (up to 5 s) for the first config;
    an async view's must not hold the event loop meanwhile."""
    from django.test import AsyncRequestFactory

    from configcat_segment.evaluations.context import RequestContext
    from configcat_segment.middleware import RequestFlags

    sdk_key = "PKDVCLf-Hq-h-kCzMp-L7Q/psuH7BGHoUmdONrzzUOY7A"
    configure(SDK_KEY=sdk_key, FLAG_OVERRIDES=None, BASE_URL=slow_cdn, POLLING_MODE="auto")
    request = AsyncRequestFactory().get("/")
    flags = RequestFlags(RequestContext(request, user_factory=lambda request: PRO_USER))
    assert flags.user is PRO_USER  # built: aget_value goes straight to the client

    async def evaluate_while_the_config_downloads() -> tuple[bool, Any]:
        evaluation = asyncio.ensure_future(flags.aget_value("maxItems", 0))
        # This coroutine runs while the download is held: the loop is not blocked.
        await asyncio.to_thread(GatedCDN.requested.wait, 30)
        loop_was_free = not evaluation.done()
        GatedCDN.release.set()
        return loop_was_free, await evaluation

    loop_was_free, value = asyncio.run(evaluate_while_the_config_downloads())
    assert loop_was_free
    assert value == 50, "evaluated with the downloaded config, not the default"
    client = configcat_segment.get_client()
    assert asyncio.run(configcat_segment.aget_client()) is client


# -- configcatclient.close_all(): the SDK closes every client and clears their hooks ----------


def test_close_after_close_all_is_quiet():
    configcat_segment.get_client()
    configcatclient.close_all()
    client_module.close()


@pytest.mark.django_db
def test_after_close_all_get_client_makes_a_new_forwarding_client(segment_connection):
    closed = configcat_segment.get_client()
    configcatclient.close_all()
    client = configcat_segment.forward_evaluations(configcat_segment.get_client())
    assert client is not closed
    client.get_value("isPremium", False, PRO_USER)
    configcat_segment.flush()
    assert len(tracks()) == 1, "forwarded once"


@pytest.mark.django_db
def test_forward_evaluations_attaches_again_to_a_client_made_after_close_all(
    segment_connection, configure
):
    """Your own client, made again with the same options (so the same Hooks object)."""
    from configcatclient.configcatoptions import Hooks
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour

    configure(DEDUP_WINDOW_SECONDS=0)
    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(CONFIG_V6), OverrideBehaviour.LocalOnly),
        hooks=Hooks(),
    )
    configcat_segment.forward_evaluations(configcatclient.get("tests-own-client/again", options))
    configcatclient.close_all()
    client = configcatclient.get("tests-own-client/again", options)
    try:
        assert_forwarded_once_when_attached_twice(client)
    finally:
        client.close()


def test_close_never_unregisters_a_client_someone_else_made_after_close_all():
    ours = configcat_segment.get_client()
    configcatclient.close_all()
    key, options = client_options(get_settings())
    theirs = configcatclient.get(key, options)
    try:
        client_module.close()
        assert configcatclient.get(key) is theirs
    finally:
        theirs.close()
    assert ours is not theirs
