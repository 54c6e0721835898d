"""The HTTP/1.1 exchange of ``transports/_http.py`` against a raw loopback server that answers given bytes:
the request's bytes (http.client's), response framing (length, chunked, until close), interim responses,
keep-alive and its end, bounds, deadlines, and a reused connection the server closed while idle."""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback import accept_in_background

from instrument.transports._http import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_RESPONSE_BYTES,
    AttemptFailed,
    Poster,
    Response,
    Target,
)

pytestmark = pytest.mark.timeout(120)

HEADERS = {"Content-Type": "application/json", "User-Agent": "instrument/test", "Authorization": "Basic azo="}
BODY = b'{"batch":[{"messageId":"m1"}]}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#: Put into responses that must fail: no error text may quote it.
MARKER = "Zq8MARKERv3"


@dataclass
class Reply:
    """What the server does with one request: send ``data`` (in ``pieces`` of that size, ``pause`` s
    apart), then close the connection if ``close`` (after 0.2 s with a reset if ``reset``)."""

    data: bytes
    close: bool = False
    reset: bool = False
    pieces: int = 0
    pause: float = 0.0


@dataclass
class RawServer:
    """HTTP/1.1 on plain sockets: reads each request whole and answers with the next ``Reply``."""

    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(OK))
    tls: ssl.SSLContext | None = None
    accepts: int = 0
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        accept_in_background(self._sock, self._stop, self._serve_counted)

    @property
    def target(self) -> Target:
        scheme = "https" if self.tls else "http"
        return Target.parse(f"{scheme}://127.0.0.1:{self._sock.getsockname()[1]}", "/v1/batch")

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                conn.close()

    def close_connections(self, *, reset: bool = False) -> None:
        """Close every open connection (as a server ends idle keep-alive connections), or reset it."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn, reset)

    def _serve_counted(self, conn: socket.socket) -> None:
        with self._lock:
            self.accepts += 1
            self._conns.append(conn)
        self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._conns.append(conn)
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                with self._lock:
                    self.requests.append(head + b"\r\n\r\n" + buf[:length])
                    reply = self.replies.pop(0) if self.replies else self.default
                buf = buf[length:]
                self._send(conn, reply)
                if reply.reset:
                    time.sleep(0.2)  # the client has read what came and waits for more
                    _close(conn, reset=True)
                    return
                if reply.close:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _send(self, conn: socket.socket, reply: Reply) -> None:
        if not reply.pieces:
            conn.sendall(reply.data)
            return
        for start in range(0, len(reply.data), reply.pieces):
            if self._stop.wait(reply.pause):
                return
            conn.sendall(reply.data[start : start + reply.pieces])


def _close(conn: socket.socket, reset: bool) -> None:
    # A close from another thread takes effect once the serving thread's recv returns: shutting the
    # reading side down wakes it (with a reset, without sending a FIN first).
    try:
        if reset:  # linger 0: the close sends a TCP reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


@pytest.fixture
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


@pytest.fixture
def poster(server: RawServer) -> Iterator[Poster]:
    p = Poster(server.target, 5.0)
    p.start()
    yield p
    p.close()


def answer(server: RawServer, poster: Poster, *replies: Reply) -> Response:
    server.replies[:] = list(replies)
    return poster.post(BODY, HEADERS)


def fails(server: RawServer, poster: Poster, *replies: Reply) -> AttemptFailed:
    server.replies[:] = list(replies)
    with pytest.raises(AttemptFailed) as caught:
        poster.post(BODY, HEADERS)
    assert MARKER not in caught.value.reason
    assert BODY.decode() not in caught.value.reason
    return caught.value


# -- the request: http.client's bytes ------------------------------------------------------------------


class _Recorder(http.client.HTTPConnection):
    """http.client as the oracle: what it would send, captured instead of sent."""

    sent = b""

    def send(self, data: object) -> None:
        assert isinstance(data, bytes)
        self.sent += data


def http_client_bytes(target: Target, body: bytes, headers: dict[str, str]) -> bytes:
    cls = _Recorder
    if target.scheme == "https":
        cls = type("_HTTPSRecorder", (_Recorder,), {"default_port": 443})
    conn = cls(target.host, target.port)
    conn.request("POST", target.path, body, headers)
    return conn.sent


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://api.example.com",
        "https://api.example.com",
        "https://api.example.com:80",
        "http://api.example.com:443/prefix/",
        "http://bücher.example",
        "http://[::1]:8080",
        "https://[fe80::1%25eth0]",
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        HEADERS,
        {**HEADERS, "X-Retry-Count": "2"},
        {"Host": "elsewhere.example", "Accept-Encoding": "gzip"},
        {},
    ],
    ids=["segment", "retry", "own-host", "none"],
)
def test_the_request_bytes_are_what_http_client_sends(url: str, headers: dict[str, str]) -> None:
    # The oracle's bytes for the same target, path, headers and body: any difference in the request
    # line, Host (IDNA, port only when not the default, IPv6 in brackets without a zone), header order
    # or Content-Length fails.
    target = Target.parse(url, "/v1/batch")
    poster = Poster(target, 1.0)
    for body in (BODY, b"", b"x" * 70_000):
        assert poster._request(body, headers) == http_client_bytes(target, body, headers)


def test_the_request_reaches_a_real_server_as_http_client_would_send_it(server: RawServer, poster: Poster) -> None:
    poster.post(BODY, HEADERS)
    conn = http.client.HTTPConnection("127.0.0.1", server.target.port)
    conn.request("POST", "/v1/batch", BODY, HEADERS)
    assert conn.getresponse().read() == b"ok"
    conn.close()
    ours, theirs = server.requests
    assert ours == theirs


@pytest.mark.parametrize(
    "headers", [{"X-Bad": "a\r\nInjected: 1"}, {"X-Bad:": "1"}, {"X-Bad": "\u2603"}, {"\u2603": "1"}]
)
def test_a_header_http_client_would_refuse_fails_the_attempt_without_sending(
    server: RawServer, poster: Poster, headers: dict[str, str]
) -> None:
    with pytest.raises(AttemptFailed, match="invalid request header") as caught:
        poster.post(BODY, headers)
    assert "Injected" not in caught.value.reason
    assert server.requests == []


# -- response framing ----------------------------------------------------------------------------------


def test_a_content_length_body_is_read_exactly_and_the_connection_is_reused(server: RawServer, poster: Poster) -> None:
    for n in range(5):
        response = answer(server, poster, Reply(b"HTTP/1.1 201 Created\r\nX-N: %d\r\nContent-Length: 3\r\n\r\nabc" % n))
        assert (response.status, response.reason, response.body) == (201, "Created", b"abc")
        assert response.headers == {"x-n": str(n), "content-length": "3"}
    assert server.accepts == 1  # one connection for five posts


def test_a_chunked_body_is_assembled_with_extensions_and_trailers(server: RawServer, poster: Poster) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert answer(server, poster, Reply(chunked)).body == b"hello world"
    assert answer(server, poster, Reply(chunked, pieces=3)).body == b"hello world"  # split anywhere
    assert answer(server, poster).body == b"ok"  # the trailers were consumed: the next response is whole
    assert server.accepts == 1


def test_a_body_without_length_is_read_until_close_and_the_connection_is_not_reused(
    server: RawServer, poster: Poster
) -> None:
    response = answer(
        server, poster, Reply(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", close=True)
    )
    assert response.body == b"until close"
    assert answer(server, poster).body == b"ok"
    assert server.accepts == 2


def test_interim_responses_are_skipped(server: RawServer, poster: Poster) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
    response = answer(server, poster, Reply(interim + OK))
    assert (response.status, response.body) == (200, b"ok")
    assert answer(server, poster).status == 200
    assert server.accepts == 1


def test_too_many_interim_responses_fail_the_attempt(server: RawServer, poster: Poster) -> None:
    error = fails(server, poster, Reply(b"HTTP/1.1 102 Processing\r\n\r\n" * 40 + OK))
    assert "interim" in error.reason


@pytest.mark.parametrize(
    ("head", "reused"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Upgrade, Close\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n", True),
    ],
)
def test_the_connection_is_kept_only_when_the_response_allows_it(
    server: RawServer, poster: Poster, head: bytes, reused: bool
) -> None:
    # The server keeps every connection open: only the client's reading of the response decides.
    assert answer(server, poster, Reply(head + b"\r\nok")).body == b"ok"
    assert answer(server, poster).body == b"ok"
    assert server.accepts == (1 if reused else 2)


def test_bytes_after_the_response_drop_the_connection(server: RawServer, poster: Poster) -> None:
    # A server out of step (more than one response): those bytes must not be read as the next answer.
    assert answer(server, poster, Reply(OK + b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n")).status == 200
    assert answer(server, poster).status == 200
    assert server.accepts == 2


def test_content_length_and_chunked_together_is_read_chunked_and_not_reused(server: RawServer, poster: Poster) -> None:
    both = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    assert answer(server, poster, Reply(both)).body == b"hi"
    assert answer(server, poster).status == 200
    assert server.accepts == 2


def test_a_204_has_no_body_whatever_it_says(server: RawServer, poster: Poster) -> None:
    assert answer(server, poster, Reply(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")).body == b""
    assert answer(server, poster).body == b"ok"  # it waited for no body and kept the connection
    assert server.accepts == 1


def test_bare_lf_line_ends_and_folded_headers_are_read(server: RawServer, poster: Poster) -> None:
    response = answer(server, poster, Reply(b"HTTP/1.1 200 OK\nX-Folded: a\n  b\nContent-Length: 2\n\nok"))
    assert response.headers["x-folded"] == "a b"
    assert response.body == b"ok"


# -- bounds and malformed responses --------------------------------------------------------------------


def test_an_oversize_header_section_fails_clearly(server: RawServer, poster: Poster) -> None:
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + MARKER.encode() * (MAX_HEAD_BYTES // len(MARKER) + 1) + b"\r\n\r\n"
    error = fails(server, poster, Reply(big, close=True))
    assert error.reason.startswith("bad HTTP response: header section over")
    assert not error.stuck


def test_too_many_headers_fail_clearly(server: RawServer, poster: Poster) -> None:
    many = b"".join(b"X-%d: %s\r\n" % (n, MARKER.encode()) for n in range(MAX_HEADERS + 1))
    error = fails(server, poster, Reply(b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"))
    assert error.reason == f"bad HTTP response: more than {MAX_HEADERS} headers"


def test_an_oversize_body_keeps_its_first_bytes_and_drains_the_rest(server: RawServer, poster: Poster) -> None:
    size = 5 * MAX_RESPONSE_BYTES + 17
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    response = answer(server, poster, Reply(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + data))
    assert response.body == data[:MAX_RESPONSE_BYTES]
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size + data + b"\r\n0\r\n\r\n"
    assert answer(server, poster, Reply(chunked)).body == data[:MAX_RESPONSE_BYTES]
    assert answer(server, poster).body == b"ok"  # drained to the byte: the connection is still in step
    assert server.accepts == 1


M = MARKER.encode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"SPDY/3 200 OK " + M + b"\r\n\r\n", "malformed status line"),
        (b"HTTP/2.0 200 OK\r\n\r\n", "not an HTTP/1.x response"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status code"),
        (b"HTTP/1.1 200 OK\r\n" + M + b"\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX-A: a\rX-B: " + M + b"\r\n\r\n", "CR or NUL"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "conflicting Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + M + b"\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", "longer than its size"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "101"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before the end of the body"),
        (b"HTTP/1.1 200 OK\r\nX-Cut: " + M, "closed inside the header section"),
        (b"", "closed the connection without a response"),
    ],
)
def test_a_malformed_response_fails_with_its_fault_named_never_its_bytes(
    server: RawServer, poster: Poster, data: bytes, words: str
) -> None:
    error = fails(server, poster, Reply(data, close=True))
    assert words in error.reason
    assert not error.stuck
    assert answer(server, poster).body == b"ok"  # the next attempt starts afresh


# -- deadlines -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 200,  # a header that drips
        b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200,  # a body that drips
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 200,
    ],
    ids=["header", "body", "chunks"],
)
@pytest.mark.parametrize("watched", [True, False], ids=["watchdog", "no-watchdog"])
def test_a_response_that_drips_past_the_deadline_is_cut_as_stuck(server: RawServer, data: bytes, watched: bool) -> None:
    # Each byte comes well within any one recv's timeout: only the whole-request deadline ends it, by the
    # watchdog shutting the (blocking) socket down, or, with no watchdog thread, by each recv's timeout
    # being what is left of it.
    error = _stuck_within_half_a_second(server, Reply(data, pieces=1, pause=0.05), watched)  # the drip: 10 s
    assert "stuck or too slow" in error.reason


def _stuck_within_half_a_second(server: RawServer, reply: Reply, watched: bool) -> AttemptFailed:
    """Post against ``reply`` with a 0.5 s deadline (the watchdog started if ``watched``): the attempt must
    fail as stuck at the deadline, not when the reply would end."""
    poster = Poster(server.target, 0.5)
    if watched:
        poster.start()
    server.replies[:] = [reply]
    started = time.monotonic()
    with pytest.raises(AttemptFailed) as caught:
        poster.post(BODY, HEADERS)
    elapsed = time.monotonic() - started
    poster.close()
    assert caught.value.stuck
    assert 0.45 <= elapsed < 0.5 + 2.0, elapsed
    return caught.value


@pytest.mark.parametrize("watched", [True, False], ids=["watchdog", "no-watchdog"])
def test_an_endpoint_that_never_answers_is_cut_at_the_deadline(server: RawServer, watched: bool) -> None:
    _stuck_within_half_a_second(server, Reply(b"", pieces=1, pause=30.0), watched)  # reads, answers nothing


def test_a_watched_connection_blocks_and_an_unwatched_one_bounds_each_operation(server: RawServer) -> None:
    # With the watchdog running the socket blocks (no poll and mode switch per send and recv: the
    # watchdog ends a blocked call at the deadline); without it, each operation has a timeout.
    watched, unwatched = Poster(server.target, 5.0), Poster(server.target, 5.0)
    watched.start()
    for poster in (watched, unwatched):
        server.replies[:] = [Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]
        assert poster.post(BODY, HEADERS).body == b"ok"
    assert watched._conn is not None
    assert watched._conn.gettimeout() is None
    assert unwatched._conn is not None
    assert unwatched._conn.gettimeout() is not None
    watched.close()
    unwatched.close()


def test_abort_cuts_an_attempt_waiting_for_an_answer(server: RawServer) -> None:
    poster = Poster(server.target, 30.0)
    poster.start()
    server.replies[:] = [Reply(b"HTTP/1.1 200 OK\r\n", pieces=1, pause=60.0)]  # no answer for a minute
    done = threading.Event()

    def abort_until_done() -> None:  # again and again: an abort before the attempt starts cuts nothing
        while not done.wait(0.2):
            poster.abort()

    threading.Thread(target=abort_until_done, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(AttemptFailed) as caught:
        poster.post(BODY, HEADERS)
    done.set()
    poster.close()
    assert caught.value.stuck
    assert time.monotonic() - started < 10.0  # without the cut: 30 s


# -- a kept-alive connection the server closed while idle --------------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_reused_connection_closed_while_idle_is_replaced_and_the_request_sent_once(
    server: RawServer, poster: Poster, reset: bool
) -> None:
    # Without the replacement the second post fails (the endpoint closed the connection); with a
    # replacement that also resent what reached the server, it would count 3 requests.
    assert answer(server, poster).status == 200
    server.close_connections(reset=reset)
    time.sleep(0.1)  # the close reaches the client's side while it is idle
    assert answer(server, poster).status == 200
    assert server.accepts == 2
    assert len(server.requests) == 2


def test_a_new_connection_closed_without_an_answer_is_not_sent_again(server: RawServer, poster: Poster) -> None:
    # Only a *reused* connection is retried: here the request reached a server that chose to close.
    error = fails(server, poster, Reply(b"", close=True))
    assert error.reason == "the endpoint closed the connection without a response"
    assert len(server.requests) == 1


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_reused_connection_that_answered_part_of_a_response_is_not_sent_again(
    server: RawServer, poster: Poster, reset: bool
) -> None:
    # A byte of an answer means the endpoint has the request: sending it again would duplicate it
    # (the reset case fails if the retry ignores the bytes already received: 3 requests).
    assert answer(server, poster).status == 200
    error = fails(server, poster, Reply(b"HTTP/1.1 200", close=not reset, reset=reset))
    assert ("ConnectionResetError" if reset else "closed inside the header section") in error.reason
    assert len(server.requests) == 2
    assert server.accepts == 1


# -- whatever the bytes ---------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 204 No Content\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"Content-Length: 3\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Connection: close\r\n",
        b"X-A: b\r\n",
        b" folded\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"3\r\nabc\r\n",
        b"0\r\n\r\n",
        b"ffffffffffffffff\r\n",
        b":",
        b"abc",
        b"\x00",
        b"\xff",
    ]
)
_ANSWERS = st.one_of(st.binary(max_size=300), st.lists(_PIECES | st.binary(max_size=8), max_size=12).map(b"".join))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_ANSWERS, keep_open=st.booleans())
def test_any_answer_is_a_response_or_attempt_failed_within_the_deadline(
    server: RawServer, data: bytes, keep_open: bool
) -> None:
    # Any other exception escaping, or an attempt outliving its deadline, fails this.
    timeout = 0.3
    poster = Poster(server.target, timeout)
    poster.start()
    server.replies[:] = [Reply(data, close=not keep_open)]
    started = time.monotonic()
    try:
        result: Response | AttemptFailed = poster.post(BODY, HEADERS)
    except AttemptFailed as error:
        result = error
    finally:
        poster.close()
    assert time.monotonic() - started < timeout + 3.0  # the deadline and a margin for a loaded machine
    if isinstance(result, Response):
        assert 100 <= result.status <= 999
        assert len(result.body) <= MAX_RESPONSE_BYTES
    else:
        assert BODY.decode() not in result.reason


# -- https ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command) and its key."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[RawServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    raw = RawServer(tls=context)
    yield raw
    raw.close()


def test_https_is_verified_against_the_trusted_certificates_and_keeps_the_connection(
    tls_server: RawServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default context reads SSL_CERT_FILE when it is made (at the first connection): trusting
    # the test's certificate there is what makes the handshake, with its host name check, succeed.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    poster = Poster(tls_server.target, 5.0)
    poster.start()
    try:
        for _ in range(3):
            assert answer(tls_server, poster).body == b"ok"
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        assert answer(tls_server, poster, Reply(chunked, pieces=5)).body == b"hi"
        tls_server.close_connections()
        time.sleep(0.1)
        assert answer(tls_server, poster).body == b"ok"  # closed while idle: replaced
    finally:
        poster.close()
    assert tls_server.accepts == 2
    assert tls_server.requests[0].startswith(
        b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % tls_server.target.port
    )


def test_https_refuses_a_certificate_it_does_not_trust(tls_server: RawServer) -> None:
    # Fails if verification were off: the self-signed certificate is in no trusted store here.
    poster = Poster(tls_server.target, 5.0)
    with pytest.raises(AttemptFailed, match="certificate verify failed") as caught:
        poster.post(BODY, HEADERS)
    poster.close()
    assert not caught.value.stuck
    assert tls_server.requests == []
