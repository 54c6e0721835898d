"""Tests of the loopback Segment endpoint, driven by ``requests`` and by the real Segment client.

Every request goes to 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from segment.analytics import Client

from instrument.testing import ReceivedBatch, SegmentEndpoint

pytestmark = pytest.mark.timeout(60)

WRITE_KEY = "wkey"


@pytest.fixture
def endpoint() -> Iterator[SegmentEndpoint]:
    with SegmentEndpoint() as ep:
        yield ep


@pytest.fixture
def make_client(endpoint: SegmentEndpoint) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(**overrides: Any) -> Client:
        options: dict[str, Any] = {"host": endpoint.url, "upload_interval": 0.05, "max_retries": 3}
        options.update(overrides)
        client = Client(WRITE_KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.join()


def message(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "A B", "userId": "1", "messageId": f"mid-{n}", **extra}


def batch_body(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages), "sentAt": "2024-01-01T00:00:00+00:00", "writeKey": WRITE_KEY}


def post(endpoint: SegmentEndpoint, path: str = "/v1/batch", **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    return requests.post(endpoint.url + path, **kwargs)


# -- plain HTTP ---------------------------------------------------------------------------------


def test_batch_post_is_answered_200_with_success_json_and_content_length(endpoint: SegmentEndpoint) -> None:
    response = post(endpoint, json=batch_body(message()))

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.headers["Content-Type"] == "application/json"


def test_batch_post_records_messages_body_headers_and_decoded_write_key(endpoint: SegmentEndpoint) -> None:
    before = time.monotonic()
    post(endpoint, json=batch_body(message(1), message(2)), auth=(WRITE_KEY, ""))
    after = time.monotonic()

    [batch] = endpoint.batches
    assert isinstance(batch, ReceivedBatch)
    assert batch.messages == [message(1), message(2)]
    assert batch.body == batch_body(message(1), message(2))
    assert batch.write_key == WRITE_KEY
    assert batch.headers["Authorization"] == "Basic " + base64.b64encode(b"wkey:").decode()
    assert batch.retry_count == 0
    assert batch.path == "/v1/batch"
    assert batch.status == 200
    assert before <= batch.received_at <= after
    assert endpoint.messages == [message(1), message(2)]
    assert endpoint.message_ids == ["mid-1", "mid-2"]
    assert endpoint.message_count == 2
    assert endpoint.unique_message_ids == 2
    assert endpoint.request_count == 1


def test_x_retry_count_header_becomes_retry_count(endpoint: SegmentEndpoint) -> None:
    post(endpoint, json=batch_body(message()), headers={"X-Retry-Count": "3"})

    assert endpoint.batches[0].retry_count == 3


def test_request_without_authorization_has_write_key_none(endpoint: SegmentEndpoint) -> None:
    post(endpoint, json=batch_body(message()))

    assert endpoint.batches[0].write_key is None


def test_gzip_encoded_body_is_decompressed(endpoint: SegmentEndpoint) -> None:
    raw = gzip.compress(json.dumps(batch_body(message(7))).encode())

    response = post(
        endpoint,
        data=raw,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auth=(WRITE_KEY, ""),
    )

    assert response.status_code == 200
    assert endpoint.messages == [message(7)]
    assert endpoint.batches[0].write_key == WRITE_KEY


@pytest.mark.parametrize(
    ("path", "kind"), [("/v1/track", "track"), ("/v1/identify", "identify"), ("/v1/t", "track"), ("/v1/i", "identify")]
)
def test_single_message_post_is_recorded_as_a_batch_of_one(endpoint: SegmentEndpoint, path: str, kind: str) -> None:
    single = {"userId": "1", "messageId": "single-1", "event": "Plan Chosen", "traits": {"plan": "pro"}}

    response = post(endpoint, path, json=single)

    assert response.status_code == 200
    [batch] = endpoint.batches
    assert batch.path == path
    assert batch.body == single
    assert batch.messages == [{**single, "type": kind}]
    assert endpoint.message_ids == ["single-1"]


def test_malformed_json_is_answered_400_invalid_request_and_not_accepted(endpoint: SegmentEndpoint) -> None:
    response = post(endpoint, data=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert response.json()["message"]
    assert endpoint.batches == []
    assert endpoint.message_count == 0
    assert endpoint.request_count == 1


def test_batch_field_that_is_not_a_list_is_answered_400(endpoint: SegmentEndpoint) -> None:
    response = post(endpoint, json={"batch": {"type": "track"}})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_unknown_path_is_answered_404(endpoint: SegmentEndpoint) -> None:
    response = post(endpoint, "/v2/nothing", json=batch_body(message()))

    assert response.status_code == 404
    assert endpoint.message_count == 0


def test_responses_are_http_1_1_and_keep_the_connection_alive(endpoint: SegmentEndpoint) -> None:
    with requests.Session() as session:
        first = session.post(endpoint.url + "/v1/batch", json=batch_body(message(1)), timeout=5)
        second = session.post(endpoint.url + "/v1/batch", json=batch_body(message(2)), timeout=5)

    for response in (first, second):
        assert response.raw.version == 11
        assert response.headers.get("Connection", "").lower() != "close"
    assert endpoint.message_ids == ["mid-1", "mid-2"]


# -- the real Segment client --------------------------------------------------------------------


def test_segment_client_track_arrives_with_event_properties_and_write_key(
    endpoint: SegmentEndpoint, make_client: Callable[..., Client]
) -> None:
    client = make_client()

    client.track(user_id="1", event="A B", properties={"plan": "pro", "seats": 3})
    client.flush()

    [batch] = endpoint.batches
    [sent] = batch.messages
    assert sent["type"] == "track"
    assert sent["event"] == "A B"
    assert sent["userId"] == "1"
    assert sent["properties"] == {"plan": "pro", "seats": 3}
    assert batch.write_key == WRITE_KEY
    assert batch.body["writeKey"] == WRITE_KEY
    assert "sentAt" in batch.body
    assert batch.headers["User-Agent"].startswith("analytics-python/")
    assert batch.retry_count == 0
    assert endpoint.message_ids == [sent["messageId"]]


def test_segment_client_gzip_batches_are_decoded(endpoint: SegmentEndpoint, make_client: Callable[..., Client]) -> None:
    client = make_client(gzip=True)

    client.track(user_id="1", event="A B", properties={"n": 1})
    client.flush()

    [batch] = endpoint.batches
    assert batch.headers["Content-Encoding"] == "gzip"
    assert batch.messages[0]["properties"] == {"n": 1}


def test_segment_client_retries_a_503_and_the_retry_carries_x_retry_count(
    endpoint: SegmentEndpoint, make_client: Callable[..., Client]
) -> None:
    endpoint.fail_next(1, 503)
    client = make_client()

    client.track(user_id="1", event="A B", properties={"n": 1})
    client.flush()

    [rejected] = endpoint.rejected
    [accepted] = endpoint.batches
    assert rejected.status == 503
    assert rejected.retry_count == 0
    assert accepted.retry_count >= 1
    assert accepted.messages[0]["messageId"] == rejected.messages[0]["messageId"]
    assert endpoint.message_count == 1
    assert endpoint.request_count == 2


def test_429_with_retry_after_is_answered_with_the_header_and_recorded_in_rejected(
    endpoint: SegmentEndpoint,
) -> None:
    endpoint.fail_next(1, 429, headers={"Retry-After": "1"})

    refused = post(endpoint, json=batch_body(message(1)))
    accepted = post(endpoint, json=batch_body(message(1)))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"]
    assert accepted.status_code == 200
    [rejected] = endpoint.rejected
    assert rejected.status == 429
    assert rejected.messages == [message(1)]
    assert endpoint.message_count == 1


def test_segment_client_waits_out_retry_after_before_resending(
    endpoint: SegmentEndpoint, make_client: Callable[..., Client]
) -> None:
    endpoint.fail_next(1, 429, headers={"Retry-After": "1"})
    client = make_client()

    client.track(user_id="1", event="A B")
    client.flush()  # blocks while the client is rate-limited

    [rejected] = endpoint.rejected
    [accepted] = endpoint.batches
    assert accepted.received_at - rejected.received_at >= 0.9
    assert accepted.messages[0]["messageId"] == rejected.messages[0]["messageId"]
    # The client re-queues a Retry-After batch and sends it as a fresh request, so the resend
    # does not necessarily carry X-Retry-Count (2.4.0 sends none); it is not asserted here.


def test_hang_next_makes_a_client_with_a_short_timeout_time_out(endpoint: SegmentEndpoint) -> None:
    endpoint.hang_next(1, 1.5)

    with pytest.raises(requests.Timeout):
        post(endpoint, json=batch_body(message(1)), timeout=0.5)

    # Like a real server, the slow request is still processed once the hang ends.
    assert endpoint.wait_for(1, timeout=10)
    assert endpoint.message_ids == ["mid-1"]
    assert post(endpoint, json=batch_body(message(2))).status_code == 200


def test_segment_client_retries_a_timed_out_request_and_the_late_one_is_a_duplicate(
    endpoint: SegmentEndpoint, make_client: Callable[..., Client]
) -> None:
    endpoint.hang_next(1, 1.5)
    client = make_client(timeout=0.5)

    client.track(user_id="1", event="A B")
    client.flush()

    assert endpoint.wait_for(2, timeout=10)
    assert endpoint.message_count == 2
    assert endpoint.unique_message_ids == 1
    assert sorted(batch.retry_count for batch in endpoint.batches) == [0, 1]


def test_stop_ends_a_hang_early_and_the_request_gets_no_answer(endpoint: SegmentEndpoint) -> None:
    endpoint.hang_next(1, 30)
    outcome: list[BaseException | requests.Response] = []

    def send() -> None:
        try:
            outcome.append(post(endpoint, json=batch_body(message()), timeout=20))
        except requests.RequestException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    deadline = time.monotonic() + 10
    while endpoint.request_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert endpoint.request_count == 1

    started = time.monotonic()
    endpoint.stop()
    assert time.monotonic() - started < 3
    sender.join(10)

    assert not sender.is_alive()
    [result] = outcome
    assert isinstance(result, requests.ConnectionError)
    assert endpoint.message_count == 0


def test_faults_are_consumed_in_fifo_order(endpoint: SegmentEndpoint) -> None:
    endpoint.fail_next(1, 503)
    endpoint.hang_next(1, 0.2)
    endpoint.fail_next(1, 429)
    assert endpoint.pending_faults == 3

    statuses = []
    durations = []
    for n in range(4):
        started = time.monotonic()
        statuses.append(post(endpoint, json=batch_body(message(n))).status_code)
        durations.append(time.monotonic() - started)

    assert statuses == [503, 200, 429, 200]
    assert durations[1] >= 0.2
    assert [batch.status for batch in endpoint.rejected] == [503, 429]
    assert endpoint.message_ids == ["mid-1", "mid-3"]
    assert endpoint.pending_faults == 0


def test_fail_next_sends_the_given_body_and_headers(endpoint: SegmentEndpoint) -> None:
    endpoint.fail_next(2, 500, headers={"X-Test": "yes"}, body="boom")

    responses = [post(endpoint, json=batch_body(message(n))) for n in range(3)]

    assert [r.status_code for r in responses] == [500, 500, 200]
    assert responses[0].text == "boom"
    assert responses[0].headers["X-Test"] == "yes"
    assert len(endpoint.rejected) == 2


def test_fail_next_and_hang_next_reject_bad_arguments(endpoint: SegmentEndpoint) -> None:
    with pytest.raises(ValueError):
        endpoint.fail_next(1, 200)
    with pytest.raises(ValueError):
        endpoint.fail_next(-1)
    with pytest.raises(ValueError):
        endpoint.hang_next(1, -0.5)
    assert endpoint.pending_faults == 0


def test_clear_faults_drops_pending_faults(endpoint: SegmentEndpoint) -> None:
    endpoint.fail_next(3, 503)

    endpoint.clear_faults()

    assert post(endpoint, json=batch_body(message())).status_code == 200


# -- waiting, counting, clearing ----------------------------------------------------------------


def test_wait_for_returns_false_when_the_count_is_not_reached_in_time(endpoint: SegmentEndpoint) -> None:
    started = time.monotonic()

    assert endpoint.wait_for(1, timeout=0.2) is False

    assert 0.15 <= time.monotonic() - started < 2


def test_wait_for_returns_true_once_enough_messages_are_accepted(endpoint: SegmentEndpoint) -> None:
    sender = threading.Timer(0.1, post, args=(endpoint,), kwargs={"json": batch_body(message(1), message(2))})
    sender.start()
    try:
        assert endpoint.wait_for(2, timeout=10) is True
    finally:
        sender.join(10)


def test_wait_for_does_not_count_rejected_messages(endpoint: SegmentEndpoint) -> None:
    endpoint.fail_next(1, 503)

    post(endpoint, json=batch_body(message()))

    assert endpoint.wait_for(1, timeout=0.2) is False
    assert endpoint.request_count == 1


def test_keep_messages_false_keeps_counts_and_unique_ids_but_no_batches() -> None:
    with SegmentEndpoint(keep_messages=False) as ep:
        post(ep, json=batch_body(message(1), message(2)))
        post(ep, json=batch_body(message(2)))  # a retried duplicate

        assert ep.keep_messages is False
        assert ep.batches == []
        assert ep.messages == []
        assert ep.message_count == 3
        assert ep.unique_message_ids == 2
        assert ep.wait_for(3, timeout=1)


def test_clear_forgets_recordings_and_counts(endpoint: SegmentEndpoint) -> None:
    endpoint.fail_next(1, 503)
    post(endpoint, json=batch_body(message(1)))
    post(endpoint, json=batch_body(message(1)))

    endpoint.clear()

    assert endpoint.batches == []
    assert endpoint.rejected == []
    assert endpoint.message_count == 0
    assert endpoint.unique_message_ids == 0
    assert endpoint.request_count == 0
    assert endpoint.wait_for(1, timeout=0.1) is False


# -- lifecycle ----------------------------------------------------------------------------------


def test_stop_then_start_refuses_connections_then_serves_on_the_same_port(endpoint: SegmentEndpoint) -> None:
    url = endpoint.url
    with requests.Session() as session:
        assert session.post(url + "/v1/batch", json=batch_body(message(1)), timeout=5).status_code == 200

        endpoint.stop()
        # Even the kept-alive connection of this session is closed, not served by a stopped endpoint.
        with pytest.raises(requests.ConnectionError):
            session.post(url + "/v1/batch", json=batch_body(message(2)), timeout=5)

        endpoint.start()
        assert endpoint.url == url
        assert session.post(url + "/v1/batch", json=batch_body(message(3)), timeout=5).status_code == 200

    assert endpoint.message_ids == ["mid-1", "mid-3"]


def test_segment_client_delivers_after_an_outage_once_the_endpoint_restarts(
    endpoint: SegmentEndpoint, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    refused = threading.Event()

    class RetryWatcher(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Network error retry" in record.getMessage():
                refused.set()

    watcher = RetryWatcher()
    segment_log = logging.getLogger("segment")
    caplog.set_level(logging.DEBUG, logger="segment")
    segment_log.addHandler(watcher)
    try:
        endpoint.stop()
        client = make_client(max_retries=10)
        client.track(user_id="1", event="A B")
        assert refused.wait(10), "the client never saw the connection refused"
        endpoint.start()

        assert endpoint.wait_for(1, timeout=15)
    finally:
        segment_log.removeHandler(watcher)

    [batch] = endpoint.batches
    assert batch.retry_count >= 1
    assert batch.messages[0]["event"] == "A B"


def test_stop_is_idempotent_and_the_context_manager_stops() -> None:
    with SegmentEndpoint() as ep:
        assert ep.running
        url = ep.url
    assert not ep.running
    ep.stop()
    ep.stop()

    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/v1/batch", json=batch_body(message()), timeout=2)


def test_url_is_unavailable_before_the_first_start() -> None:
    ep = SegmentEndpoint()

    with pytest.raises(RuntimeError):
        _ = ep.url


def test_localhost_binds_127_0_0_1() -> None:
    with SegmentEndpoint(host="localhost") as ep:
        assert ep.url == f"http://127.0.0.1:{ep.port}"
        assert post(ep, json=batch_body(message())).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "localhost", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    SegmentEndpoint(host=host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "10.0.0.1", "192.168.1.10", "8.8.8.8", "::", "example.com", "", "::ffff:10.0.0.1"]
)
def test_non_loopback_hosts_are_rejected(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SegmentEndpoint(host=host)


def test_a_stopped_endpoint_refuses_connections_but_keeps_its_port_from_other_processes() -> None:
    # stop()/start() simulates an outage on one URL: while stopped no other test worker's ephemeral
    # port may land on it (a restart then failed with "Address already in use").
    import socket

    with SegmentEndpoint() as ep:
        ep.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ep.port), timeout=2).close()
        other = socket.socket()
        try:
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", ep.port))
        finally:
            other.close()
        ep.start()
        assert ep.running
    freed = socket.socket()
    try:
        freed.bind(("127.0.0.1", ep.port))  # close() (the with block's end) gives the port back
    finally:
        freed.close()
