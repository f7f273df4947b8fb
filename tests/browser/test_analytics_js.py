"""Segment's own analytics.js and the server agree on who the visitor is.

The demo sets ``SET_ANONYMOUS_ID_COOKIE``. Real Chromium loads analytics.js from the npm
package ``@segment/analytics-next`` (installed into ``tests/browser/vendor`` by ``npm ci``),
served from that local file by a loopback server that also stands in for Segment's API
(``cdnSettings`` given inline, ``apiHost`` on loopback, so analytics.js fetches nothing
from a CDN). Every request the browser makes to anything but loopback is aborted and
recorded, and the tests assert there was none.

Both orders are proven: the server mints the cookie first and analytics.js adopts it, or
analytics.js mints it first and the server's evaluation events carry it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

import configcat_segment
from configcat_segment.constants import FLAG_EVALUATED
from configcat_segment.evaluations import client as client_module
from configcat_segment.evaluations.buffer import get_writer
from configcat_segment.evaluations.hook import recorder
from configcat_segment.models import Event

from ..conftest import IN_CI
from ..evaluations.conftest import evaluation_settings

pytestmark = pytest.mark.django_db(transaction=True)

VENDOR = Path(__file__).resolve().parent / "vendor"
ANALYTICS_NEXT = VENDOR / "node_modules" / "@segment" / "analytics-next"
BUNDLES = ANALYTICS_NEXT / "dist" / "umd"
PROJECT_FLAGS = Path(__file__).resolve().parents[2] / "project" / "flags.json"
WRITE_KEY = "browser-test-write-key"
# A site on a real-looking domain: Chromium resolves it to loopback (see shop_page).
SHOP_HOST = "www.shop.test"
SHOP_DOMAIN = ".shop.test"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1", SHOP_HOST}
COOKIE = "ajs_anonymous_id"


@dataclass
class Loopback:
    """analytics.js's CDN and Segment's API, on 127.0.0.1."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    served: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    if not (BUNDLES / "index.js").is_file():
        reason = f"{BUNDLES / 'index.js'} is missing (npm ci --prefix {VENDOR})"
        if IN_CI:
            pytest.fail(f"{reason}; .ci/run installs it.")
        pytest.skip(reason)
    state = Loopback()

    class Handler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Credentials", "true")

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            # /analytics-next/bundles/<file>: the package's own files, nothing else.
            prefix = "/analytics-next/bundles/"
            name = urlsplit(self.path).path.removeprefix(prefix)
            path = BUNDLES / name
            if not self.path.startswith(prefix) or "/" in name or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            state.served.append(name)
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"unparsed": raw.decode(errors="replace")}
            state.received.append({"path": self.path, "body": body})
            answer = b'{"success": true}'
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def demo_settings(segment_connection: Any) -> Iterator[None]:
    """The demo's flags and its SET_ANONYMOUS_ID_COOKIE, a connection forwarding them."""
    from project.settings import CONFIGCAT_SEGMENT as DEMO

    assert DEMO["SET_ANONYMOUS_ID_COOKIE"] is True
    settings = evaluation_settings(FLAG_OVERRIDES=str(PROJECT_FLAGS), SET_ANONYMOUS_ID_COOKIE=True)
    forget_evaluations()
    try:
        with override_settings(CONFIGCAT_SEGMENT=settings):
            yield
    finally:
        forget_evaluations()


def forget_evaluations() -> None:
    """No client, buffer or dedup memory left from another test (they are per process)."""
    client_module.close()
    get_writer().discard()
    recorder.reset()


@pytest.fixture
def guarded(page: Any) -> Iterator[list[str]]:
    """The page, with every request outside loopback aborted and listed."""
    outside: list[str] = []

    def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("http://", "https://")) and host not in LOOPBACK_HOSTS:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", route)
    yield outside
    assert outside == [], f"the browser tried to reach outside loopback: {outside}"


def load_analytics_js(page: Any, loopback: Loopback) -> str:
    """Load analytics.js on the current page, send a page call, return its anonymous id."""
    page.add_script_tag(url=f"{loopback.url}/analytics-next/bundles/index.js")
    api_host = loopback.url.removeprefix("http://") + "/v1"
    anonymous_id: str = page.evaluate(
        """async ({writeKey, cdnURL, apiHost}) => {
            const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
                {
                    writeKey,
                    cdnURL,
                    cdnSettings: {
                        integrations: {
                            "Segment.io": {apiKey: writeKey, apiHost, protocol: "http"},
                        },
                    },
                },
            );
            await analytics.page();
            return analytics.user().anonymousId();
        }""",
        {"writeKey": WRITE_KEY, "cdnURL": loopback.url, "apiHost": api_host},
    )
    return anonymous_id


def ajs_cookies(page: Any) -> list[dict[str, Any]]:
    return [c for c in page.context.cookies() if c["name"] == COOKIE]


def evaluation_anonymous_ids() -> set[str]:
    configcat_segment.flush()
    return {
        event.payload.get("anonymousId")
        for event in Event.objects.filter(type="track", event_name=FLAG_EVALUATED)
    }


def page_calls(loopback: Loopback) -> list[dict[str, Any]]:
    return [r["body"] for r in loopback.received if r["path"] == "/v1/p"]


def test_analytics_js_adopts_the_id_the_server_minted(
    page, guarded, loopback, demo_settings, screenshot
):
    loopback.received.clear()
    response = page.goto("/")
    assert response.ok
    (cookie,) = ajs_cookies(page)
    minted = cookie["value"]
    assert (cookie["path"], cookie["sameSite"], cookie["httpOnly"]) == ("/", "Lax", False)
    assert cookie["expires"] > response.request.timing["startTime"] / 1000 + 364 * 24 * 3600
    assert evaluation_anonymous_ids() == {minted}

    assert load_analytics_js(page, loopback) == minted
    screenshot("server-first")
    # analytics.js wrote its cookie over ours: still one cookie, the same id.
    assert [c["value"] for c in ajs_cookies(page)] == [minted]
    page.reload()
    assert evaluation_anonymous_ids() == {minted}
    calls = page_calls(loopback)
    assert calls, "analytics.js sent nothing to the loopback API"
    assert {c["anonymousId"] for c in calls} == {minted}
    assert "index.js" in loopback.served


def test_the_server_uses_the_id_analytics_js_minted(
    page, guarded, loopback, demo_settings, screenshot
):
    loopback.received.clear()
    page.goto("/admin/login/")  # a demo page that evaluates no flag
    assert ajs_cookies(page) == []
    minted = load_analytics_js(page, loopback)
    assert minted
    (cookie,) = ajs_cookies(page)
    assert cookie["value"] == minted

    response = page.goto("/")
    assert response.ok
    assert "set-cookie" not in {k.lower() for k in response.headers}
    screenshot("analytics-js-first")
    assert evaluation_anonymous_ids() == {minted}
    assert load_analytics_js(page, loopback) == minted
    calls = page_calls(loopback)
    assert [c["context"]["page"]["path"] for c in calls] == ["/admin/login/", "/"]
    assert {c["anonymousId"] for c in calls} == {minted}


@pytest.fixture
def shop_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A page in a Chromium that resolves www.shop.test to loopback, the live server's port."""
    from .conftest import CHROMIUM, CHROMIUM_ARGS

    mapped = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {SHOP_HOST} 127.0.0.1"],
    )
    port = urlsplit(live_server.url).port
    context = mapped.new_context(base_url=f"http://{SHOP_HOST}:{port}")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
        mapped.close()


def test_on_a_real_domain_both_write_one_cookie_for_the_registrable_domain(
    shop_page, loopback, demo_settings, settings
):
    """analytics.js writes its cookie for the registrable domain (".shop.test"); with
    ANONYMOUS_ID_COOKIE_DOMAIN set alike, the server's cookie is that same cookie (without
    it, the browser would hold two: a host-only one and analytics.js's)."""
    settings.ALLOWED_HOSTS = [SHOP_HOST]
    outside: list[str] = []

    def route(route: Any) -> None:
        if (urlsplit(route.request.url).hostname or "") in LOOPBACK_HOSTS:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    shop_page.context.route("**/*", route)
    configured = evaluation_settings(
        FLAG_OVERRIDES=str(PROJECT_FLAGS),
        SET_ANONYMOUS_ID_COOKIE=True,
        ANONYMOUS_ID_COOKIE_DOMAIN=SHOP_DOMAIN,
    )
    with override_settings(CONFIGCAT_SEGMENT=configured):
        loopback.received.clear()
        assert shop_page.goto("/").ok
        (cookie,) = ajs_cookies(shop_page)
        assert cookie["domain"] == SHOP_DOMAIN
        minted = cookie["value"]
        assert load_analytics_js(shop_page, loopback) == minted
        # analytics.js wrote its cookie for .shop.test: the same one, not a second one.
        assert [(c["domain"], c["value"]) for c in ajs_cookies(shop_page)] == [
            (SHOP_DOMAIN, minted)
        ]
        assert evaluation_anonymous_ids() == {minted}
        assert {c["anonymousId"] for c in page_calls(loopback)} == {minted}
    assert outside == []
