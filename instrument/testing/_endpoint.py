"""A Segment-compatible HTTP endpoint on loopback, for tests and benchmarks.

``SegmentEndpoint`` speaks enough of the Segment tracking API (``POST /v1/batch`` and the
single-message paths) for ``segment.analytics.Client(host=endpoint.url)`` to deliver to it. It parses
and refuses exactly as ``instrument collect`` does: both use one ingest path (``_ingest``).
It records what arrives and can inject failures (``fail_next``) and slow answers
(``hang_next``) so retry, rate-limit and timeout behaviour can be exercised without a network.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from instrument.testing._ingest import (
    PATHS,
    EndpointServer,
    Ingested,
    IngestHandler,
    Refused,
    basic_auth_user,
    parse,
    serve_in_thread,
    stop_serving,
)

__all__ = ["ReceivedBatch", "SegmentEndpoint"]

_BATCH_PATH = "/v1/batch"
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


class _Handler(IngestHandler):
    """Hands decoded Segment API requests to the endpoint, applying its queued faults."""

    server: EndpointServer[SegmentEndpoint]
    server_version = "SegmentEndpoint/1"

    def post(self, path: str) -> None:
        """Handle one ingestion request, applying the next queued fault if there is one."""
        received_at = time.monotonic()
        server = self.server
        endpoint = server.endpoint
        endpoint._note_request()
        if path not in PATHS:
            self.close_connection = True  # the body was not read
            raise Refused(404, f"no such path: {path}", "not_found")
        raw = self.read_body()
        fault = endpoint._next_fault()
        if fault is not None and fault.delay > 0 and server.stopping.wait(fault.delay):
            self.close_connection = True  # stopped while hanging: hang up without answering
            return
        if fault is not None and fault.status != 200:
            try:
                batch = self._received(parse(path, dict(self.headers.items()), raw), path, received_at, fault.status)
            except Refused:
                batch = self._received(Ingested({}, [], None), path, received_at, fault.status)
            endpoint._reject(batch)
            self._send_fault(fault)
            return
        endpoint._accept(self._received(parse(path, dict(self.headers.items()), raw), path, received_at, 200))
        self.answer(200, _OK_BODY)

    def _received(self, ingested: Ingested, path: str, received_at: float, status: int) -> ReceivedBatch:
        return ReceivedBatch(
            messages=ingested.messages,
            body=ingested.body,
            headers=dict(self.headers.items()),
            write_key=_auth_user(self.headers.get("Authorization")),
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
        self.answer(fault.status, body.encode("utf-8"), content_type=content_type, headers=fault.headers)


def _auth_user(header: str | None) -> str | None:
    """The Basic auth user, None when absent or malformed (a fault's recording takes what it can)."""
    try:
        return basic_auth_user(header)
    except Refused:
        return None


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
        raise ValueError(f"the endpoint only binds loopback addresses, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the endpoint only binds loopback addresses, got {host!r}")
    return str(address), socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _base_url(host: str, family: int, port: int) -> str:
    """``http://HOST:PORT`` (IPv6 hosts bracketed); RuntimeError while the port is still unchosen (0)."""
    if port == 0:
        raise RuntimeError("the port is chosen on start(); start the endpoint before asking for url")
    return f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"


class SegmentEndpoint:
    """A local Segment tracking API that records what it receives and can inject faults.

    Use as a context manager (or ``start()``/``stop()``) and pass ``url`` as the Segment
    client's ``host=``. Only loopback hosts are accepted. The port picked on the first start
    is kept (reserved while stopped, so no other process takes it), so ``stop()`` then ``start()``
    simulates an outage (connection refused) and a recovery on the same URL; ``close()`` (or the end of
    the ``with`` block) gives the port back. With ``keep_messages=False`` only counts (and the set of
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
        self._server: EndpointServer[SegmentEndpoint] | None = None
        self._thread: threading.Thread | None = None
        self._hold: socket.socket | None = None  # keeps the port while stopped (see stop)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (the same port as before, if there was a before) and serve in a daemon thread."""
        with self._state_lock:
            if self._server is not None:
                return
            if self._hold is not None:
                self._hold.close()
                self._hold = None
            server = EndpointServer((self._host, self._port), _Handler, self, self._family)
            self._port = int(server.server_address[1])
            thread = serve_in_thread(server, f"segment-endpoint-{self._port}", _POLL_INTERVAL)
            self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving and close the socket and every open connection; idempotent and bounded."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            stop_serving(server, thread, _STOP_JOIN_TIMEOUT)  # also wakes hang_next sleepers
            self._hold = _hold_port(self._family, self._host, self._port)
            if self._hold is not None:  # closed with the endpoint if nobody calls close()
                weakref.finalize(self, self._hold.close)

    def close(self) -> None:
        """Stop, and give the port back (``stop`` keeps it, so a later ``start`` binds the same URL)."""
        self.stop()
        with self._state_lock:
            if self._hold is not None:
                self._hold.close()
                self._hold = None

    def __enter__(self) -> SegmentEndpoint:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
        return _base_url(self._host, self._family, self._port)

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


def _hold_port(family: int, host: str, port: int) -> socket.socket | None:
    """A socket bound to ``port`` and not listening: a client is refused there, as with nothing bound,
    but no other process (another test worker's ephemeral port) can take the port before ``start``."""
    hold = socket.socket(family, socket.SOCK_STREAM)
    try:
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind((host, port))
    except OSError:  # taken already: start() will say so
        hold.close()
        return None
    return hold
