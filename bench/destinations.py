"""Destinations: p99 track()-to-receipt latency with one destination black-holed vs none, and process
CPU per delivered event with 3 destinations vs 1 (``bench/run.py`` rows ``dest_*``).

``VendorServer`` (also the tests' loopback endpoint for every vendor wire): records every request body
by path, answers 200, and can be black-holed (accepts connections and reads requests, never answers)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        server = self.server
        while server.black_hole.is_set() and not server.closing:  # accept, read, never answer
            time.sleep(0.02)
        if server.closing:
            return
        if server.keep:
            with server.lock:
                server.requests.append((self.path, dict(self.headers), body, time.monotonic()))
                server.changed.notify_all()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.requests: list[tuple[str, dict[str, str], bytes, float]] = []
        self.black_hole = threading.Event()
        self.closing = False
        self.keep = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a black-holed request closed its socket: expected here


class VendorServer:
    """``url``; ``requests`` (path, headers, body, received-at); ``json_bodies(path)``; ``black_hole``."""

    def __init__(self, *, keep: bool = True) -> None:
        self._server = _Server()
        self._server.keep = keep  # False: answer only (the CPU bench's endpoint)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def black_hole(self) -> threading.Event:
        """Set: requests are accepted and read, never answered (until cleared)."""
        return self._server.black_hole

    @property
    def requests(self) -> list[tuple[str, dict[str, str], bytes, float]]:
        with self._server.lock:
            return list(self._server.requests)

    def json_bodies(self, path: str | None = None) -> list[Any]:
        """The JSON bodies received (on ``path`` when given, the query string left out)."""
        return [json.loads(b) for p, _, b, _ in self.requests if path is None or p.split("?")[0] == path]

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        """Wait (bounded) until ``predicate(self)`` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            with self._server.lock:
                self._server.changed.wait(0.05)
        return bool(predicate(self))

    def close(self) -> None:
        self._server.closing = True
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def vendor_server() -> Iterator[VendorServer]:
    """A running VendorServer, closed afterwards."""
    server = VendorServer()
    try:
        yield server
    finally:
        server.close()


def _counts_in(path: str, body: bytes) -> list[int]:
    """The ``count`` property of each track in a body of any wire the bench uses."""
    data = json.loads(body)
    if path == "/v1/batch":
        return [m["properties"]["count"] for m in data["batch"] if m["type"] == "track"]
    if path == "/batch/":
        return [m["properties"]["count"] for m in data["batch"] if m["event"] != "$identify"]
    if path == "/2/httpapi":
        return [m["event_properties"]["count"] for m in data["events"] if "event_properties" in m]
    return [m["properties"]["count"] for m in data if "properties" in m]  # mixpanel /track


def received(server: VendorServer) -> dict[int, float]:
    """Each ItemsExported-like ``count`` received, with when it was first received."""
    seen: dict[int, float] = {}
    for path, _, body, at in server.requests:
        for count in _counts_in(path.split("?")[0], body):
            seen.setdefault(count, at)
    return seen


def _destinations(urls: list[str]) -> list[Any]:
    from instrument.destinations import Amplitude, Mixpanel, PostHog, Segment

    makers = [Segment, PostHog, Amplitude, Mixpanel]
    return [make(f"key{i}", host=url) for i, (make, url) in enumerate(zip(makers, urls, strict=False))]


class _Event:
    cls: Any = None


def _event_class() -> Any:
    if _Event.cls is None:
        from instrument import Track

        class BenchExported(Track, event="Bench Exported"):
            count: int

        _Event.cls = BenchExported
    return _Event.cls


@dataclass(frozen=True)
class LatencyRun:
    """One ``latency`` run: the p99, whether everything arrived where and when it should, the ledger."""

    p99: float
    complete: bool
    stats: Any


def latency(black_hole: bool, events: int = 600, rate: float = 200.0) -> LatencyRun:
    """p99 seconds from track() to receipt at 3 healthy destinations (a 4th black-holed or not);
    ``complete``: everything arrived at the healthy ones, nothing at the black-holed one while it was
    one, then everything after it recovered; ``stats``: the client's ledger before shutdown."""
    import instrument

    servers = [VendorServer() for _ in range(4)]
    try:
        if black_hole:
            servers[3].black_hole.set()
        instrument.configure(
            destinations=_destinations([s.url for s in servers]),
            flush_interval=0.05,
            timeout=0.5,
            max_queue_size=events + 1,  # the black-holed one keeps everything until it recovers
        )
        event = _event_class()
        sent: dict[int, float] = {}
        with instrument.analytics_scope(user_id="bench"):
            for i in range(events):
                sent[i] = time.monotonic()
                instrument.track(event(count=i))
                time.sleep(1 / rate)
        complete = all(s.wait_for(lambda s: len(received(s)) == events, 60) for s in servers[:3])
        complete = complete and (not black_hole or not received(servers[3]))
        servers[3].black_hole.clear()
        complete = servers[3].wait_for(lambda s: len(received(s)) == events, 120) and complete
        complete = instrument.flush(30) and complete
        latencies = sorted(at - sent[i] for s in servers[:3] for i, at in received(s).items())
        stats = instrument.stats()
        instrument.shutdown(5)
        return LatencyRun(latencies[max(0, int(len(latencies) * 0.99) - 1)], complete, stats)
    finally:
        for server in servers:
            server.close()


def cpu_worker(count: int, url: str, events: int) -> dict[str, float]:
    """In a fresh process: record ``events`` to ``count`` destinations at ``url``; CPU per delivered event."""
    import instrument

    instrument.configure(destinations=_destinations([url] * count), max_queue_size=events + 1)
    event = _event_class()
    start = time.process_time()
    with instrument.analytics_scope(user_id="bench"):
        for i in range(events):
            instrument.track(event(count=i))
    ok = instrument.flush(600)
    used = time.process_time() - start
    stats = instrument.stats()
    delivered = min(s.sent for s in stats.destinations.values())
    instrument.shutdown(5)
    return {"us_per_event": used / max(1, delivered) * 1e6, "complete": float(ok and delivered == events)}


def cpu(count: int, events: int) -> tuple[float, bool]:
    """``cpu_worker`` in a subprocess, its endpoint in another."""
    import subprocess
    import sys
    from pathlib import Path

    from bench.e2e import json_report

    run = Path(__file__).resolve().parent / "run.py"
    server = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        result = json_report(
            run, "--dest-cpu-worker", str(count), "--url", url, "--e2e-events", str(events), timeout=900
        )
        return result["us_per_event"], bool(result["complete"])
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


_SERVE = (
    f"import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})\n"
    "from bench.destinations import VendorServer\n"
    "s = VendorServer(keep=False); print(s.url, flush=True); sys.stdin.read(); s.close()\n"
)
