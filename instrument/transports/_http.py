"""One HTTP/1.1 POST with a whole-request deadline: connect, send and the full response within ``timeout``.

A lean exchange on one kept-alive socket instead of ``http.client``, which costs ~150 µs of CPU per
request (headers put one by one in Python, the response's headers parsed through the ``email``
package, a buffered reader per response) where the exchange itself needs a few tens: the request
head is built once per poster (only Content-Length and the caller's headers vary) and goes out with
the body in one ``sendall``; the response is read with ``recv`` into one buffer and parsed there.
The bytes of the request are those http.client sends (request line, ``Host`` as it forms it,
``Accept-Encoding: identity``, then Content-Length and the caller's headers in their order).

``http.client`` also bounds each socket operation, not the request: an endpoint (or proxy) that
answers with a large Content-Length and sends a byte every half second would hold a reader forever.
Here every socket operation is bounded by what is left of the attempt's deadline, and a watchdog
thread shuts the socket down at the deadline (which also ends a TLS handshake or a response header
that drips in). A request that ran out of time is reported as a stuck or slow endpoint, not as a
generic network error.

Responses are parsed strictly and within bounds (header section size and count, chunk lines,
interim responses); the first ``MAX_RESPONSE_BYTES`` of a body are kept, the rest read and dropped.
Whatever an endpoint answers ends in a ``Response`` or an ``AttemptFailed`` whose text names what
was wrong, never the bytes of the request or the response.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from instrument._errors import ConfigurationError

#: Bytes of a response body kept (Segment answers with a few bytes of JSON; the rest is read and dropped).
MAX_RESPONSE_BYTES = 64 << 10

#: Bounds of one response head (status line and header fields; also the trailers of a chunked body).
MAX_HEAD_BYTES = 64 << 10
MAX_HEADERS = 100
#: Longest chunk-size line (with its extensions) and most interim (1xx) responses before the final one.
MAX_CHUNK_LINE = 8 << 10
MAX_INTERIM = 16

_RECV_BYTES = 64 << 10

_STUCK = "no complete response within {:g} s (the endpoint is stuck or too slow)"

# What http.client refuses in a header it is asked to send (a name that is not a token-ish word, a
# value with a line break that does not continue it).
_LEGAL_NAME = re.compile(rb"[^:\s][^:\r\n]*").fullmatch
_ILLEGAL_VALUE = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])").search
# A response's header name: a token (RFC 9110 5.1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_HEX = re.compile(r"[0-9A-Fa-f]{1,16}").fullmatch


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


class _BadResponse(Exception):
    """The response broke HTTP/1.1 (or a bound); the text says how, never with the response's bytes."""


class _NoResponse(Exception):
    """The connection ended before the first byte of a response."""


@dataclass(frozen=True)
class Target:
    """A parsed endpoint URL (scheme http/https, host, port, path of the batch API)."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str, api_path: str) -> Target:
        """Parse ``url``; ConfigurationError for another scheme, no host, a bad port, credentials, or a
        host or path that cannot go into a request line and ``Host`` header.

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
        target = cls(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/") + api_path)
        _request_prefix(target)  # raises ConfigurationError for what no request could carry
        return target

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _request_prefix(target: Target) -> tuple[bytes, bytes]:
    """The request line and ``Host`` header line, as http.client forms them; ConfigurationError if
    impossible."""
    path = target.path or "/"
    if not path.isascii() or any(ch <= " " or ch == "\x7f" for ch in path):
        raise ConfigurationError("host path must be ASCII without spaces or control characters")
    host = target.host
    try:
        host_enc = host.encode("ascii") if host.isascii() else host.encode("idna")
    except UnicodeError:
        raise ConfigurationError("host has an invalid host name") from None
    if ":" in host:  # IPv6: in brackets, without a zone
        host_enc = b"[" + host_enc.partition(b"%")[0] + b"]"
    if any(c <= 0x20 or c == 0x7F for c in host_enc):
        raise ConfigurationError("host has an invalid host name")
    if target.port != (443 if target.scheme == "https" else 80):
        host_enc += b":%d" % target.port
    return b"POST " + path.encode("ascii") + b" HTTP/1.1\r\n", b"Host: " + host_enc + b"\r\n"


def _header_lines(headers: Mapping[str, str]) -> bytes:
    """The caller's headers as http.client writes them (name ASCII, value Latin-1), validated alike."""
    lines = []
    for name, value in headers.items():
        try:
            name_b = name.encode("ascii")
        except UnicodeError:
            raise AttemptFailed("invalid request header name (not ASCII)") from None
        if not _LEGAL_NAME(name_b):
            raise AttemptFailed("invalid request header name")
        try:
            value_b = value.encode("latin-1")
        except UnicodeError:
            raise AttemptFailed("invalid request header value (not Latin-1)") from None
        if _ILLEGAL_VALUE(value_b):
            raise AttemptFailed("invalid request header value (a line break)")
        lines.append(name_b + b": " + value_b + b"\r\n")
    return b"".join(lines)


class _Watchdog:
    """One thread that shuts an attempt's socket down when the attempt outlives its deadline.

    Attempts of one poster run one at a time and all have the same timeout, so a new deadline is
    never earlier than the one the thread waits for: arming only wakes the thread when it is idle.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: tuple[int, float, Poster] | None = None
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

    def arm(self, deadline: float, poster: Poster) -> tuple[int, bool]:
        """Watch an attempt until ``disarm``: its token, and whether a thread watches (False: not
        started, or gone: a forked child, interpreter exit; the attempt bounds each operation itself)."""
        with self._cond:
            self._seq += 1
            self._armed = (self._seq, deadline, poster)
            if self._idle:
                self._cond.notify()
            thread = self._thread
            watched = thread is not None and not self._closed and thread.is_alive()
            return self._seq, watched

    def disarm(self, token: int) -> bool:
        """Stop watching attempt ``token``; True if the watchdog had already cut it."""
        with self._cond:
            armed = self._armed
            if armed is not None and armed[0] == token:
                self._armed = None
            return self._fired == token

    def cut(self, token: int) -> bool:
        """True if attempt ``token`` was cut (it stays watched)."""
        with self._cond:
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

    def _fire(self, armed: tuple[int, float, Poster]) -> None:
        self._fired = armed[0]
        self._armed = None
        sock = armed[2]._conn  # the socket in use now (a retry may have replaced the first one)
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
    """POSTs bodies to one URL over a kept-alive connection, each attempt within ``timeout`` seconds.

    A kept-alive connection that the endpoint closed while it was idle (no byte of a response came
    back) is replaced at once and the request sent again on the new one, within the same deadline.
    Raises ConfigurationError for a target no request line could carry (``Target.parse`` refuses
    those first).
    """

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._request_line, self._host_line = _request_prefix(target)
        self._conn: socket.socket | None = None
        self._reused = False  # the connection has carried a complete exchange
        self._got_bytes = False  # the attempt on this connection received a byte of a response
        self._ssl: ssl.SSLContext | None = None
        self._watchdog = _Watchdog()
        self._headers_key: tuple[tuple[str, str], ...] | None = None
        self._head: tuple[bytes, bytes] = (b"", b"")

    def start(self) -> None:
        """Start the deadline thread (on a thread that may start threads); posting works without it."""
        self._watchdog.start()

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one request and read the whole response before the deadline; AttemptFailed if not."""
        timeout = self.timeout
        deadline = time.monotonic() + timeout
        token, watched = self._watchdog.arm(deadline, self)
        try:
            request = self._request(body, headers)
            while True:
                reused = self._reused and self._conn is not None
                try:
                    response, keep = self._exchange(request, deadline, watched=watched)
                    break
                except (_NoResponse, ConnectionError):
                    self.reset()
                    # Only a reused connection is retried, once (the next one is new), and only when
                    # no byte of a response came: the endpoint closed it while it was idle. Delivery
                    # is at-least-once: had the endpoint processed the request, it is sent twice.
                    if not reused or self._got_bytes:
                        raise
                    if self._watchdog.cut(token):
                        raise TimeoutError from None
        except Exception as error:
            cut = self._watchdog.disarm(token)
            self.reset()
            if cut or isinstance(error, (TimeoutError, socket.timeout)) or time.monotonic() >= deadline:
                raise AttemptFailed(_STUCK.format(timeout), stuck=True) from None
            if isinstance(error, AttemptFailed):
                raise
            raise AttemptFailed(_describe(error)) from None
        if self._watchdog.disarm(token):  # cut at the deadline: whatever was read is not the response
            self.reset()
            raise AttemptFailed(_STUCK.format(timeout), stuck=True)
        if keep:
            self._reused = True
        else:
            self.reset()
        return response

    def _request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        """The request's bytes: the head (cached per set of caller headers) and the body."""
        key = tuple(headers.items())
        if key != self._headers_key:
            names = {name.lower() for name in headers}
            before = self._request_line
            if "host" not in names:  # the caller's Host and Accept-Encoding replace ours, as with http.client
                before += self._host_line
            if "accept-encoding" not in names:
                before += b"Accept-Encoding: identity\r\n"
            lines = _header_lines(headers) + b"\r\n"
            if "content-length" in names or "transfer-encoding" in names:
                self._head = (before + lines, b"")
            else:
                self._head = (before + b"Content-Length: ", b"\r\n" + lines)
            self._headers_key = key
        before, after = self._head
        if not after:
            return before + body
        return b"".join((before, b"%d" % len(body), after, body))

    def _exchange(self, request: bytes, deadline: float, *, watched: bool) -> tuple[Response, bool]:
        """Send ``request`` and read its response: (the response, whether the connection stays usable).

        ``watched``: the watchdog shuts the socket down at the deadline, which ends a blocked ``send`` or
        ``recv``; the socket then blocks (a timeout costs a poll and mode switches per operation, more
        than the request's own two calls). Unwatched, each operation is bounded by what is left.
        """
        self._got_bytes = False
        sock = self._conn or self._connect(deadline)
        if watched:
            _left(deadline)
            if sock.gettimeout() is not None:
                sock.settimeout(None)
        else:
            _bound(sock, deadline)
        sock.sendall(request)
        reader = _Reader(self, sock, None if watched else deadline)
        for _ in range(MAX_INTERIM + 1):
            status, reason, fields, version = reader.head()
            if status >= 200:
                break
            if status == 101:
                raise _BadResponse("101 Switching Protocols to an upgrade never asked for")
        else:
            raise _BadResponse(f"more than {MAX_INTERIM} interim (1xx) responses")
        keep = _keeps_alive(version, fields)
        data = bytearray()
        if status in (204, 304):
            pass
        elif "transfer-encoding" in fields:
            codings = [c.strip().lower() for c in fields["transfer-encoding"].split(",")]
            if codings[-1] == "chunked":
                reader.chunked(data)
                keep = keep and "content-length" not in fields  # both: the framing is doubtful (RFC 9112 6.3)
            else:
                reader.until_close(data)
                keep = False
        elif "content-length" in fields:
            reader.exactly(_content_length(fields["content-length"]), data)
        else:
            reader.until_close(data)
            keep = False
        if reader.pos != len(reader.buf):  # bytes beyond the response: the connection is out of step
            keep = False
        return Response(status, reason, fields, bytes(data)), keep

    def _connect(self, deadline: float) -> socket.socket:
        t = self.target
        sock = socket.create_connection((t.host, t.port), timeout=_left(deadline))
        self._conn = sock
        self._reused = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if t.scheme == "https":
            context = self._ssl
            if context is None:
                context = self._ssl = _https_context()
            sock = context.wrap_socket(sock, server_hostname=t.host, do_handshake_on_connect=False)
            self._conn = sock  # before the handshake: the watchdog can cut one that drips
            _bound(sock, deadline)
            sock.do_handshake()
        return sock

    def abort(self) -> None:
        """Cut the attempt in flight, if any (from another thread)."""
        self._watchdog.cut_now()

    def close(self) -> None:
        """Drop the connection and let the deadline thread end."""
        self.reset()
        self._watchdog.close()

    def reset(self) -> None:
        """Drop the connection (the next attempt opens a new one)."""
        sock, self._conn = self._conn, None
        self._reused = False
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def _https_context() -> ssl.SSLContext:
    """What http.client uses for HTTPS: the default verifying context, offering HTTP/1.1 by ALPN."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    if context.post_handshake_auth is not None:
        context.post_handshake_auth = True
    return context


class _Reader:
    """Reads one response from a socket into one buffer, each ``recv`` bounded by ``deadline`` (None: the
    socket blocks and the watchdog ends it at the deadline)."""

    __slots__ = ("buf", "deadline", "pos", "poster", "sock")

    def __init__(self, poster: Poster, sock: socket.socket, deadline: float | None) -> None:
        self.poster = poster
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> bool:
        """Receive more bytes; False when the endpoint closed the connection."""
        if self.deadline is not None:  # None: the watchdog cuts the socket at the deadline
            _bound(self.sock, self.deadline)
        data = self.sock.recv(_RECV_BYTES)
        if not data:
            return False
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data
        self.poster._got_bytes = True
        return True

    def head(self) -> tuple[int, str, dict[str, str], int]:
        """One response head: (status, reason, fields with lower-case names, 10 or 11 for the version)."""
        text = self._section(MAX_HEAD_BYTES)
        lines = text.split("\n")
        status_line = lines[0].removesuffix("\r")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or "\r" in status_line or "\x00" in status_line:
            raise _BadResponse("malformed status line")
        version = parts[0]
        if version == "HTTP/1.0":
            vsn = 10
        elif len(version) == 8 and version.startswith("HTTP/1.") and version[7].isdigit():
            vsn = 11
        else:
            raise _BadResponse("not an HTTP/1.x response")
        code = parts[1]
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] == "0":
            raise _BadResponse("malformed status code")
        reason = parts[2].strip() if len(parts) > 2 else ""
        return int(code), reason, _fields(lines[1:]), vsn

    def _section(self, limit: int) -> str:
        """The bytes up to the first empty line (lines end with LF or CRLF), as Latin-1 text."""
        scan = self.pos
        while True:
            buf = self.buf
            crlf = buf.find(b"\n\r\n", scan)
            lf = buf.find(b"\n\n", scan)
            if lf >= 0 and (crlf < 0 or lf < crlf):
                end, skip = lf + 1, 1
            elif crlf >= 0:
                end, skip = crlf + 1, 2
            else:
                end = -1
            if end >= 0 and end - self.pos <= limit:
                text = buf[self.pos : end].decode("latin-1")
                self.pos = end + skip
                return text
            if end >= 0 or len(buf) - self.pos > limit:
                raise _BadResponse(f"header section over {limit} bytes")
            scan = max(self.pos, len(buf) - 2)
            offset = self.pos
            if not self._fill():
                if not self.poster._got_bytes:
                    raise _NoResponse
                raise _BadResponse("the connection closed inside the header section")
            scan -= offset - self.pos  # _fill moved the unread bytes to the front

    def _line(self) -> str:
        """One line of a chunked body (a chunk size, or the CRLF after the data), without its end."""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0 and end - self.pos <= MAX_CHUNK_LINE:
                line = self.buf[self.pos : end].decode("latin-1")
                self.pos = end + 1
                return line.removesuffix("\r")
            if end >= 0 or len(self.buf) - self.pos > MAX_CHUNK_LINE:
                raise _BadResponse(f"chunk line over {MAX_CHUNK_LINE} bytes")
            if not self._fill():
                raise _BadResponse("the connection closed inside the chunked body")

    def exactly(self, count: int, keep: bytearray) -> None:
        """Read ``count`` body bytes, keeping the first ``MAX_RESPONSE_BYTES`` in ``keep``."""
        while True:
            take = min(count, len(self.buf) - self.pos)
            room = MAX_RESPONSE_BYTES - len(keep)
            if room > 0:
                keep += self.buf[self.pos : self.pos + min(take, room)]
            self.pos += take
            count -= take
            if not count:
                return
            if not self._fill():
                raise _BadResponse("the connection closed before the end of the body")

    def until_close(self, keep: bytearray) -> None:
        """Read the body up to the end of the connection (no length was given)."""
        while True:
            self.exactly(len(self.buf) - self.pos, keep)
            if not self._fill():
                return

    def chunked(self, keep: bytearray) -> None:
        """Read a chunked body and its trailers."""
        while True:
            digits = self._line().split(";", 1)[0].strip(" \t")
            if not _HEX(digits):
                raise _BadResponse("malformed chunk size")
            count = int(digits, 16)
            if not count:
                break
            self.exactly(count, keep)
            if self._line():
                raise _BadResponse("chunk data longer than its size")
        lines = []  # the trailers: checked, not kept
        size = 0
        while line := self._line():
            lines.append(line)
            size += len(line) + 2
            if size > MAX_HEAD_BYTES:
                raise _BadResponse(f"trailer section over {MAX_HEAD_BYTES} bytes")
        _fields(lines)


def _fields(lines: list[str]) -> dict[str, str]:
    """Header fields (names lower-cased; obsolete line folding joined with a space)."""
    fields: dict[str, str] = {}
    name = ""
    count = 0
    for text in lines:
        line = text.removesuffix("\r")
        if not line:
            continue  # the section's last line end
        if "\r" in line or "\x00" in line:
            raise _BadResponse("a header line holds CR or NUL")
        if line[0] in " \t":
            if not name:
                raise _BadResponse("a continuation line without a header")
            fields[name] = (fields[name] + " " + line.strip(" \t")).strip(" \t")
            continue
        raw_name, colon, value = line.partition(":")
        if not colon or not _TOKEN(raw_name):
            raise _BadResponse("malformed header line")
        count += 1
        if count > MAX_HEADERS:
            raise _BadResponse(f"more than {MAX_HEADERS} headers")
        name = raw_name.lower()
        value = value.strip(" \t")
        if name == "content-length" and fields.get(name, value) != value:
            raise _BadResponse("conflicting Content-Length headers")
        fields[name] = value
    return fields


def _content_length(value: str) -> int:
    # "5, 5" (a list of one repeated value) is allowed by RFC 9110 8.6; anything else is an error.
    values = {v.strip(" \t") for v in value.split(",")}
    if len(values) != 1:
        raise _BadResponse("conflicting Content-Length values")
    text = values.pop()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _BadResponse("invalid Content-Length")
    return int(text)


def _keeps_alive(version: int, fields: dict[str, str]) -> bool:
    """http.client's rule: HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only when asked to keep alive."""
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    if version == 11:
        return "close" not in tokens
    return "keep-alive" in tokens or "keep-alive" in fields


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _bound(sock: socket.socket, deadline: float) -> None:
    sock.settimeout(_left(deadline))


def _describe(error: BaseException) -> str:
    """A network error as text: its type and the OS's words, without the request or response data."""
    if isinstance(error, _BadResponse):
        return f"bad HTTP response: {error}"
    if isinstance(error, _NoResponse):
        return "the endpoint closed the connection without a response"
    if isinstance(error, ConnectionRefusedError):
        return "cannot connect: connection refused"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host: {error.strerror or error}"
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return type(error).__name__
