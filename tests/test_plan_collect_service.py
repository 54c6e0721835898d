"""`instrument collect` as a service others rely on: hostile input against the real command in a subprocess.

Every refusal is a 4xx with a reason, and after each one a good batch is still answered 200 and stored.
"""

from __future__ import annotations

import base64
import gzip
import json
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(180)
AUTH = "Basic " + base64.b64encode(b"wk-service:").decode()
HEADERS = {"Content-Type": "application/json", "Authorization": AUTH}


@dataclass
class Service:
    url: str
    proc: subprocess.Popen[str]

    def post(self, path: str, body: bytes, **headers: str) -> requests.Response:
        return requests.post(self.url + path, data=body, headers={**HEADERS, **headers}, timeout=30)

    def total(self) -> int:
        counts: dict[str, int] = requests.get(self.url + "/micro/all", timeout=30).json()
        return counts["total"]

    def assert_still_serving(self) -> None:
        """A good batch gets 200 and is then stored (queryable by its messageId's user)."""
        user = f"user-{uuid.uuid4()}"
        good = {"type": "track", "event": "Order Completed", "userId": user, "properties": {"n": 1}}
        answer = self.post("/v1/batch", json.dumps({"batch": [good]}).encode())
        assert answer.status_code == 200, answer.text
        stored = requests.get(self.url + "/micro/good", params={"user": user}, timeout=30).json()
        assert [e["payload"]["userId"] for e in stored] == [user]


def _start(*args: str) -> Service:
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument", "collect", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert banner.startswith("collecting on http://127.0.0.1:"), banner + (proc.stderr.read() if proc.stderr else "")
    return Service(banner.split()[2].rstrip(","), proc)


def _stop(service: Service) -> None:
    service.proc.send_signal(signal.SIGINT)
    try:
        _, err = service.proc.communicate(timeout=30)
    finally:
        service.proc.kill()
    assert "Traceback" not in err


@pytest.fixture
def own_service() -> Iterator[Service]:
    """A collect process of the test's own: its peak memory and its threads are the test's alone."""
    running = _start()
    try:
        yield running
    finally:
        _stop(running)


@pytest.fixture(scope="module")
def _shared_service() -> Iterator[Service]:
    running = _start()
    try:
        yield running
    finally:
        _stop(running)  # and no traceback in what it wrote over all the module's tests


@pytest.fixture
def service(_shared_service: Service) -> Service:
    """The module's collect process (a start costs about 0.3 s), still running and emptied through its
    public ``/micro/reset``: each test sees a service that stored nothing."""
    assert _shared_service.proc.poll() is None, "the shared collect process died"
    assert requests.post(_shared_service.url + "/micro/reset", timeout=30).status_code == 200
    assert _shared_service.total() == 0
    return _shared_service


def _refused(answer: requests.Response, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["success"] is False
    assert reason in answer.json()["message"]


def _batch_text(message: str) -> bytes:
    return ('{"batch": [' + message + "]}").encode()


HOSTILE = [
    ("lone surrogate in userId", _batch_text('{"type": "track", "event": "A", "userId": "\\ud800"}')),
    ("lone surrogate in event", _batch_text('{"type": "track", "event": "\\ud800", "userId": "1"}')),
    ("lone surrogate in type", _batch_text('{"type": "\\ud800", "event": "A", "userId": "1"}')),
    ("lone surrogate in a key", _batch_text('{"type": "track", "event": "A", "userId": "1", "\\udfff": 1}')),
    ("NaN", _batch_text('{"type": "track", "event": "A", "userId": "1", "properties": {"n": NaN}}')),
    ("Infinity", _batch_text('{"type": "track", "event": "A", "userId": "1", "properties": {"n": -Infinity}}')),
    ("1e400", _batch_text('{"type": "track", "event": "A", "userId": "1", "properties": {"n": 1e400}}')),
    ("100k-deep JSON", b'{"batch": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("invalid UTF-8", _batch_text('{"type": "track", "event": "A", "userId": "1"}').replace(b"A", b"\xff")),
]


@pytest.mark.parametrize("body", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_json_is_400_and_the_service_keeps_serving(service: Service, body: bytes) -> None:
    _refused(service.post("/v1/batch", body), 400, "malformed JSON")
    assert service.total() == 0
    service.assert_still_serving()


def _gzip_bomb(inflated_bytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"a" * (1 << 20)
    parts = [packer.compress(b'{"batch": [{"type": "track", "event": "A", "userId": "1", "properties": {"p": "')]
    parts += [packer.compress(chunk) for _ in range(inflated_bytes // len(chunk))]
    parts.append(packer.compress(b'"}}]}') + packer.flush())
    return b"".join(parts)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_gzip_bomb_is_refused_while_inflating_without_the_memory_it_asks_for(own_service: Service) -> None:
    bomb = _gzip_bomb(500 << 20)  # 500 MiB of JSON in about half a megabyte
    assert len(bomb) < 600_000
    own_service.assert_still_serving()  # warm: the peak so far includes serving a request
    before = _peak_rss(own_service.proc.pid)
    _refused(own_service.post("/v1/batch", bomb, **{"Content-Encoding": "gzip"}), 400, "inflates to over the")
    assert _peak_rss(own_service.proc.pid) - before < 64 << 20
    assert own_service.total() == 1  # the warm-up batch only
    own_service.assert_still_serving()


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/micro/events", {"after": "1e23"}, "after: expected an integer"),
        ("/micro/events", {"after": str(10**23)}, "after: expected an integer in"),
        ("/micro/events", {"after": "-1"}, "after: expected an integer in"),
        ("/micro/good", {"limit": "0"}, "limit: expected an integer in"),
        ("/micro/wait", {"timeout": "nan"}, "timeout: expected a finite number"),
        ("/micro/wait", {"timeout": "inf"}, "timeout: expected a finite number"),
        ("/micro/wait", {"timeout": "-1"}, "timeout: expected a finite number"),
        ("/micro/wait", {"count": "many"}, "count: expected an integer"),
        ("/micro/bad", {"contexts": "x"}, "unsupported filter 'contexts'"),
    ],
)
def test_bad_query_parameters_are_400_at_once(service: Service, path: str, params: dict[str, str], reason: str) -> None:
    started = time.monotonic()
    _refused(requests.get(service.url + path, params=params, timeout=30), 400, reason)
    assert time.monotonic() - started < 10  # answered, not a busy loop or a hang
    service.assert_still_serving()


def test_slow_clients_are_cut_off_and_never_starve_the_others(own_service: Service) -> None:
    proc = psutil.Process(own_service.proc.pid)
    idle_threads = proc.num_threads()
    slow: list[socket.socket] = []
    for _ in range(200):
        connection = socket.create_connection(("127.0.0.1", int(own_service.url.rsplit(":", 1)[1])), timeout=30)
        connection.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        slow.append(connection)
    try:
        own_service.assert_still_serving()  # while they hang on
        still_open = set(slow)
        deadline = time.monotonic() + 60  # the service's request timeout is 10 s
        while still_open and time.monotonic() < deadline:
            for connection in list(still_open):
                try:  # a slowloris drips a byte a second: the whole-request deadline holds all the same
                    connection.sendall(b"X")
                    closed = connection.recv(1, socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    still_open.discard(connection)
            time.sleep(1.0)
        assert not still_open, f"{len(still_open)} slow connections were still open after 60 s"
        waited = time.monotonic() + 30
        while proc.num_threads() > idle_threads + 5 and time.monotonic() < waited:
            time.sleep(0.2)
        assert proc.num_threads() <= idle_threads + 5
    finally:
        for connection in slow:
            connection.close()
    own_service.assert_still_serving()


def test_a_store_error_rolls_back_and_the_next_batch_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    running = _start("--db", str(db))
    try:
        running.assert_still_serving()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: every insert fails
        try:
            batch = {"batch": [{"type": "track", "event": "Locked Out", "userId": "x"}] * 3}
            _refused(running.post("/v1/batch", json.dumps(batch).encode()), 503, "the store refused the batch")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        running.assert_still_serving()
        assert running.total() == 2  # the two good batches, nothing of the refused one
        assert requests.get(running.url + "/micro/good", params={"event": "Locked Out"}, timeout=30).json() == []
    finally:
        _stop(running)


def test_keep_alive_requests_are_not_held_by_nagle_and_delayed_ack(service: Service) -> None:
    message: dict[str, Any] = {"type": "track", "event": "Tick", "userId": "1"}
    durations = []
    with requests.Session() as session:
        for i in range(200):
            body = json.dumps({"batch": [{**message, "messageId": str(i)}]}).encode()
            started = time.perf_counter()
            assert session.post(service.url + "/v1/batch", data=body, headers=HEADERS, timeout=30).status_code == 200
            durations.append(time.perf_counter() - started)
    # Two writes per answer stalled each one about 40 ms (Nagle plus delayed ACK); one write does not.
    assert statistics.median(durations) < 0.010
    assert service.total() == 200


def test_every_ingest_refusal_of_the_endpoint_is_the_collectors(service: Service) -> None:
    from instrument.testing import SegmentEndpoint

    big = {"type": "track", "event": "A", "userId": "1", "properties": {"p": "x" * 40_000}}
    bodies = [h[1] for h in HOSTILE] + [json.dumps({"batch": [big]}).encode(), gzip.compress(b"[]")]
    with SegmentEndpoint() as endpoint, requests.Session() as session:
        for body in bodies:
            headers = {**HEADERS, **({"Content-Encoding": "gzip"} if body[:2] == b"\x1f\x8b" else {})}
            ours = session.post(service.url + "/v1/batch", data=body, headers=headers, timeout=30)
            theirs = session.post(endpoint.url + "/v1/batch", data=body, headers=headers, timeout=30)
            assert (ours.status_code, ours.json()["message"]) == (theirs.status_code, theirs.json()["message"])
            assert ours.status_code == 400
        assert endpoint.message_count == 0
    service.assert_still_serving()
