"""The Segment sender under hostile endpoints: whole-request deadlines, key hygiene, prompt trouble
reports, the byte bound, flush's truth, and the spool hook. Real loopback servers throughout."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

import pytest
import requests
from log_capture import LogCapture
from loopback import accept_in_background

import instrument
from instrument import (
    AnalyticsError,
    DeliveryError,
    EncodingError,
    EventName,
    QueueFullError,
    SegmentTransport,
    Settings,
    Track,
    Truncatable,
    _client,
    analytics_scope,
)
from instrument.testing import SegmentEndpoint
from instrument.transports._base import EncodedBatch
from instrument.transports._segment import _Secret

pytestmark = pytest.mark.timeout(60)

#: A flush interval no test waits for: each test's events travel as the batches its flush makes.
ONE_BATCH = 30.0


class Events(EventName):
    BOX_PACKED = "Box Packed"


class Box(Track, event=Events.BOX_PACKED):
    n: int
    blob: Annotated[str, Truncatable] = ""


def emit(count: int, start: int = 0, blob: str = "") -> None:
    with analytics_scope(user_id="u1"):
        for n in range(start, start + count):
            assert instrument.track(Box(n=n, blob=blob)).ok


def assert_invariant() -> None:
    stats = instrument.stats()
    assert stats.recorded == stats.sent + stats.dropped_total + stats.pending


# -- a raw loopback HTTP server that misbehaves on purpose ---------------------------------------------


class RawServer:
    """HTTP/1.1 on plain sockets, so a response can be as slow or as strange as a test needs.

    ``mode`` decides the answer to the next requests: "ok" (200, messages recorded), "drip-body"
    (200 with a large Content-Length, then one byte every 0.2 s), "drip-headers" (the status line,
    then a header one byte every 0.2 s), "echo" (400 quoting the request's headers and body, in the
    reason phrase too). Drips stop when the client goes away or after 30 s.
    """

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests = 0
        self.ids: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        accept_in_background(self._sock, self._stop, self._serve)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                request_line = reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                raw_headers = b""
                while (line := reader.readline()) not in (b"\r\n", b""):
                    raw_headers += line
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                with self._lock:
                    self.requests += 1
                    mode = self.mode
                try:
                    self._answer(conn, mode, raw_headers, body)
                except OSError:
                    return

    def _answer(self, conn: socket.socket, mode: str, raw_headers: bytes, body: bytes) -> None:
        if mode == "ok":
            with self._lock:
                self.ids += [m["messageId"] for m in json.loads(body)["batch"]]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
        elif mode in ("drip-body", "drip-headers"):
            if mode == "drip-body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(150):  # 30 s at most
                if self._stop.wait(0.2):
                    return
                conn.sendall(b"x")
        else:  # echo: a validating proxy quoting the request back
            auth = [line for line in raw_headers.split(b"\r\n") if line.lower().startswith(b"authorization")]
            payload = json.dumps(
                {"code": body.decode()[-60:], "message": (raw_headers + body).decode("utf-8", "replace")}
            ).encode()
            reason = b"Bad " + (auth[0] if auth else b"request")
            conn.sendall(
                b"HTTP/1.1 400 " + reason + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


# -- whole-request deadline ------------------------------------------------------------------------------


@pytest.mark.parametrize("drip", ["drip-body", "drip-headers"])
def test_a_slow_drip_endpoint_cannot_hold_the_sender_past_timeout_times_attempts(
    raw_server: RawServer, configure: Callable[..., _client.Client], errors: list[AnalyticsError], drip: str
) -> None:
    raw_server.mode = drip
    configure(host=raw_server.url, timeout=0.5, max_retries=1, flush_interval=ONE_BATCH)

    emit(5)
    started = time.monotonic()
    delivered = instrument.flush(20.0)
    elapsed = time.monotonic() - started

    assert not delivered
    # Two attempts of 0.5 s each (the first retry is immediate), plus a margin for a loaded machine.
    assert elapsed < 0.5 * 2 + 5.0, elapsed  # the drip itself would go on for 30 s
    assert raw_server.requests == 2
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert error.count == 5
    assert "stuck or too slow" in error.reason
    stats = instrument.stats()
    assert (stats.sent, stats.dropped["delivery_failed"], stats.pending) == (0, 5, 0)

    raw_server.mode = "ok"  # the endpoint recovers: later events flow
    emit(3, start=5)
    assert instrument.flush(10.0)
    assert len(raw_server.ids) == 3
    assert instrument.stats().sent == 3
    assert_invariant()


def test_a_request_cut_at_its_deadline_is_retried_on_a_new_connection(
    raw_server: RawServer, configure: Callable[..., _client.Client], errors: list[AnalyticsError]
) -> None:
    raw_server.mode = "drip-body"
    configure(host=raw_server.url, timeout=0.5, flush_interval=ONE_BATCH)

    emit(4)
    time.sleep(0.1)
    assert not instrument.flush(0.2)  # the first attempt is dripping
    raw_server.mode = "ok"

    assert instrument.flush(10.0)
    assert sorted(raw_server.ids) == sorted(set(raw_server.ids))
    assert len(raw_server.ids) == 4
    assert errors == []


# -- the write key stays secret, whatever the endpoint echoes -------------------------------------------


def key_forms(key: str) -> list[str]:
    return [
        key,
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1],
        base64.b64encode(f"{key}:".encode()).decode(),
        base64.b64encode(f"{key}:".encode()).decode().rstrip("="),
    ]


@pytest.mark.parametrize("key", ["wk_SECRET_7f3a9c41e2b8", 'wk"SECRET\\7f3a/é\u2028x'], ids=["plain", "json-escaped"])
@pytest.mark.parametrize("handler", ["on_error", "logger"])
def test_the_key_is_in_no_log_error_or_repr_when_the_endpoint_echoes_the_request(
    raw_server: RawServer,
    configure: Callable[..., _client.Client],
    write_key: str,
    all_logs: LogCapture,
    key: str,
    handler: str,
) -> None:
    raw_server.mode = "echo"
    errors: list[AnalyticsError] = []
    transport = SegmentTransport(key, Settings(host=raw_server.url, timeout=2.0))
    client = configure(transport=transport, on_error=errors.append if handler == "on_error" else None)

    emit(2)
    assert not instrument.flush(5.0)
    instrument.shutdown(2.0)

    assert raw_server.requests == 1  # a 400 is not retried
    texts = list(all_logs.texts)
    if handler == "on_error":
        [error] = errors
        assert isinstance(error, DeliveryError)
        assert "HTTP 400" in error.reason
        texts += [str(error), repr(error), repr(vars(error))]
    else:
        assert any("DeliveryError" in text and "HTTP 400" in text for text in all_logs.texts), all_logs.texts
    texts += [repr(client), repr(transport), repr(instrument.stats())]
    for text in texts:
        for form in key_forms(key):
            assert form not in text, (form, text)


def test_the_scrubber_removes_every_form_of_the_key() -> None:
    key = 'k"ey\\é'
    secret = _Secret(key)
    for form in key_forms(key):
        assert secret.scrub(f"before {form} after") == "before *** after"


@pytest.mark.parametrize(
    "host",
    ["http://alice:pw@127.0.0.1:9", "ftp://127.0.0.1", "127.0.0.1:9", "http://", "http://127.0.0.1:99999"],
)
def test_the_transport_refuses_a_host_it_cannot_use_without_showing_it(host: str) -> None:
    with pytest.raises(instrument.ConfigurationError) as info:
        SegmentTransport("wk", Settings(), host=host)
    assert "pw" not in str(info.value)
    assert "alice" not in str(info.value)


# -- loss and trouble are reported promptly ---------------------------------------------------------------


def test_a_failing_endpoint_is_reported_once_past_the_grace_while_the_batch_is_still_retried(
    endpoint: SegmentEndpoint,
    configure: Callable[..., _client.Client],
    errors: list[AnalyticsError],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("instrument.transports._segment.TROUBLE_GRACE", 0.3)
    configure(flush_interval=ONE_BATCH)
    endpoint.fail_next(3, 503)  # attempts at 0, 0, ~0.5 s fail; the one at ~1.5 s is delivered

    with caplog.at_level(logging.WARNING, logger="instrument"):
        emit(4)
        assert instrument.flush(15.0)

    trouble = [r.getMessage() for r in caplog.records if "delivery trouble" in r.getMessage()]
    assert len(trouble) == 1, trouble
    assert "4 message(s) not delivered" in trouble[0]
    assert "HTTP 503" in trouble[0]
    assert errors == []  # nothing was lost: on_error only hears of losses
    assert endpoint.message_count == 4


def test_a_batch_starting_in_a_long_outage_gets_one_attempt_so_a_backlog_is_reported_promptly(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], errors: list[AnalyticsError]
) -> None:
    configure(retry_window=1.6, batch_size=5, flush_interval=ONE_BATCH)
    endpoint.stop()

    emit(25)  # five batches behind a dead endpoint
    started = time.monotonic()
    assert not instrument.flush(30.0)
    elapsed = time.monotonic() - started

    # One window for the first batch (attempts at 0, 0, 0.5, 1.5 s), then one attempt for each of the
    # others: about 1.5 s, where a window per batch would take 5 x 1.5 s.
    assert elapsed < 1.6 + 3.0, elapsed
    assert sum(e.count for e in errors if isinstance(e, DeliveryError)) == 25
    assert instrument.stats().dropped["delivery_failed"] == 25


def test_flush_is_false_after_a_loss_and_true_again_once_everything_is_delivered(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=ONE_BATCH)
    endpoint.fail_next(1, 400)
    emit(2)
    assert not instrument.flush(5.0)
    emit(2, start=2)
    assert instrument.flush(5.0)
    assert endpoint.message_count == 2
    assert [type(e) for e in errors] == [DeliveryError]


# -- memory is bounded in bytes ---------------------------------------------------------------------------


def test_the_queue_is_bounded_by_bytes_and_refuses_at_the_call_so_nothing_accepted_is_dropped(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], errors: list[AnalyticsError]
) -> None:
    configure(max_queue_bytes=600_000, batch_size=10, timeout=5.0, flush_interval=0.05)
    endpoint.hang_next(1, 2.0)  # the worker is stuck on the first batch meanwhile

    accepted = []
    with analytics_scope(user_id="u1"):
        for n in range(120):
            if instrument.track(Box(n=n, blob="b" * 20_000)).ok:  # ~20 KB each: ~30 fit in 600 KB
                accepted.append(n)
            time.sleep(0.01)

    assert instrument.flush(15.0)  # everything accepted was delivered
    stats = instrument.stats()
    assert 30 <= len(accepted) < 120
    assert stats.refused["queue_full"] == 120 - len(accepted)
    assert stats.lost_total == 0
    assert stats.sent == len(accepted) == endpoint.unique_message_ids
    assert all(isinstance(e, QueueFullError) for e in errors)
    assert_invariant()


# -- redact's output goes through the encoder --------------------------------------------------------------


def test_a_bad_value_from_redact_is_that_events_error_and_the_batch_arrives(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], errors: list[AnalyticsError]
) -> None:
    def redact(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**properties, "ratio": float("inf") if properties["n"] == 2 else 0.5}

    configure(redact=redact, flush_interval=ONE_BATCH)
    emit(5)

    assert instrument.flush(5.0)
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == [0, 1, 3, 4]
    assert all(m["properties"]["ratio"] == 0.5 for m in endpoint.messages)
    [error] = errors
    assert isinstance(error, EncodingError)
    assert error.field == "ratio"
    assert "NaN and infinity" in str(error)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_the_test_endpoint_refuses_json_that_segment_refuses(endpoint: SegmentEndpoint, constant: str) -> None:
    body = '{"batch": [{"type": "track", "event": "A B", "userId": "1", "messageId": "m", "properties": {"x": %s}}]}'
    response = requests.post(endpoint.url + "/v1/batch", data=body % constant, timeout=5)
    assert response.status_code == 400
    assert endpoint.message_count == 0


# -- the spool hook ----------------------------------------------------------------------------------------


class MemorySpool:
    """The Spool protocol in memory: what the pipeline appended, acked, and what it recovers."""

    def __init__(self, endpoint: SegmentEndpoint, left_over: Iterable[EncodedBatch] = ()) -> None:
        self.endpoint = endpoint
        self.appended: list[tuple[list[str], int]] = []  # ids, requests the endpoint had seen then
        self.acked: list[object] = []
        self.left_over = list(left_over)
        self.closed = False

    def append(self, batch: EncodedBatch) -> object | None:
        self.appended.append((list(batch.ids), self.endpoint.request_count))
        return len(self.appended)

    def ack(self, handle: object) -> None:
        self.acked.append(handle)

    def recover(self) -> Iterable[EncodedBatch]:
        batches, self.left_over = self.left_over, []
        for n, batch in enumerate(batches):
            batch.handle = f"old-{n}"
        return batches

    def after_fork(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def spooled(endpoint: SegmentEndpoint, spool: MemorySpool, **settings: Any) -> SegmentTransport:
    return SegmentTransport("wk-spool", Settings(host=endpoint.url, timeout=0.5, **settings), spool=spool)


def test_the_spool_gets_each_batch_before_its_first_attempt_and_its_ack_after_the_endpoint_took_it(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client]
) -> None:
    spool = MemorySpool(endpoint)
    configure(transport=spooled(endpoint, spool), flush_interval=ONE_BATCH)

    emit(3)
    assert instrument.flush(5.0)

    [(ids, requests_then)] = spool.appended
    assert requests_then == 0  # appended before any request was made
    assert sorted(ids) == sorted(endpoint.message_ids)
    assert spool.acked == [1]
    instrument.shutdown(1.0)
    assert spool.closed


@pytest.mark.parametrize(("status", "acked"), [(400, True), (500, False)])
def test_a_refused_batch_is_acked_and_a_batch_given_up_on_stays_in_the_spool(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], status: int, acked: bool
) -> None:
    spool = MemorySpool(endpoint)
    configure(transport=spooled(endpoint, spool, max_retries=0), flush_interval=ONE_BATCH)
    endpoint.fail_next(1, status)

    emit(2)
    assert not instrument.flush(5.0)

    assert len(spool.appended) == 1
    assert spool.acked == ([1] if acked else [])


def test_batches_recovered_from_the_spool_are_delivered_with_their_ids_and_counted_apart(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client]
) -> None:
    old = [
        json.dumps({"type": "track", "event": "Box Packed", "userId": "gone", "messageId": f"old-{n}"}).encode()
        for n in range(2)
    ]
    spool = MemorySpool(endpoint, [EncodedBatch(old, ["old-0", "old-1"])])
    configure(transport=spooled(endpoint, spool), flush_interval=ONE_BATCH)

    emit(1)  # starts the sender, which recovers first
    assert instrument.flush(5.0)

    assert {"old-0", "old-1"} <= set(endpoint.message_ids)
    assert endpoint.message_count == 3
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.recovered) == (1, 1, 2)
    assert set(spool.acked) == {"old-0", 1}
    assert_invariant()


# -- the wire: Segment's body and headers ------------------------------------------------------------------


@pytest.mark.parametrize("gzip", [False, True])
def test_the_body_and_headers_are_segments(
    endpoint: SegmentEndpoint, configure: Callable[..., _client.Client], write_key: str, gzip: bool
) -> None:
    configure(gzip=gzip, flush_interval=ONE_BATCH)
    emit(3)
    assert instrument.flush(5.0)

    [batch] = endpoint.batches
    assert set(batch.body) == {"batch", "sentAt", "writeKey"}
    assert batch.body["writeKey"] == write_key == batch.write_key
    assert batch.headers["Content-Type"] == "application/json"
    assert batch.headers["User-Agent"] == f"instrument/{instrument.__version__}"
    assert batch.headers.get("Content-Encoding") == ("gzip" if gzip else None)
    assert [m["properties"]["n"] for m in batch.messages] == [0, 1, 2]
    for message in batch.messages:
        assert set(message) == {"type", "userId", "event", "properties", "timestamp", "messageId"}
        assert message["timestamp"].endswith("Z")


def test_suppressed_trouble_reports_are_summed_up_at_shutdown(
    endpoint: SegmentEndpoint,
    configure: Callable[..., _client.Client],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("instrument.transports._segment.TROUBLE_GRACE", 0.0)
    configure(batch_size=2, flush_interval=ONE_BATCH, max_retries=0)
    endpoint.fail_next(3, 503)  # three batches, each failing once (no retries): three trouble reports

    with caplog.at_level(logging.WARNING, logger="instrument"):
        emit(6)
        assert not instrument.flush(10.0)
        instrument.shutdown(1.0)

    trouble = [r.getMessage() for r in caplog.records if "delivery trouble" in r.getMessage()]
    assert len(trouble) == 2, trouble  # the first at once, the rest summed up at shutdown
    assert "2 more delivery trouble since the last report" in trouble[1]
