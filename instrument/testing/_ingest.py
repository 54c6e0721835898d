"""One ingest path for Segment's tracking API, shared by ``SegmentEndpoint`` and ``instrument collect``.

Parse, inflate (with the bound checked while inflating, so a gzip bomb costs at most the limit), decode
strictly (no NaN or Infinity, no lone surrogates, bounded nesting: what Segment refuses is refused here),
validate the batch and each message, and answer. Every refusal is ``Refused``: a 4xx with a reason that
names what and where, never the content. The HTTP side is shared too: ``IngestServer`` bounds how long a
connection may take to send a request (slowloris), ``IngestHandler`` answers in one write with
``TCP_NODELAY`` (no Nagle/delayed-ACK stall on keep-alive), answers CORS preflights, and turns any error
into an answer rather than a dropped connection.

Browser clients are served too: analytics.js posts ``text/plain`` bodies with the ``writeKey`` inside to
``/v1/t``, ``/v1/i``, ``/v1/p``, ``/v1/s``, ``/v1/g``, ``/v1/a`` (and batches to ``/v1/b``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar, cast

import orjson

from instrument._encoding import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES

#: Ingestion paths and the message type each implies (None: a batch). Segment's names and analytics.js's.
PATHS: dict[str, str | None] = {
    "/v1/batch": None,
    "/v1/b": None,
    "/v1/track": "track",
    "/v1/t": "track",
    "/v1/identify": "identify",
    "/v1/i": "identify",
    "/v1/page": "page",
    "/v1/p": "page",
    "/v1/screen": "screen",
    "/v1/s": "screen",
    "/v1/group": "group",
    "/v1/g": "group",
    "/v1/alias": "alias",
    "/v1/a": "alias",
}
MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
# A gzipped batch is at most a little larger than the batch; anything bigger is refused unread.
MAX_REQUEST_BYTES = MAX_BATCH_BYTES + (64 << 10)
#: Seconds a connection has to send each whole request (and the longest a kept-alive one may idle).
REQUEST_TIMEOUT = 10.0
# analytics.js posts text/plain to avoid a CORS preflight; some clients send no type at all.
_BODY_TYPES = frozenset({"application/json", "text/plain", ""})
_INFLATE_CHUNK = 64 << 10
_REAP_INTERVAL = 0.25
_EndpointT = TypeVar("_EndpointT")


class Refused(Exception):
    """A request answered with a 4xx (or a 5xx when the store failed): its status, code and reason."""

    def __init__(self, status: int, reason: str, code: str = "invalid_request") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Ingested:
    """One accepted request: the whole JSON body, its messages (typed, ``writeKey`` removed), the key."""

    body: dict[str, Any]
    messages: list[dict[str, Any]]
    write_key: str | None


def inflate(raw: bytes, encoding: str, limit: int = MAX_BATCH_BYTES) -> bytes:
    """The body decoded per ``Content-Encoding`` (gzip or none); Refused once it would exceed ``limit``.

    The bound is checked while inflating: memory never holds more than ``limit`` plus one chunk.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = raw
    elif encoding == "gzip":
        data = _gunzip(raw, limit)
    else:
        raise Refused(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    if len(data) > limit:
        raise Refused(400, f"batch is {len(data)} bytes, over the {limit}-byte limit")
    return data


def _gunzip(raw: bytes, limit: int) -> bytes:
    out = bytearray()
    rest = raw
    while rest:  # a gzip stream may hold several members
        inflater = zlib.decompressobj(wbits=31)
        pending = rest
        while pending and not inflater.eof:
            try:
                out += inflater.decompress(pending, _INFLATE_CHUNK)
            except zlib.error:
                raise Refused(400, "Content-Encoding gzip: the body is not valid gzip") from None
            if len(out) > limit:
                raise Refused(400, f"batch inflates to over the {limit}-byte limit")
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise Refused(400, "Content-Encoding gzip: the body is not valid gzip (truncated)")
        rest = inflater.unused_data
    return bytes(out)


def decode(data: bytes) -> Any:
    """Strict JSON: what Segment refuses (NaN, Infinity, lone surrogates, invalid UTF-8) is Refused,
    and so is nesting deeper than 1,024 levels."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise Refused(400, f"malformed JSON: {error}") from None


def basic_auth_user(header: str | None) -> str | None:
    """The user part of ``Authorization: Basic base64(user:password)``; None when absent or another scheme.

    Raises Refused for Basic credentials that are not base64 of UTF-8."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(400, "Authorization: malformed Basic credentials") from None
    return decoded.partition(":")[0] or None


def parse(path: str, headers: Mapping[str, str], raw: bytes) -> Ingested:
    """The messages of one tracking-API request to ``path`` (a key of PATHS), or Refused with the reason."""
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in _BODY_TYPES:
        raise Refused(415, f"Content-Type must be application/json or text/plain, got {content_type!r}")
    body = decode(inflate(raw, lowered.get("content-encoding", "")))
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    key = basic_auth_user(lowered.get("authorization"))
    if key is None:
        in_body = body.get("writeKey")
        key = in_body if isinstance(in_body, str) and in_body else None
    implied = PATHS[path]
    if implied is None:
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise Refused(400, "batch: expected a list of messages")
        where = "batch[{}]"
    else:
        batch = [{"type": implied, **body}]
        where = "message"
    messages = [_message(item, where.format(index)) for index, item in enumerate(batch)]
    return Ingested(body=cast("dict[str, Any]", body), messages=messages, write_key=key)


def _message(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Refused(400, f"{where}: a message must be a JSON object")
    message = cast("dict[str, Any]", item)
    message.pop("writeKey", None)  # a credential, not part of the event
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise Refused(400, f"{where}: type must be one of {', '.join(sorted(MESSAGE_TYPES))}")
    if kind == "track" and not (isinstance(message.get("event"), str) and message["event"]):
        raise Refused(400, f"{where}: a track message needs an event name (a non-empty string)")
    size = len(orjson.dumps(message))
    if size > MAX_MESSAGE_BYTES:
        raise Refused(400, f"{where}: message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    return message


class IngestServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its connections: each has ``request_timeout`` seconds to send a
    whole request (a reaper thread shuts down the late ones), and ``close_connections()`` ends them all."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops SYNs under a burst of connections (1 s, 3 s, ... retries)

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[IngestHandler],
        *,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.request_timeout = request_timeout
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float | None] = {}
        self._reaper = threading.Thread(target=self._reap, name="ingest-reaper", daemon=True)
        super().__init__(address, handler)  # on a bind error this calls server_close()
        self._reaper.start()

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host (slow where DNS is absent)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: errors here are clients hanging up, reaped connections or a stop mid-request."""

    def register(self, connection: socket.socket) -> bool:
        """Track an accepted connection; False (and nothing tracked) once the server is stopping."""
        with self._lock:
            if self.stopping.is_set():
                return False
            self._deadlines[connection] = None
            return True

    def unregister(self, connection: socket.socket) -> None:
        """Forget a connection whose handler has finished."""
        with self._lock:
            self._deadlines.pop(connection, None)

    def expect_request(self, connection: socket.socket, waiting: bool) -> None:
        """Start (True) or stop (False) the clock of a connection that must send a request in time."""
        with self._lock:
            if connection in self._deadlines:
                self._deadlines[connection] = time.monotonic() + self.request_timeout if waiting else None

    def close_connections(self) -> None:
        """Shut down every open (kept-alive) connection so no handler serves on after a stop."""
        with self._lock:
            connections = list(self._deadlines)
            self._deadlines.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self.stopping.set()
        super().server_close()
        if self._reaper.ident is not None:
            self._reaper.join(timeout=5.0)

    def _reap(self) -> None:
        while not self.stopping.wait(_REAP_INTERVAL):
            now = time.monotonic()
            with self._lock:
                late = [c for c, deadline in self._deadlines.items() if deadline is not None and deadline < now]
                for connection in late:
                    self._deadlines[connection] = None
            for connection in late:  # the blocked read returns, the handler ends the connection
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class EndpointServer(IngestServer, Generic[_EndpointT]):
    """The HTTP server of one start()/stop() run of a test endpoint: knows its endpoint, and binds an
    IPv6 socket when ``family`` says so."""

    def __init__(
        self, address: tuple[str, int], handler: type[IngestHandler], endpoint: _EndpointT, family: int
    ) -> None:
        self.endpoint = endpoint
        self.address_family = family  # read by TCPServer.__init__ when it makes the socket
        super().__init__(address, handler)


def serve_in_thread(server: IngestServer, name: str, poll_interval: float = 0.05) -> threading.Thread:
    """Run ``server.serve_forever`` in a started daemon thread called ``name`` (the kit's endpoints)."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: IngestServer, thread: threading.Thread | None, join_timeout: float = 5.0) -> None:
    """Stop a server started by ``serve_in_thread``: wake waiting handlers, refuse late connections, end
    the kept-alive ones, close the socket and join the thread (bounded)."""
    server.stopping.set()
    server.shutdown()  # serve_forever returns within one poll interval
    server.close_connections()
    server.server_close()
    if thread is not None:
        thread.join(join_timeout)


class IngestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: one write per answer (headers and body), TCP_NODELAY, CORS, and every
    error answered. Subclasses implement ``get(path, query_string)`` and ``post(path)``."""

    server: IngestServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        if not self.server.register(self.connection):
            # Accepted just as the server stopped: make the first read see EOF.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.unregister(self.connection)

    def handle_one_request(self) -> None:
        self.server.expect_request(self.connection, True)
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the collector's page and the endpoint's recordings show what arrived."""

    # -- answering ------------------------------------------------------------------------------

    def answer(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send status, headers and body in one write (so Nagle and delayed ACK cannot hold the body)."""
        phrase = self.responses.get(status, ("",))[0]
        lines = [f"{self.protocol_version} {status} {phrase}", f"Server: {self.version_string()}"]
        lines.append(f"Date: {self.date_time_string()}")
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length"]
        lines += [f"Content-Length: {len(body)}", "Cache-Control: no-store", "Access-Control-Allow-Origin: *"]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def answer_json(self, status: int, data: Any) -> None:
        """Answer ``data`` as JSON."""
        self.answer(status, json.dumps(data).encode())

    def refuse(self, refused: Refused) -> None:
        """Answer a refusal: ``{"success": false, "code": ..., "message": reason}``."""
        self.answer_json(refused.status, {"success": False, "code": refused.code, "message": refused.reason})

    def read_body(self) -> bytes:
        """Exactly Content-Length bytes (at most MAX_REQUEST_BYTES); Refused (connection closed) otherwise."""
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Refused(411, "Transfer-Encoding is not supported: send a Content-Length")
        if length_header is None:
            self.close_connection = True
            raise Refused(411, "Content-Length is required")
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise Refused(400, "bad Content-Length")
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise Refused(413, f"the body is over the {MAX_REQUEST_BYTES}-byte request limit", "payload_too_large")
        raw = self.rfile.read(length)
        if len(raw) != length:  # the client went away (or was reaped) mid-body
            self.close_connection = True
            raise Refused(400, "the body ended before Content-Length bytes")
        self.server.expect_request(self.connection, False)
        return raw

    # -- dispatch -------------------------------------------------------------------------------

    def get(self, path: str, query: str) -> None:
        """Answer a GET (subclasses); Refused becomes the answer."""
        raise Refused(404, f"no such endpoint {path!r}", "not_found")

    def post(self, path: str) -> None:
        """Answer a POST (subclasses); Refused becomes the answer."""
        raise Refused(404, f"no such endpoint {path!r}", "not_found")

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        try:
            if method == "GET":
                self.server.expect_request(self.connection, False)
                self.get(path, query)
            else:
                self.post(path)
        except Refused as refused:
            self.refuse(refused)
        except Exception as error:  # a bug or a failing store must not end the service: answer, go on
            self.close_connection = True
            self.refuse(Refused(500, f"internal error: {type(error).__name__}", "internal_error"))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_OPTIONS(self) -> None:
        """A CORS preflight: any origin may post events and read the query API."""
        self.server.expect_request(self.connection, False)
        requested = self.headers.get("Access-Control-Request-Headers")
        self.answer(
            204,
            b"",
            headers=(
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", requested or "Content-Type, Authorization, Content-Encoding"),
                ("Access-Control-Max-Age", "600"),
            ),
        )
