"""One HTTP POST with a whole-request deadline: connect, send and the full response within ``timeout``.

``http.client`` bounds each socket operation, not the request: an endpoint (or proxy) that answers
with a large Content-Length and sends a byte every half second holds a reader forever. Here every
socket operation is bounded by what is left of the attempt's deadline, the body is read in pieces
with the deadline checked between them, and a watchdog thread shuts the socket down at the deadline
(which also ends a response *header* that drips in). A request that ran out of time is reported as a
stuck or slow endpoint, not as a generic network error.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from instrument._errors import ConfigurationError

#: Bytes of a response body kept (Segment answers with a few bytes of JSON; the rest is read and dropped).
MAX_RESPONSE_BYTES = 64 << 10


@dataclass(frozen=True)
class Response:
    """What the endpoint answered: status, headers (lower-case names) and the first bytes of the body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class AttemptFailed(Exception):
    """The attempt got no complete response: ``stuck`` when it ran out of time."""

    def __init__(self, reason: str, *, stuck: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stuck = stuck


@dataclass(frozen=True)
class Target:
    """A parsed endpoint URL (scheme http/https, host, port, path of the batch API)."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str, api_path: str) -> Target:
        """Parse ``url``; ConfigurationError for another scheme, no host, a bad port, or credentials.

        The error never repeats the URL: it may hold a password.
        """
        if not isinstance(url, str):
            raise ConfigurationError(f"host must be a str URL, not {type(url).__name__}")
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            raise ConfigurationError("host must be an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise ConfigurationError(
                "host must not contain credentials (user:password@): the write key is the credential"
            )
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError("host has an invalid port") from None
        if not parts.hostname:
            raise ConfigurationError("host has no host name")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/") + api_path)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class _OneWrite:
    """Headers and a bytes body go out in one ``send``: http.client writes them separately, which on a
    kept-alive connection costs a second syscall and TCP segment per request (the same bytes either way)."""

    _buffer: list[bytes]

    def _send_output(self, message_body: object = None, encode_chunked: bool = False) -> None:
        if not isinstance(message_body, bytes) or encode_chunked:
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        buffer = self._buffer
        buffer.extend((b"", b""))
        head = b"\r\n".join(buffer)
        del buffer[:]
        self.send(head + message_body)  # type: ignore[attr-defined]


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


class _Watchdog:
    """One thread that shuts an attempt's socket down when the attempt outlives its deadline.

    Attempts of one poster run one at a time and all have the same timeout, so a new deadline is
    never earlier than the one the thread waits for: arming only wakes the thread when it is idle.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: tuple[int, float, http.client.HTTPConnection] | None = None
        self._seq = 0
        self._fired = -1
        self._idle = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start the thread (idempotent); False if no thread can be started (interpreter exit)."""
        with self._cond:
            self._closed = False
        thread = self._thread
        if thread is not None and thread.is_alive():
            return True
        thread = threading.Thread(target=self._run, name="instrument-http-deadline", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            return False
        self._thread = thread
        return True

    def arm(self, deadline: float, conn: http.client.HTTPConnection) -> int:
        with self._cond:
            self._seq += 1
            self._armed = (self._seq, deadline, conn)
            if self._idle:
                self._cond.notify()
            return self._seq

    def disarm(self, token: int) -> bool:
        """Stop watching attempt ``token``; True if the watchdog had already cut it."""
        with self._cond:
            armed = self._armed
            if armed is not None and armed[0] == token:
                self._armed = None
            return self._fired == token

    def close(self) -> None:
        """Let the thread end (it is started again by the next ``start``)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def cut_now(self) -> None:
        """Shut the watched attempt's socket down at once (close gave up waiting for it)."""
        with self._cond:
            armed = self._armed
            if armed is not None:
                self._fire(armed)

    def _fire(self, armed: tuple[int, float, http.client.HTTPConnection]) -> None:
        self._fired = armed[0]
        self._armed = None
        sock = armed[2].sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                armed = self._armed
                if armed is None and self._closed:
                    self._thread = None
                    return
                if armed is None:
                    self._idle = True
                    cond.wait()
                    self._idle = False
                    continue
                remaining = armed[1] - time.monotonic()
                if remaining > 0:
                    cond.wait(remaining)
                    continue
                self._fire(armed)


class Poster:
    """POSTs bodies to one URL over a kept-alive connection, each attempt within ``timeout`` seconds."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._watchdog = _Watchdog()

    def start(self) -> None:
        """Start the deadline thread (on a thread that may start threads); posting works without it."""
        self._watchdog.start()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            t = self.target
            if t.scheme == "https":
                conn = _HTTPSConnection(t.host, t.port, timeout=timeout)
            else:
                conn = _HTTPConnection(t.host, t.port, timeout=timeout)
            self._conn = conn
        elif conn.sock is not None:
            conn.sock.settimeout(timeout)
        else:
            conn.timeout = timeout
        return conn

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one request and read the whole response before the deadline; AttemptFailed if not."""
        timeout = self.timeout
        deadline = time.monotonic() + timeout
        conn = self._connection(timeout)
        token = self._watchdog.arm(deadline, conn)
        try:
            conn.request("POST", self.target.path, body, dict(headers))
            _remaining(conn, deadline)
            response = conn.getresponse()
            data = bytearray()
            while True:
                _remaining(conn, deadline)
                chunk = response.read1(65536) if response.length != 0 else b""
                if not chunk:
                    if response.length:  # the connection ended before the body did (or was cut)
                        raise http.client.IncompleteRead(bytes(data), response.length)
                    response.read()  # marks the response done, so the connection can be reused
                    break
                if len(data) < MAX_RESPONSE_BYTES:
                    data += chunk[: MAX_RESPONSE_BYTES - len(data)]
            result = Response(
                response.status,
                response.reason or "",
                {name.lower(): value for name, value in response.getheaders()},
                bytes(data),
            )
        except Exception as error:
            cut = self._watchdog.disarm(token)
            self.reset()
            if cut or isinstance(error, (TimeoutError, socket.timeout)) or time.monotonic() >= deadline:
                raise AttemptFailed(
                    f"no complete response within {timeout:g} s (the endpoint is stuck or too slow)", stuck=True
                ) from None
            raise AttemptFailed(_describe(error)) from None
        if self._watchdog.disarm(token):  # cut at the deadline: whatever was read is not the response
            self.reset()
            raise AttemptFailed(
                f"no complete response within {timeout:g} s (the endpoint is stuck or too slow)", stuck=True
            )
        if response.will_close:
            self.reset()
        return result

    def abort(self) -> None:
        """Cut the attempt in flight, if any (from another thread)."""
        self._watchdog.cut_now()

    def close(self) -> None:
        """Drop the connection and let the deadline thread end."""
        self.reset()
        self._watchdog.close()

    def reset(self) -> None:
        """Drop the connection (the next attempt opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


def _remaining(conn: http.client.HTTPConnection, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if conn.sock is not None:
        conn.sock.settimeout(left)


def _describe(error: BaseException) -> str:
    """A network error as text: its type and the OS's words, without the request or response data."""
    if isinstance(error, ConnectionRefusedError):
        return "cannot connect: connection refused"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host: {error.strerror or error}"
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP response: {type(error).__name__}"
    return type(error).__name__
