"""A Segment-compatible HTTP endpoint on loopback, for tests and benchmarks.

``SegmentEndpoint`` speaks enough of the Segment tracking API (``POST /v1/batch`` and the
single-message paths) for ``segment.analytics.Client(host=endpoint.url)`` to deliver to it.
It records what arrives and can inject failures (``fail_next``) and slow answers
(``hang_next``) so retry, rate-limit and timeout behaviour can be exercised without a network.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import ipaddress
import json
import socket
import socketserver
import threading
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

__all__ = ["ReceivedBatch", "SegmentEndpoint"]

_BATCH_PATH = "/v1/batch"
# Single-message paths of the tracking API, mapped to the message type they imply.
_SINGLE_PATHS: dict[str, str] = {
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
}
# Segment itself refuses batches over 500 KB; this only guards the endpoint's memory.
_MAX_BODY_BYTES = 32 * 1024 * 1024
_OK_BODY = b'{"success": true}'
_POLL_INTERVAL = 0.05
_STOP_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReceivedBatch:
    """One request the endpoint received, decoded.

    ``messages`` is the request's ``batch`` list (a single-message request is a batch of one),
    ``body`` the whole JSON document (with ``sentAt`` and ``writeKey``), ``write_key`` the user
    part of ``Authorization: Basic``, ``retry_count`` the ``X-Retry-Count`` header (0 if absent),
    ``received_at`` a ``time.monotonic()`` stamp taken when the request arrived, and ``status``
    the HTTP status the endpoint answered with.
    """

    messages: list[dict[str, Any]]
    body: dict[str, Any]
    headers: dict[str, str]
    write_key: str | None
    retry_count: int
    received_at: float
    path: str = _BATCH_PATH
    status: int = 200


@dataclass(frozen=True)
class _Fault:
    """One queued fault: wait ``delay`` seconds, then answer ``status`` (200 = handle normally)."""

    status: int
    delay: float
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _BadRequest(Exception):
    """The request body could not be decoded into a batch."""


class _Server(ThreadingHTTPServer):
    """The HTTP server of one start()/stop() run; knows its endpoint and its open connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoint: SegmentEndpoint) -> None:
        self.endpoint = endpoint
        self.stopping = threading.Event()
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host (slow where DNS is absent)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: errors here are clients hanging up (timeouts) or a stop mid-request."""

    def register(self, connection: socket.socket) -> bool:
        """Track an accepted connection; False (and nothing tracked) once the server is stopping."""
        with self._connections_lock:
            if self.stopping.is_set():
                return False
            self._connections.add(connection)
            return True

    def unregister(self, connection: socket.socket) -> None:
        """Forget a connection whose handler has finished."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open (kept-alive) connection so no handler serves on after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Decodes Segment API requests and hands them to the endpoint."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "SegmentEndpoint/1"
    sys_version = ""

    @property
    def _server(self) -> _Server:
        return cast("_Server", self.server)

    def setup(self) -> None:
        super().setup()
        if not self._server.register(self.connection):
            # Accepted just as the endpoint stopped: make the first read see EOF.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Do not log requests (or errors) to stderr."""

    def do_POST(self) -> None:
        """Handle one ingestion request, applying the next queued fault if there is one."""
        received_at = time.monotonic()
        server = self._server
        endpoint = server.endpoint
        endpoint._note_request()
        path = self.path.split("?", 1)[0]
        if path != _BATCH_PATH and path not in _SINGLE_PATHS:
            self.close_connection = True  # the body was not read
            self._send_error_json(404, "not_found", f"no such path: {path}")
            return
        raw = self._read_body()
        if raw is None:
            return
        fault = endpoint._next_fault()
        if fault is not None and fault.delay > 0 and server.stopping.wait(fault.delay):
            self.close_connection = True  # stopped while hanging: hang up without answering
            return
        if fault is not None and fault.status != 200:
            try:
                batch = self._decode(raw, path, received_at, fault.status)
            except _BadRequest:
                batch = ReceivedBatch(
                    messages=[],
                    body={},
                    headers=dict(self.headers.items()),
                    write_key=_basic_auth_user(self.headers.get("Authorization")),
                    retry_count=_int_or_zero(self.headers.get("X-Retry-Count")),
                    received_at=received_at,
                    path=path,
                    status=fault.status,
                )
            endpoint._reject(batch)
            self._send_fault(fault)
            return
        try:
            batch = self._decode(raw, path, received_at, 200)
        except _BadRequest as exc:
            self._send_error_json(400, "invalid_request", str(exc))
            return
        endpoint._accept(batch)
        self._send(200, _OK_BODY)

    def _read_body(self) -> bytes | None:
        """Read exactly Content-Length bytes; answer and return None when that is impossible."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            self._send_error_json(411, "invalid_request", "Content-Length is required")
            return None
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_error_json(400, "invalid_request", "bad Content-Length")
            return None
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._send_error_json(413, "invalid_request", "body too large")
            return None
        raw = self.rfile.read(length)
        if len(raw) != length:  # the client went away mid-body
            self.close_connection = True
            return None
        return raw

    def _decode(self, raw: bytes, path: str, received_at: float, status: int) -> ReceivedBatch:
        """Turn a (possibly gzipped) JSON body into a ReceivedBatch, or raise _BadRequest."""
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        if encoding == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise _BadRequest(f"body is not valid gzip: {exc}") from None
        elif encoding not in ("", "identity"):
            raise _BadRequest(f"unsupported Content-Encoding: {encoding}")
        try:
            # As strict as Segment: NaN, Infinity and -Infinity are not JSON.
            body = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            raise _BadRequest(f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("body must be a JSON object")
        if path == _BATCH_PATH:
            messages = body.get("batch")
            if not isinstance(messages, list):
                raise _BadRequest('"batch" must be a list of messages')
            for message in messages:
                if not isinstance(message, dict):
                    raise _BadRequest('every item of "batch" must be an object')
        else:
            message = dict(body)
            message.setdefault("type", _SINGLE_PATHS[path])
            messages = [message]
        return ReceivedBatch(
            messages=cast("list[dict[str, Any]]", messages),
            body=cast("dict[str, Any]", body),
            headers=dict(self.headers.items()),
            write_key=_basic_auth_user(self.headers.get("Authorization")),
            retry_count=_int_or_zero(self.headers.get("X-Retry-Count")),
            received_at=received_at,
            path=path,
            status=status,
        )

    def _send_fault(self, fault: _Fault) -> None:
        if fault.body is None:
            body = json.dumps({"code": "injected_failure", "message": f"injected HTTP {fault.status}"})
            content_type = "application/json"
        else:
            body = fault.body
            content_type = "text/plain; charset=utf-8"
        self._send(fault.status, body.encode("utf-8"), content_type=content_type, headers=fault.headers)

    def _send_error_json(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"code": code, "message": message}).encode("utf-8"))

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _basic_auth_user(header: str | None) -> str | None:
    """The user part of ``Authorization: Basic base64(user:password)``, else None."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def _int_or_zero(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _loopback_address(host: str) -> tuple[str, int]:
    """Normalise ``host`` to a loopback IP and its address family, or raise ValueError."""
    if host.strip().lower() == "localhost":
        return "127.0.0.1", socket.AF_INET
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"SegmentEndpoint only binds loopback addresses, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"SegmentEndpoint only binds loopback addresses, got {host!r}")
    return str(address), socket.AF_INET6 if address.version == 6 else socket.AF_INET


class SegmentEndpoint:
    """A local Segment tracking API that records what it receives and can inject faults.

    Use as a context manager (or ``start()``/``stop()``) and pass ``url`` as the Segment
    client's ``host=``. Only loopback hosts are accepted. The port picked on the first start
    is kept, so ``stop()`` then ``start()`` simulates an outage (connection refused) and a
    recovery on the same URL. With ``keep_messages=False`` only counts (and the set of
    messageIds) are kept, for runs of millions of events.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, keep_messages: bool = True) -> None:
        self._host, self._family = _loopback_address(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self._port = port
        self._keep_messages = keep_messages
        self._cond = threading.Condition(threading.Lock())
        self._batches: list[ReceivedBatch] = []
        self._rejected: list[ReceivedBatch] = []
        self._message_count = 0
        self._message_ids: set[str] = set()
        self._request_count = 0
        self._faults: deque[_Fault] = deque()
        self._state_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (the same port as before, if there was a before) and serve in a daemon thread."""
        with self._state_lock:
            if self._server is not None:
                return
            server_class = _Server6 if self._family == socket.AF_INET6 else _Server
            server = server_class((self._host, self._port), self)
            self._port = int(server.server_address[1])
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"segment-endpoint-{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving and close the socket and every open connection; idempotent and bounded."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            server.stopping.set()  # wakes hang_next sleepers, refuses late connections
            server.shutdown()  # serve_forever returns within one poll interval
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join(_STOP_JOIN_TIMEOUT)

    def __enter__(self) -> SegmentEndpoint:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the endpoint is currently serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The TCP port (0 until the first start() when constructed with port=0)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL to pass as the Segment client's ``host=``, e.g. ``http://127.0.0.1:PORT``."""
        if self._port == 0:
            raise RuntimeError("the port is chosen on start(); start the endpoint before asking for url")
        host = f"[{self._host}]" if self._family == socket.AF_INET6 else self._host
        return f"http://{host}:{self._port}"

    @property
    def keep_messages(self) -> bool:
        """Whether accepted batches are stored (False: only counts and messageIds are kept)."""
        return self._keep_messages

    # -- recordings ------------------------------------------------------------------------

    @property
    def batches(self) -> list[ReceivedBatch]:
        """Accepted (2xx) requests in arrival order (a copy; empty when keep_messages=False)."""
        with self._cond:
            return list(self._batches)

    @property
    def rejected(self) -> list[ReceivedBatch]:
        """Requests answered with an injected failure status, in arrival order (a copy)."""
        with self._cond:
            return list(self._rejected)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message of every accepted batch, flattened in arrival order."""
        with self._cond:
            return [message for batch in self._batches for message in batch.messages]

    @property
    def message_ids(self) -> list[str]:
        """The messageIds of ``messages`` (messages without a string messageId are skipped)."""
        return [mid for message in self.messages if isinstance(mid := message.get("messageId"), str)]

    @property
    def message_count(self) -> int:
        """How many messages were accepted, duplicates included (kept even if keep_messages=False)."""
        with self._cond:
            return self._message_count

    @property
    def unique_message_ids(self) -> int:
        """How many distinct messageIds were accepted (retried duplicates count once)."""
        with self._cond:
            return len(self._message_ids)

    @property
    def request_count(self) -> int:
        """How many POST requests arrived, failed, rejected and malformed ones included."""
        with self._cond:
            return self._request_count

    def clear(self) -> None:
        """Forget every recording and count (queued faults are kept; see clear_faults)."""
        with self._cond:
            self._batches.clear()
            self._rejected.clear()
            self._message_count = 0
            self._message_ids.clear()
            self._request_count = 0

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` messages were accepted; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._message_count >= count, timeout=max(timeout, 0.0))

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 500,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``headers``/``body``) and reject them.

        Their messages are not accepted but recorded in ``rejected``. Without ``body`` the answer
        is Segment's error shape ``{"code": ..., "message": ...}``.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be a 4xx or 5xx code, got {status}")
        fault = _Fault(status=status, delay=0.0, headers=tuple((headers or {}).items()), body=body)
        with self._cond:
            self._faults.extend([fault] * n)

    def hang_next(self, n: int, seconds: float) -> None:
        """Make the next ``n`` requests wait ``seconds`` before being handled normally (200).

        Like a real server, the request is still accepted when the wait ends even if the client
        gave up, so a client timeout plus retry shows up as a duplicate (see unique_message_ids).
        The wait ends early when the endpoint stops; the request is then dropped unanswered.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        with self._cond:
            self._faults.extend([_Fault(status=200, delay=seconds)] * n)

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        with self._cond:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many queued faults have not been consumed yet."""
        with self._cond:
            return len(self._faults)

    # -- called by the request handler -----------------------------------------------------

    def _note_request(self) -> None:
        with self._cond:
            self._request_count += 1

    def _next_fault(self) -> _Fault | None:
        with self._cond:
            return self._faults.popleft() if self._faults else None

    def _reject(self, batch: ReceivedBatch) -> None:
        with self._cond:
            self._rejected.append(batch)

    def _accept(self, batch: ReceivedBatch) -> None:
        ids = [mid for message in batch.messages if isinstance(mid := message.get("messageId"), str)]
        with self._cond:
            self._message_count += len(batch.messages)
            self._message_ids.update(ids)
            if self._keep_messages:
                self._batches.append(batch)
            self._cond.notify_all()
