"""get_client() from settings, forward_evaluations(), and a lazy package import."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import configcatclient
import pytest
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.datagovernance import DataGovernance
from configcatclient.pollingmode import AutoPollingMode, LazyLoadingMode, ManualPollingMode
from configcatclient.user import User
from django.core.exceptions import ImproperlyConfigured

import configcat_segment
from configcat_segment.client import client_options
from configcat_segment.conf import AppSettings

from .conftest import CONFIG_V6, PRO_USER, tracks


def test_one_client_per_process_until_closed():
    client = configcat_segment.get_client()
    assert configcat_segment.get_client() is client
    from configcat_segment import client as client_module

    client_module.close()
    assert configcat_segment.get_client() is not client


def test_get_client_is_safe_from_many_threads():
    found = []
    barrier = threading.Barrier(8)

    def get() -> None:
        barrier.wait()
        found.append(configcat_segment.get_client())

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
        assert configcat_segment.forward_evaluations(client) is client
        configcat_segment.forward_evaluations(client)
        client.get_value("isPremium", False, PRO_USER)
        configcat_segment.flush()
        assert len(tracks()) == 1
    finally:
        client.close()


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
