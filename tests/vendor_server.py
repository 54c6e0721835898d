"""A loopback HTTP server for the destination tests: records every request body by path, answers 200,
and can be black-holed (it accepts connections and reads requests, then never answers)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class VendorServer:
    """``url``; ``requests`` (path, headers, body, received-at); ``json_bodies(path)``; ``black_hole``."""

    def __init__(self) -> None:
        self._server = _Server()
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


def send_through(destination_factory: Any, *, user_id: str = "u1", anonymous_id: str | None = None) -> VendorServer:
    """Configure one destination (``destination_factory(url)``) at a fresh server, send one ItemsExported
    track and one UserTraits identify, flush; return the (closed) server with what it received."""
    from kit_catalog import ItemsExported, UserTraits

    import instrument
    from instrument import analytics_scope

    server = VendorServer()
    try:
        instrument.configure(destinations=[destination_factory(server.url)], strict=True)
        scope: dict[str, Any] = {"user_id": user_id} if anonymous_id is None else {"anonymous_id": anonymous_id}
        with analytics_scope(**scope):
            assert instrument.track(ItemsExported(count=3))
            assert instrument.identify(UserTraits(email="a@example.com"))
        assert instrument.flush(10)
    finally:
        instrument.shutdown(1)
        server.close()
    return server
