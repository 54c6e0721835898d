"""The kit's vendor endpoints: each official SDK delivers to them without retrying, refusals are in the
vendor's shape, and the faults (status, hang, reset, black hole) behave as delivery tests need."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from instrument.testing import VendorEndpoint

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def posthog_endpoint() -> Iterator[VendorEndpoint]:
    with VendorEndpoint("posthog") as endpoint:
        yield endpoint


@pytest.fixture
def mixpanel_endpoint() -> Iterator[VendorEndpoint]:
    with VendorEndpoint("mixpanel") as endpoint:
        yield endpoint


@pytest.fixture
def amplitude_endpoint() -> Iterator[VendorEndpoint]:
    with VendorEndpoint("amplitude") as endpoint:
        yield endpoint


def _post(url: str, body: Any, **headers: str) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url, data=data, headers={"Content-Type": "application/json", **headers}, timeout=10)


# -- the official SDKs ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_posthog_sdk_batches_arrive_once_with_their_uuids(posthog_endpoint: VendorEndpoint, compress: bool) -> None:
    import posthog

    client = posthog.Posthog("phc_test", host=posthog_endpoint.url, gzip=compress, sync_mode=True, max_retries=0)
    client.capture("Order Completed", distinct_id="user-1", properties={"total": 9.5})
    client.capture("Order Refunded", distinct_id="user-1")
    client.shutdown()
    assert posthog_endpoint.wait_for(2, timeout=10)
    items = posthog_endpoint.items
    assert [item.data["event"] for item in items] == ["Order Completed", "Order Refunded"]
    assert items[0].data["properties"]["total"] == 9.5
    assert posthog_endpoint.unique_insert_ids == 2
    assert {request.status for request in posthog_endpoint.requests} == {200}
    assert items[0].request.path == "/batch/"
    assert items[0].request.key == "phc_test"
    assert (items[0].request.headers.get("content-encoding") == "gzip") is compress


def test_mixpanel_sdk_track_engage_and_import_are_accepted_without_retry(mixpanel_endpoint: VendorEndpoint) -> None:
    import mixpanel

    url = mixpanel_endpoint.url
    consumer = mixpanel.Consumer(events_url=f"{url}/track", people_url=f"{url}/engage", import_url=f"{url}/import")
    client = mixpanel.Mixpanel("mp_token", consumer=consumer)
    client.track("user-1", "Order Completed", {"total": 9.5})
    client.people_set("user-1", {"plan": "pro"})
    client.import_data("mp_key", "user-1", "Old Event", time.time() - 86400, api_secret="mp_secret")
    kinds = [item.kind for item in mixpanel_endpoint.items]
    assert kinds == ["track", "engage", "import"]
    assert len(mixpanel_endpoint.requests) == 3
    track, engage, imported = mixpanel_endpoint.items
    assert track.data["properties"]["token"] == "mp_token"
    assert track.insert_id is not None
    assert engage.data["$set"] == {"plan": "pro"}
    assert engage.insert_id is None
    assert imported.request.key == "mp_secret"
    assert imported.request.body["api_key"] == "mp_key"
    assert track.request.body["verbose"] == "1"
    assert track.request.body["ip"] == "0"


def test_mixpanel_buffered_consumer_sends_arrays(mixpanel_endpoint: VendorEndpoint) -> None:
    import mixpanel

    consumer = mixpanel.BufferedConsumer(events_url=f"{mixpanel_endpoint.url}/track", max_size=10)
    client = mixpanel.Mixpanel("mp_token", consumer=consumer)
    for n in range(3):
        client.track(f"user-{n}", "Viewed")
    consumer.flush()
    assert len(mixpanel_endpoint.requests) == 1
    assert mixpanel_endpoint.unique_insert_ids == 3


def test_amplitude_sdk_delivers_to_http_v2_and_batch(amplitude_endpoint: VendorEndpoint) -> None:
    from amplitude import Amplitude, BaseEvent, Config

    for path in ("/2/httpapi", "/batch"):
        client = Amplitude("amp_key", Config(server_url=amplitude_endpoint.url + path, flush_max_retries=1))
        client.track(BaseEvent(event_type="Order Completed", user_id="user-1", event_properties={"total": 9.5}))
        client.shutdown()
    assert amplitude_endpoint.wait_for(2, timeout=10)
    assert [item.request.path for item in amplitude_endpoint.items] == ["/2/httpapi", "/batch"]
    assert len(amplitude_endpoint.requests) == 2
    assert amplitude_endpoint.unique_insert_ids == 2


# -- parsing and refusals, in each vendor's shape ------------------------------------------------


def test_posthog_single_event_paths_take_one_event(posthog_endpoint: VendorEndpoint) -> None:
    event = {"api_key": "phc_test", "event": "Signed Up", "properties": {"distinct_id": "u-1"}}
    for path in ("/capture/", "/i/v0/e/", "/e"):
        answer = _post(posthog_endpoint.url + path, event)
        assert (answer.status_code, answer.json()) == (200, {"status": "Ok"})
    assert [item.request.path for item in posthog_endpoint.items] == ["/capture/", "/i/v0/e/", "/e"]


def test_posthog_gzip_js_query_is_inflated(posthog_endpoint: VendorEndpoint) -> None:
    body = gzip.compress(json.dumps({"token": "phc_test", "event": "E", "distinct_id": "u"}).encode())
    assert _post(posthog_endpoint.url + "/e/?compression=gzip-js", body).status_code == 200
    assert posthog_endpoint.items[0].request.query == {"compression": "gzip-js"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"batch": [{"event": "E", "distinct_id": "u"}]}, 401, "invalid_api_key"),
        ({"api_key": "k", "batch": [{"event": "", "distinct_id": "u"}]}, 400, "invalid_request"),
        ({"api_key": "k", "batch": [{"event": "E"}]}, 400, "invalid_request"),
        ({"api_key": "k", "batch": {}}, 400, "invalid_request"),
    ],
    ids=["no-key", "empty-event", "no-distinct-id", "batch-not-list"],
)
def test_posthog_refusals_name_the_field(
    posthog_endpoint: VendorEndpoint, body: dict[str, Any], status: int, code: str
) -> None:
    answer = _post(posthog_endpoint.url + "/batch/", body)
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert answer.json()["type"] in ("authentication_error", "validation_error")
    assert posthog_endpoint.items == []
    assert posthog_endpoint.requests[0].status == status


def test_mixpanel_json_import_answers_the_import_shape(mixpanel_endpoint: VendorEndpoint) -> None:
    event = {"event": "E", "properties": {"time": 1, "distinct_id": "u", "$insert_id": "i-1"}}
    auth = ("service-account", "secret")
    answer = requests.post(mixpanel_endpoint.url + "/import?strict=1", json=[event, event], auth=auth, timeout=10)
    assert answer.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}
    assert mixpanel_endpoint.items[0].request.key == "service-account"
    assert mixpanel_endpoint.insert_ids == ["i-1", "i-1"]
    assert mixpanel_endpoint.unique_insert_ids == 1


def test_mixpanel_plain_track_answers_1_and_base64_data_is_read(mixpanel_endpoint: VendorEndpoint) -> None:
    import base64

    data = base64.b64encode(json.dumps({"event": "E", "properties": {"token": "t"}}).encode()).decode()
    answer = requests.post(mixpanel_endpoint.url + "/track", data={"data": data}, timeout=10)
    assert (answer.status_code, answer.text) == (200, "1")
    assert mixpanel_endpoint.items[0].data["event"] == "E"


@pytest.mark.parametrize(
    ("path", "data", "auth", "status"),
    [
        ("/track", {"event": "E", "properties": {}}, None, 400),
        ("/import", {"event": "E", "properties": {"time": 1, "distinct_id": "u"}}, None, 401),
        ("/import?strict=1", {"event": "E", "properties": {"time": 1, "distinct_id": "u"}}, ("a", ""), 400),
        ("/engage", {"$token": "t", "$distinct_id": "u"}, None, 400),
        ("/nowhere", {}, None, 404),
    ],
    ids=["track-no-token", "import-no-auth", "strict-import-no-insert-id", "engage-no-operation", "unknown-path"],
)
def test_mixpanel_refusals_are_verbose_errors(
    mixpanel_endpoint: VendorEndpoint, path: str, data: dict[str, Any], auth: tuple[str, str] | None, status: int
) -> None:
    form = {"data": json.dumps(data), "verbose": "1"}
    answer = requests.post(mixpanel_endpoint.url + path, data=form, auth=auth, timeout=10)
    assert answer.status_code == status
    assert answer.json()["status"] == 0
    assert answer.json()["error"]
    assert mixpanel_endpoint.items == []


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([{"user_id": "user-1"}], "events_with_missing_fields"),
        ([{"event_type": "E"}], "events_with_missing_fields"),
        ([{"event_type": "E", "user_id": "u1"}], "events_with_invalid_id_lengths"),
    ],
    ids=["no-event-type", "no-id", "short-id"],
)
def test_amplitude_refuses_the_whole_request_with_indexes(
    amplitude_endpoint: VendorEndpoint, events: list[dict[str, Any]], field: str
) -> None:
    ok = {"event_type": "E", "user_id": "user-1"}
    answer = _post(amplitude_endpoint.url + "/2/httpapi", {"api_key": "k", "events": [ok, *events]})
    assert answer.status_code == 400
    assert answer.json()["code"] == 400
    assert 1 in next(iter(answer.json()[field].values()))
    assert amplitude_endpoint.items == []


def test_amplitude_min_id_length_option_is_honoured(amplitude_endpoint: VendorEndpoint) -> None:
    body = {"api_key": "k", "events": [{"event_type": "E", "device_id": "d1"}], "options": {"min_id_length": 1}}
    answer = _post(amplitude_endpoint.url + "/2/httpapi", body)
    assert answer.status_code == 200
    assert answer.json()["events_ingested"] == 1


def test_amplitude_missing_api_key_names_the_field(amplitude_endpoint: VendorEndpoint) -> None:
    answer = _post(amplitude_endpoint.url + "/batch", {"events": []})
    assert (answer.status_code, answer.json()["missing_field"]) == (400, "api_key")


def test_malformed_json_is_refused_not_dropped(posthog_endpoint: VendorEndpoint) -> None:
    answer = _post(posthog_endpoint.url + "/batch/", b'{"api_key": NaN}')
    assert answer.status_code == 400
    assert "malformed JSON" in answer.json()["detail"]


@pytest.fixture(scope="module")
def recording_endpoints() -> Iterator[dict[str, VendorEndpoint]]:
    """A PostHog and an Amplitude endpoint for the whole module (a property test runs many examples)."""
    with VendorEndpoint("posthog") as posthog, VendorEndpoint("amplitude") as amplitude:
        yield {"posthog": posthog, "amplitude": amplitude}


@settings(max_examples=25, deadline=None)
@given(
    properties=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=6,
        ),
        max_size=5,
    )
)
def test_every_vendor_records_properties_exactly_as_sent(
    recording_endpoints: dict[str, VendorEndpoint], properties: dict[str, Any]
) -> None:
    bodies = {
        "posthog": (
            "/batch/",
            {"api_key": "k", "batch": [{"event": "E", "distinct_id": "u", "properties": properties}]},
        ),
        "amplitude": (
            "/2/httpapi",
            {"api_key": "k", "events": [{"event_type": "E", "user_id": "user-1", "event_properties": properties}]},
        ),
    }
    for vendor, (path, body) in bodies.items():
        endpoint = recording_endpoints[vendor]
        endpoint.clear()  # each example reads only its own item
        assert _post(endpoint.url + path, body).status_code == 200
        [item] = endpoint.items
        data = item.data
        assert data.get("properties", data.get("event_properties")) == properties


# -- faults --------------------------------------------------------------------------------------


def test_fail_next_answers_in_the_vendors_error_shape_then_recovers(amplitude_endpoint: VendorEndpoint) -> None:
    amplitude_endpoint.fail_next(1, 503, headers={"Retry-After": "1"})
    body = {"api_key": "k", "events": [{"event_type": "E", "user_id": "user-1", "insert_id": "i-1"}]}
    failed = _post(amplitude_endpoint.url + "/2/httpapi", body)
    assert failed.status_code == 503
    assert failed.json()["code"] == 503
    assert failed.headers["Retry-After"] == "1"
    assert amplitude_endpoint.items == []
    assert _post(amplitude_endpoint.url + "/2/httpapi", body).status_code == 200
    assert amplitude_endpoint.insert_ids == ["i-1"]
    assert [request.status for request in amplitude_endpoint.requests] == [503, 200]


def test_posthog_sdk_retries_a_failed_batch_and_nothing_is_lost(posthog_endpoint: VendorEndpoint) -> None:
    import posthog

    posthog_endpoint.fail_next(1, 500)
    client = posthog.Posthog("phc_test", host=posthog_endpoint.url, max_retries=2)  # its consumer retries
    client.capture("Order Completed", distinct_id="user-1")
    client.flush()
    client.shutdown()
    assert posthog_endpoint.wait_for(1, timeout=20)
    assert [request.status for request in posthog_endpoint.requests] == [500, 200]


def test_reset_next_aborts_the_connection(posthog_endpoint: VendorEndpoint) -> None:
    posthog_endpoint.reset_next(1)
    event = {"api_key": "k", "event": "E", "distinct_id": "u"}
    with pytest.raises(requests.ConnectionError):
        _post(posthog_endpoint.url + "/e/", event)
    assert posthog_endpoint.items == []
    assert posthog_endpoint.requests[0].status == 0
    assert _post(posthog_endpoint.url + "/e/", event).status_code == 200


def test_black_hole_reads_and_never_answers_until_lifted(posthog_endpoint: VendorEndpoint) -> None:
    posthog_endpoint.black_hole()
    event = {"api_key": "k", "event": "E", "distinct_id": "u"}
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.post(posthog_endpoint.url + "/e/", json=event, timeout=0.5)
    assert time.monotonic() - started >= 0.5
    assert posthog_endpoint.items == []
    assert [r.status for r in posthog_endpoint.requests] == [0]
    posthog_endpoint.black_hole(False)
    assert _post(posthog_endpoint.url + "/e/", event).status_code == 200
    assert len(posthog_endpoint.items) == 1


def test_black_hole_accepts_connections(mixpanel_endpoint: VendorEndpoint) -> None:
    mixpanel_endpoint.black_hole()
    with _black_holed_request(mixpanel_endpoint) as connection:
        connection.settimeout(0.5)
        with pytest.raises(TimeoutError):
            connection.recv(1)


def _black_holed_request(endpoint: VendorEndpoint) -> socket.socket:
    host, port = endpoint.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=5)
    body = b"data=%7B%7D"
    head = f"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    connection.sendall(head.encode() + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + body)
    return connection


def test_a_black_holed_client_that_gives_up_frees_its_handler(mixpanel_endpoint: VendorEndpoint) -> None:
    mixpanel_endpoint.black_hole()
    baseline = threading.active_count()
    connections = [_black_holed_request(mixpanel_endpoint) for _ in range(5)]
    deadline = time.monotonic() + 10
    while len(mixpanel_endpoint.requests) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() >= baseline + 5  # each held request holds its handler
    for connection in connections:
        connection.close()
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= baseline


def test_stop_drops_held_requests_and_is_bounded(mixpanel_endpoint: VendorEndpoint) -> None:
    mixpanel_endpoint.hang_next(1, 30.0)
    outcome: list[BaseException | int] = []

    def send() -> None:
        try:
            data = {"data": json.dumps({"event": "E", "properties": {"token": "t"}})}
            outcome.append(requests.post(mixpanel_endpoint.url + "/track", data=data, timeout=20).status_code)
        except requests.RequestException as error:
            outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.5)  # the request reaches its hang; nothing observable marks it (it is recorded after)
    started = time.monotonic()
    mixpanel_endpoint.stop()
    assert time.monotonic() - started < 6
    sender.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.RequestException)
    assert mixpanel_endpoint.items == []


def test_hang_next_delays_then_accepts(amplitude_endpoint: VendorEndpoint) -> None:
    amplitude_endpoint.hang_next(1, 0.3)
    started = time.monotonic()
    body = {"api_key": "k", "events": [{"event_type": "E", "user_id": "user-1"}]}
    assert _post(amplitude_endpoint.url + "/batch", body).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_stop_then_start_keeps_the_port_and_refuses_meanwhile() -> None:
    endpoint = VendorEndpoint("amplitude")
    with endpoint:
        url = endpoint.url
    with pytest.raises(requests.ConnectionError):
        _post(url + "/batch", {})
    with endpoint:
        assert endpoint.url == url
        body = {"api_key": "k", "events": [{"event_type": "E", "user_id": "user-1"}]}
        assert _post(url + "/batch", body).status_code == 200


def test_wait_for_times_out_bounded(posthog_endpoint: VendorEndpoint) -> None:
    started = time.monotonic()
    assert posthog_endpoint.wait_for(1, timeout=0.2) is False
    assert time.monotonic() - started < 5


def test_clear_forgets_recordings(posthog_endpoint: VendorEndpoint) -> None:
    assert _post(posthog_endpoint.url + "/e/", {"api_key": "k", "event": "E", "distinct_id": "u"}).status_code == 200
    posthog_endpoint.clear()
    assert posthog_endpoint.items == []
    assert posthog_endpoint.requests == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("segment",), {}), (("posthog",), {"host": "10.0.0.1"}), (("posthog",), {"port": 70000})],
    ids=["unknown-vendor", "not-loopback", "bad-port"],
)
def test_bad_construction_is_a_value_error(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        VendorEndpoint(*args, **kwargs)


def test_faults_refuse_bad_arguments(posthog_endpoint: VendorEndpoint) -> None:
    with pytest.raises(ValueError):
        posthog_endpoint.fail_next(1, 200)
    with pytest.raises(ValueError):
        posthog_endpoint.fail_next(-1)
    with pytest.raises(ValueError):
        posthog_endpoint.hang_next(1, -1.0)


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = VendorEndpoint("mixpanel").url
