"""The wire reference: the same track, identify, group, page, screen and alias sent through
segment-analytics-python (the official client, a test dependency only) and through instrument's own sender
arrive the same at a loopback endpoint.

Compared byte for byte where it matters: the path, ``Authorization`` (Basic, the write key as user),
``Content-Type``, ``Content-Encoding`` and a body that really is gzip when asked, the body's keys
(``batch``, ``sentAt``, ``writeKey``) and ``writeKey``, and each message's fields and values.
Where they must or do differ, exactly:

- ``messageId`` and ``timestamp`` values (each sender makes its own; both are a UUID and an ISO-8601
  UTC time), and ``sentAt`` (the time of the request);
- ``User-Agent``: ``analytics-python/<its version>`` there, ``instrument/<our version>`` here;
- HTTP plumbing headers of the two HTTP stacks (``Accept``, ``Accept-Encoding``, ``Connection``);
- the official client adds ``"context": {"library": {"name": "analytics-python", "version": ...}}``,
  ``"integrations": {}`` and ``"anonymousId": null`` to every message; instrument sends none of them
  (``anonymousId`` only when there is one; context only what integrations capture).
"""

from __future__ import annotations

import base64
import gzip
import http.server
import importlib.metadata
import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from segment.analytics import Client as OfficialClient
from segment.analytics.version import VERSION as OFFICIAL_VERSION

import instrument
from instrument import Alias, EventName, Group, Identify, Page, Screen, Track, analytics_scope

WRITE_KEY = "wk-wire-reference"
THE_SAME = ("Authorization", "Content-Type", "Content-Encoding")
#: What the official client adds to every message, and instrument does not send.
OFFICIAL_ONLY = {
    "context": {"library": {"name": "analytics-python", "version": OFFICIAL_VERSION}},
    "integrations": {},
    "anonymousId": None,
}
PER_SENDER = ("messageId", "timestamp")


class WireEvents(EventName):
    PLAN_CHOSEN = "Plan Chosen"


class PlanChosen(Track, event=WireEvents.PLAN_CHOSEN):
    plan: str
    seats: int
    annual: bool
    price: float


class UserTraits(Identify):
    email: str
    name: str


class Company(Group):
    name: str
    employees: int


class Pricing(Page, name="Pricing", category="Docs"):
    plan: str


class Home(Screen, name="Home", category="App"):
    tab: str


class Recorder(http.server.ThreadingHTTPServer):
    """A loopback endpoint that keeps each request exactly as it arrived (headers, raw body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            taken, self.requests = self.requests, []
        return taken


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers.items()), raw))
        answer = b'{"success": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def send_through_the_official_client(url: str, *, gzip_: bool) -> None:
    client = OfficialClient(WRITE_KEY, host=url, gzip=gzip_, upload_interval=0.05)
    client.track(
        user_id="u-1", event="Plan Chosen", properties={"plan": "pro", "seats": 3, "annual": True, "price": 9.5}
    )
    client.identify(user_id="u-1", traits={"email": "ada@example.com", "name": "Ada"})
    client.group(user_id="u-1", group_id="acme", traits={"name": "Acme", "employees": 12})
    client.page(user_id="u-1", category="Docs", name="Pricing", properties={"plan": "pro"})
    client.screen(user_id="u-1", category="App", name="Home", properties={"tab": "feed"})
    client.alias(previous_id="anon-1", user_id="u-1")
    client.flush()
    client.shutdown()


def send_through_instrument(url: str, *, gzip_: bool) -> None:
    instrument.configure(WRITE_KEY, host=url, gzip=gzip_, flush_interval=0.05)
    with analytics_scope(user_id="u-1"):
        assert instrument.track(PlanChosen(plan="pro", seats=3, annual=True, price=9.5)).ok
        assert instrument.identify(UserTraits(email="ada@example.com", name="Ada")).ok
        assert instrument.group(Company(group_id="acme", name="Acme", employees=12)).ok
        assert instrument.page(Pricing(plan="pro")).ok
        assert instrument.screen(Home(tab="feed")).ok
        assert instrument.alias(Alias(previous_id="anon-1")).ok
    assert instrument.flush(10)


def arrived(requests: list[tuple[str, dict[str, str], bytes]], *, gzip_: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """The requests' headers (the same in each) and one JSON body with every message (a sender may cut two batches)."""
    assert requests
    messages: list[dict[str, Any]] = []
    for path, headers, raw in requests:
        assert path == "/v1/batch"
        assert [headers.get(name) for name in (*THE_SAME, "User-Agent")] == [
            requests[0][1].get(name) for name in (*THE_SAME, "User-Agent")
        ]
        assert raw.startswith(b"\x1f\x8b") == gzip_, "gzip exactly when asked"
        body = json.loads(gzip.decompress(raw) if gzip_ else raw)
        messages += body["batch"]
    body["batch"] = messages
    return requests[0][1], body


def check_per_sender_fields(message: dict[str, Any]) -> dict[str, Any]:
    uuid.UUID(message["messageId"])
    assert datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).utcoffset() is not None
    return {key: value for key, value in message.items() if key not in PER_SENDER}


@pytest.mark.parametrize("gzip_", [False, True], ids=["plain", "gzip"])
def test_the_official_client_and_instrument_put_the_same_on_the_wire(recorder: Recorder, gzip_: bool) -> None:
    send_through_the_official_client(recorder.url, gzip_=gzip_)
    official_headers, official = arrived(recorder.take(), gzip_=gzip_)
    send_through_instrument(recorder.url, gzip_=gzip_)
    our_headers, ours = arrived(recorder.take(), gzip_=gzip_)

    for name in THE_SAME:
        assert our_headers.get(name) == official_headers.get(name), name
    assert our_headers["Authorization"] == "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    assert official_headers["User-Agent"] == f"analytics-python/{OFFICIAL_VERSION}"
    assert our_headers["User-Agent"] == f"instrument/{instrument.__version__}"

    assert set(ours) == set(official) == {"batch", "sentAt", "writeKey"}
    assert ours["writeKey"] == official["writeKey"] == WRITE_KEY
    for body in (ours, official):
        assert datetime.fromisoformat(body["sentAt"].replace("Z", "+00:00")).utcoffset() is not None
    assert len(ours["batch"]) == len(official["batch"]) == 6
    assert [m["type"] for m in ours["batch"]] == ["track", "identify", "group", "page", "screen", "alias"]
    for our_message, their_message in zip(ours["batch"], official["batch"], strict=True):
        added = {key: their_message.pop(key) for key in OFFICIAL_ONLY}
        assert added == OFFICIAL_ONLY
        assert check_per_sender_fields(our_message) == check_per_sender_fields(their_message)


def test_the_write_key_filter_on_the_segment_logger_still_hides_keys_for_apps_using_both(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # The official client logs each request body (with writeKey) at DEBUG on the "segment" logger;
    # instrument's import-time filter scrubs the keys instrument was configured with.
    instrument.configure(WRITE_KEY, host=recorder.url)
    caplog.set_level(logging.DEBUG, logger="segment")
    send_through_the_official_client(recorder.url, gzip_=False)
    texts = [record.getMessage() for record in caplog.records if record.name == "segment"]
    assert any("making request" in text for text in texts)
    assert not any(WRITE_KEY in text for text in texts)


def test_instrument_delivers_without_segment_analytics_python_installed(recorder: Recorder) -> None:
    script = f"""
import sys
sys.modules["segment"] = None  # not installed
import instrument
from instrument import EventName, Track, analytics_scope

class Events(EventName):
    PLAN_CHOSEN = "Plan Chosen"

class PlanChosen(Track, event=Events.PLAN_CHOSEN):
    plan: str

instrument.configure("wk", host={recorder.url!r}, flush_interval=0.05)
with analytics_scope(user_id="u-1"):
    assert instrument.track(PlanChosen(plan="pro")).ok
assert instrument.flush(10)
print(sorted(name for name in sys.modules if name == "segment" or name.startswith("segment.")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['segment']"  # only the blocked entry: nothing imported it
    [(_, _, raw)] = recorder.take()
    assert json.loads(raw)["batch"][0]["properties"] == {"plan": "pro"}


def test_segment_analytics_python_is_not_a_runtime_dependency() -> None:
    requirements = importlib.metadata.requires("instrument") or []
    runtime = [r for r in requirements if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith("segment")]
    assert any(r.startswith("segment-analytics-python") and "extra == 'test'" in r for r in requirements)
