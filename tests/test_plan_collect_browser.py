"""Browser clients: the real analytics.js (npm's @segment/analytics-next) in headless Chromium posts to the
collector from another origin (CORS), with text/plain bodies carrying the write key, and every event arrives."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from browser import Page, analytics_js, chromium_page

from instrument.plan import Collector
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(300)
WRITE_KEY = "wk-browser"

_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title>
<script src="/analytics-next/bundles/index.js"></script></head>
<body><script>
window.sent = 0;
window.failed = [];
window.go = async (apiHost, strategy, count) => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey: "@KEY@",
      cdnURL: location.origin,
      cdnSettings: {integrations: {"Segment.io": {apiKey: "@KEY@", apiHost: apiHost, protocol: "http",
                                                 deliveryStrategy: {strategy: strategy}}}},
    },
    {integrations: {"Segment.io": {apiHost: apiHost, protocol: "http", deliveryStrategy: {strategy: strategy}}}},
  );
  await analytics.identify("browser-user", {plan: "pro"});
  await analytics.page("Checkout");
  await Promise.all(Array.from({length: count}, (_, i) =>
    analytics.track("Button Clicked", {i: i, strategy: strategy})
      .then(() => { window.sent += 1; }, (e) => { window.failed.push(String(e)); })));
  return window.sent;
};
</script></body></html>
""".replace("@KEY@", WRITE_KEY)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[str]:
    """A site on its own origin serving the page and analytics.js's bundles (as its CDN would)."""
    site = tmp_path / "site"
    shutil.copytree(analytics_js(), site / "analytics-next" / "bundles")
    (site / "index.html").write_text(_HTML)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with chromium_page(tmp_path) as opened:
        yield opened


@pytest.mark.parametrize("strategy", ["standard", "batching"])
def test_analytics_js_delivers_every_event_from_a_page_in_another_origin(shop: str, page: Page, strategy: str) -> None:
    with Collector(write_key=WRITE_KEY) as collector:
        page.call("Page.navigate", url=shop + "/")
        page.wait_for("typeof AnalyticsNext === 'object' && typeof window.go === 'function'", timeout=60)
        api_host = collector.url.removeprefix("http://") + "/v1"
        page.js(f"window.go({json.dumps(api_host)}, {json.dumps(strategy)}, 100); true")
        waited = requests.get(collector.url + "/micro/wait", params={"count": 102, "timeout": 120}, timeout=150)
        assert waited.status_code == 200, (waited.json(), page.js("window.failed"))
        clicks = requests.get(collector.url + "/micro/good", params={"event": "Button Clicked"}, timeout=30).json()
        assert sorted(e["payload"]["properties"]["i"] for e in clicks) == list(range(100))
        assert len({e["payload"]["messageId"] for e in clicks}) == 100
        assert {e["payload"]["context"]["library"]["name"] for e in clicks} == {"analytics.js"}
        assert all("writeKey" not in e["payload"] for e in clicks)  # the credential is not stored as event data
        [identify] = requests.get(collector.url + "/micro/good", params={"type": "identify"}, timeout=30).json()
        assert identify["payload"]["traits"] == {"plan": "pro"}
        [viewed] = requests.get(collector.url + "/micro/good", params={"type": "page"}, timeout=30).json()
        assert viewed["payload"]["name"] == "Checkout"
        page.wait_for("window.sent === 100", timeout=60)  # and the page saw every send succeed
        assert page.js("window.failed") == []


def test_analytics_js_posts_text_plain_with_the_write_key_to_its_short_paths(shop: str, page: Page) -> None:
    with SegmentEndpoint() as endpoint:
        page.call("Page.navigate", url=shop + "/")
        page.wait_for("typeof AnalyticsNext === 'object' && typeof window.go === 'function'", timeout=60)
        api_host = endpoint.url.removeprefix("http://") + "/v1"
        page.js(f"window.go({json.dumps(api_host)}, 'standard', 3); true")
        assert endpoint.wait_for(5, timeout=120)
        batches = endpoint.batches
        assert sorted(b.path for b in batches) == ["/v1/i", "/v1/p", "/v1/t", "/v1/t", "/v1/t"]
        assert {b.headers["Content-Type"].split(";")[0] for b in batches} == {"text/plain"}
        assert {b.body["writeKey"] for b in batches} == {WRITE_KEY}
        assert {b.headers["Origin"] for b in batches} == {shop}  # cross-origin: CORS let the page read the answer
        page.wait_for("window.sent === 3", timeout=60)
