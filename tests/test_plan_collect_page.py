"""The collector's page at `/`, in a real headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from instrument.plan import Collector, plan_of_module

pytestmark = pytest.mark.timeout(180)
AUTH = "Basic " + base64.b64encode(b"wk-page:").decode()


class Page:
    """One Chromium tab: evaluate JavaScript, and wait (bounded) for a condition to hold."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; the socket's timeout bounds each receive
            reply = json.loads(self.ws.recv())
            if reply.get("id") == call_id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> float:
        """Seconds until ``expression`` is truthy; fails after ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.js(expression):
                return time.monotonic() - started
            time.sleep(0.02)
        raise AssertionError(f"not true within {timeout} s: {expression}")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no chromium on PATH: .ci/run installs Debian's chromium package")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port within 60 s"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=30).json()
        tab = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        try:
            yield Page(ws)
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _send(url: str, *messages: dict[str, Any]) -> None:
    answer = requests.post(
        url + "/v1/batch",
        data=json.dumps({"batch": list(messages)}),
        headers={"Content-Type": "application/json", "Authorization": AUTH},
        timeout=30,
    )
    assert answer.status_code == 200


def _track(user: str, **properties: Any) -> dict[str, Any]:
    props = {"cluster_type": "eks", "infra_id": 7, "proj_id": 1, "cluster_id": 3, **properties}
    return {"type": "track", "event": "Cluster Provisioning Success", "userId": user, "properties": props}


ROWS = "[...document.querySelectorAll('#events tr')]"


def test_the_page_shows_events_live_with_violations_payloads_filters_and_the_plan(page: Page) -> None:
    with Collector(plan=plan_of_module("examples.porter.analytics")) as collector:
        page.call("Page.navigate", url=collector.url + "/")
        page.wait_for("document.readyState === 'complete' && document.getElementById('total') !== null")
        page.wait_for("document.getElementById('no-events').hidden === false")

        _send(collector.url, _track("42"))
        shown_after = page.wait_for(f"{ROWS}.some(r => r.textContent.includes('Cluster Provisioning Success'))")
        assert shown_after < 1.0, f"the event appeared {shown_after:.2f} s after the collector stored it"

        bad = _track("7")
        del bad["properties"]["infra_id"]
        _send(collector.url, bad, {"type": "identify", "userId": "7", "traits": {"email": "a@b.c", "github": "true"}})
        page.wait_for(f"{ROWS}.length === 3")
        # Newest first: the identify, then the bad track, then the first event.
        assert page.js(f"{ROWS}.map(r => r.children[1].textContent + ':' + r.children[4].textContent)") == [
            "identify:good",
            "track:badRequired-Missing /properties/infra_id: required property 'infra_id' is missing",
            "track:good",
        ]
        assert page.js(f"{ROWS}[1].className") == "bad"
        assert (
            page.js("getComputedStyle(document.querySelector('#events tr.bad')).backgroundColor")
            == "rgb(255, 240, 240)"
        )
        assert page.js(
            "[document.getElementById('total').textContent, document.getElementById('bad').textContent]"
        ) == ["3", "1"]

        page.js(f"{ROWS}[1].click()")
        payload = json.loads(page.js("document.getElementById('payload').textContent"))
        assert payload["properties"] == {"cluster_type": "eks", "proj_id": 1, "cluster_id": 3}
        assert payload["userId"] == "7"

        page.js("const u = document.getElementById('filter-user'); u.value = '42'; u.dispatchEvent(new Event('input'))")
        assert page.js(f"{ROWS}.map(r => r.children[3].textContent)") == ["42"]
        page.js(
            "const u2 = document.getElementById('filter-user'); u2.value = ''; u2.dispatchEvent(new Event('input'))"
        )
        page.js("const s = document.getElementById('filter-event'); s.value = '(identify)';")
        page.js("document.getElementById('filter-event').dispatchEvent(new Event('change'))")
        assert page.js(f"{ROWS}.map(r => r.children[1].textContent)") == ["identify"]

        page.js("document.getElementById('tab-plan').click()")
        page.wait_for("document.querySelectorAll('#catalog section').length === 48")  # 47 tracks and an identify
        catalog = page.js("[...document.querySelectorAll('#catalog h3')].map(h => h.textContent)")
        assert "Cluster Provisioning Success" in catalog
        assert "identify UserTraits" in catalog
        success = page.js(
            "[...document.querySelectorAll('#catalog section')].find(s => s.querySelector('h3').textContent === "
            "'Cluster Provisioning Success').querySelector('tbody').innerText"
        )
        assert "proj_id\tinteger | string\tyes" in success
        assert page.js("document.getElementById('events-view').hidden") is True

        requests.post(collector.url + "/micro/reset", timeout=30)
        page.js("document.getElementById('tab-events').click()")
        page.wait_for(f"{ROWS}.length === 0 && document.getElementById('total').textContent === '0'")
