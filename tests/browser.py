"""Headless Chromium driven over the DevTools protocol, for the collector's browser tests."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import websocket


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


def chromium() -> str:
    """The Chromium executable; fails naming the package when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no chromium on PATH: .ci/run installs Debian's chromium package")


@contextlib.contextmanager
def chromium_page(tmp_path: Path) -> Iterator[Page]:
    """A fresh headless Chromium (its profile under ``tmp_path``) and its tab; ended on exit."""
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [
            chromium(),
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


ROOT = Path(__file__).resolve().parent.parent
#: The real analytics.js, pinned; installed once into the cache directory by .ci/run or the first test.
ANALYTICS_NEXT = "@segment/analytics-next@1.84.3"
NPM_CACHE = Path(os.environ.get("INSTRUMENT_TEST_CACHE", str(ROOT / ".cache"))) / "npm"


def analytics_js() -> Path:
    """The directory of analytics.js's browser build (``index.js`` and its chunks), installed if missing.

    Idempotent and safe across parallel test workers (a file lock); once installed no network is needed,
    and npm prefers its own cache. Fails, naming the command, when npm cannot install it (offline)."""
    umd = NPM_CACHE / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    if (umd / "index.js").exists():
        return umd
    npm = shutil.which("npm")
    assert npm is not None, "npm is missing: analytics.js is installed with npm (node and npm packages)"
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(NPM_CACHE), ANALYTICS_NEXT, "--no-audit", "--no-fund"]
    with (NPM_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (umd / "index.js").exists():
            done = subprocess.run(
                [*command, "--prefer-offline"], check=False, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"{' '.join(command)} failed (offline?): {done.stderr[-2000:]}"
    return umd
