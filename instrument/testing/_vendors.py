"""Loopback endpoints that speak PostHog's, Mixpanel's and Amplitude's ingestion APIs, for offline tests.

``VendorEndpoint("posthog" | "mixpanel" | "amplitude")`` parses each request as the vendor documents it
and as its official Python SDK sends it, answers as the vendor answers (the status and body the SDK
checks, so it does not retry), and records every received item with the request it came in. Faults
for delivery tests: error statuses (``fail_next``), slow answers (``hang_next``), connection resets
(``reset_next``) and a black hole that reads requests and never answers (``black_hole``).

What each vendor's wire is here:

* PostHog (capture API): ``POST /batch/`` with ``{"api_key", "batch": [event, ...]}`` (the SDK's path,
  JSON, gzip when the client has ``gzip=True``), and single events to ``/capture/``, ``/i/v0/e/`` and
  ``/e/`` (``{"api_key", "event", "distinct_id", "properties", ...}``, or a ``batch`` there too);
  ``token`` is taken for ``api_key``. An event needs a non-empty ``event`` and a ``distinct_id`` (top
  level or in ``properties``). Answers ``200 {"status": "Ok"}``; a missing key ``401``, a bad event ``400``
  (``{"type", "code", "detail"}``). The insert id is the event's ``uuid``.
* Mixpanel: ``/track``, ``/engage``, ``/groups``, ``/import``. The SDK posts form fields ``data`` (a JSON
  object or array; base64 of it is accepted too), ``verbose=1`` and ``ip=0``; the documented JSON form
  (``Content-Type: application/json``, an array, gzip allowed) is accepted too, and ``verbose``, ``ip``,
  ``strict`` may be query parameters. ``/track`` events need ``event`` and ``properties.token``;
  ``/import`` needs Basic auth and ``properties.time`` and ``properties.distinct_id`` (and, with
  ``strict=1``, ``properties.$insert_id``); ``/engage`` records need ``$token``, ``$distinct_id`` and one
  operation. Answers: ``verbose=1`` -> ``{"error": null, "status": 1}``; ``/import`` as JSON or with
  ``strict=1`` -> ``{"code": 200, "num_records_imported": n, "status": "OK"}``; otherwise ``1``.
  The insert id is ``properties.$insert_id`` (profile updates have none).
* Amplitude (HTTP V2 and Batch): ``POST /2/httpapi`` and ``/batch`` with JSON ``{"api_key", "events",
  "options"}``. An event needs ``event_type`` and a ``user_id`` or ``device_id`` at least
  ``options.min_id_length`` (default 5) characters long; a bad request is refused whole with ``400`` and
  the indexes (``events_with_missing_fields``, ``events_with_invalid_id_lengths``). Answers ``200
  {"code": 200, "events_ingested": n, "payload_size_bytes": b, "server_upload_time": ms}``. The insert
  id is ``insert_id``.

Requests are bounded as the Segment endpoint's are (``_ingest.MAX_REQUEST_BYTES``), smaller than the
vendors' own limits; enough for tests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs

from instrument.testing._endpoint import _auth_user, _base_url, _loopback_address
from instrument.testing._ingest import (
    EndpointServer,
    IngestHandler,
    Refused,
    decode,
    inflate,
    serve_in_thread,
    stop_serving,
)

__all__ = ["Vendor", "VendorEndpoint", "VendorItem", "VendorRequest"]

Vendor = Literal["posthog", "mixpanel", "amplitude"]
_VENDORS: tuple[str, ...] = get_args(Vendor)
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class VendorRequest:
    """One request as received: ``path``, ``query`` (each parameter's last value), ``headers``, the
    decoded ``body`` (the JSON document; for a Mixpanel form, the form fields with ``data`` decoded),
    the API key or token it carried (``key``), the ``status`` answered (0: never answered, black-holed
    or reset) and a ``time.monotonic()`` stamp (``received_at``)."""

    vendor: Vendor
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    key: str | None
    status: int
    received_at: float


@dataclass(frozen=True)
class VendorItem:
    """One received item: an event or a profile update, exactly as the vendor received it (``data``),
    its ``kind`` (PostHog and Amplitude: ``"event"``; Mixpanel: ``"track"``, ``"import"``, ``"engage"``,
    ``"groups"``), its deduplication id (``insert_id``: None where the item has none) and its request."""

    vendor: Vendor
    kind: str
    data: dict[str, Any]
    insert_id: str | None
    request: VendorRequest = field(repr=False)


@dataclass(frozen=True)
class _Parsed:
    """A request's decoded body, its items (kind, data), the key it carried and the 200 answer."""

    body: Any
    items: list[tuple[str, dict[str, Any]]]
    key: str | None
    answer: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class _Fault:
    """One queued fault: wait ``delay`` seconds, then answer ``status`` (200: normally; 0: reset)."""

    status: int
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


def _query(query_string: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(query_string, keep_blank_values=True).items()}


def _json_body(headers: Mapping[str, str], raw: bytes, query: Mapping[str, str]) -> Any:
    encoding = headers.get("content-encoding", "")
    if not encoding and query.get("compression") == "gzip-js":  # posthog-js names it in the query
        encoding = "gzip"
    return decode(inflate(raw, encoding))


def _object(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Refused(400, f"{where}: expected a JSON object")
    return cast("dict[str, Any]", item)


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _content_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


# -- PostHog --------------------------------------------------------------------------------------

_POSTHOG_BATCH = frozenset({"/batch", "/batch/"})
_POSTHOG_SINGLE = frozenset({"/capture", "/capture/", "/i/v0/e", "/i/v0/e/", "/e", "/e/"})


def _posthog(path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes) -> _Parsed:
    if path not in _POSTHOG_BATCH | _POSTHOG_SINGLE:
        raise Refused(404, f"no such endpoint {path!r}", "not_found")
    body = _json_body(headers, raw, query)
    if isinstance(body, list) and path in _POSTHOG_SINGLE:
        events: list[Any] = body
        key = next((e.get("api_key") or e.get("token") for e in body if isinstance(e, dict)), None)
    else:
        document = _object(body, "the body")
        key = document.get("api_key") or document.get("token")
        if path in _POSTHOG_BATCH or "batch" in document:
            batch = document.get("batch")
            if not isinstance(batch, list):
                raise Refused(400, "batch: expected a list of events")
            events = batch
        else:
            events = [document]
    if not _nonempty_str(key):
        raise Refused(401, "api_key: a project API key is required", "invalid_api_key")
    items = []
    for index, event in enumerate(events):
        where = f"batch[{index}]" if len(events) > 1 or path in _POSTHOG_BATCH else "event"
        data = _object(event, where)
        if not _nonempty_str(data.get("event")):
            raise Refused(400, f"{where}: event must be a non-empty string")
        properties = data.get("properties", {})
        if not isinstance(properties, dict):
            raise Refused(400, f"{where}: properties must be an object")
        distinct_id = data.get("distinct_id", properties.get("distinct_id"))
        if distinct_id is None or distinct_id == "":
            raise Refused(400, f"{where}: distinct_id is required")
        items.append(("event", data))
    return _Parsed(body, items, cast("str", key), b'{"status": "Ok"}')


def _posthog_error(refused: Refused) -> bytes:
    kind = "authentication_error" if refused.status == 401 else "validation_error"
    kind = "server_error" if refused.status >= 500 else kind
    return json.dumps({"type": kind, "code": refused.code, "detail": refused.reason}).encode()


# -- Mixpanel -------------------------------------------------------------------------------------

_MIXPANEL_KINDS = {"/track": "track", "/engage": "engage", "/groups": "groups", "/import": "import"}
_ENGAGE_OPERATIONS = frozenset({"$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete"})


def _mixpanel_data(value: str) -> Any:
    text = value.strip()
    if text[:1] not in ("{", "["):  # the older clients base64 the JSON
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(400, "data: neither JSON nor base64 of JSON") from None
    return decode(text.encode("utf-8"))


def _mixpanel_body(headers: Mapping[str, str], raw: bytes, query: dict[str, str]) -> tuple[Any, Any, bool]:
    """(the body as recorded, the data, whether it came as JSON)."""
    content_type = _content_type(headers)
    if content_type == "application/json":
        data = _json_body(headers, raw, query)
        return data, data, True
    if content_type not in (_FORM, ""):
        raise Refused(415, f"Content-Type must be {_FORM} or application/json, got {content_type!r}")
    try:
        form = _query(inflate(raw, headers.get("content-encoding", "")).decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8") from None
    if "data" not in form:
        raise Refused(400, "data: the form field is required")
    data = _mixpanel_data(form["data"])
    return {**form, "data": data}, data, False


def _mixpanel_item(kind: str, data: dict[str, Any], where: str, strict: bool) -> None:
    if kind in ("track", "import"):
        if not _nonempty_str(data.get("event")):
            raise Refused(400, f"{where}: event must be a non-empty string")
        properties = data.get("properties")
        if not isinstance(properties, dict):
            raise Refused(400, f"{where}: properties must be an object")
        required = ["token"] if kind == "track" else ["time", "distinct_id"] + (["$insert_id"] if strict else [])
        for name in required:
            if properties.get(name) in (None, ""):
                raise Refused(400, f"{where}: properties.{name} is required")
    else:
        identity = "$distinct_id" if kind == "engage" else "$group_id"
        for name in ("$token", identity):
            if data.get(name) in (None, ""):
                raise Refused(400, f"{where}: {name} is required")
        if kind == "engage" and not _ENGAGE_OPERATIONS & data.keys():
            raise Refused(400, f"{where}: a profile update needs one operation ($set, $unset, ...)")


def _mixpanel(path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes) -> _Parsed:
    kind = _MIXPANEL_KINDS.get(path.rstrip("/") or "/")
    if kind is None:
        raise Refused(404, f"no such endpoint {path!r}", "not_found")
    body, data, as_json = _mixpanel_body(headers, raw, query)
    records = data if isinstance(data, list) else [data]
    params = {**query, **({} if as_json else {k: v for k, v in body.items() if k != "data"})}
    strict = params.get("strict") == "1"
    key = _auth_user(headers.get("authorization"))
    if kind == "import" and key is None:
        raise Refused(401, "/import needs Basic authentication (a service account or the API secret)", "unauthorized")
    items = []
    for index, record in enumerate(records):
        where = f"data[{index}]" if isinstance(data, list) else "data"
        item = _object(record, where)
        _mixpanel_item(kind, item, where, strict)
        if key is None:
            properties = item.get("properties")
            token = properties.get("token") if isinstance(properties, dict) else item.get("$token")
            key = token if isinstance(token, str) else None
        items.append((kind, item))
    if params.get("verbose") == "1":
        return _Parsed(body, items, key, b'{"error": null, "status": 1}')
    if kind == "import" and (as_json or strict):
        answer = {"code": 200, "num_records_imported": len(items), "status": "OK"}
        return _Parsed(body, items, key, json.dumps(answer).encode())
    return _Parsed(body, items, key, b"1", "text/plain")


def _mixpanel_error(refused: Refused) -> bytes:
    return json.dumps({"error": refused.reason, "status": 0}).encode()


# -- Amplitude ------------------------------------------------------------------------------------

_AMPLITUDE_PATHS = frozenset({"/2/httpapi", "/batch"})
_DEFAULT_MIN_ID_LENGTH = 5


class _AmplitudeRefused(Refused):
    """A 400 with Amplitude's per-field detail (``missing_field``, ``events_with_...``)."""

    def __init__(self, reason: str, detail: dict[str, Any]) -> None:
        super().__init__(400, reason)
        self.detail = detail


def _amplitude(path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes) -> _Parsed:
    if path.rstrip("/") not in _AMPLITUDE_PATHS:
        raise Refused(404, f"no such endpoint {path!r}", "not_found")
    content_type = _content_type(headers)
    if content_type not in ("application/json", ""):
        raise Refused(415, f"Content-Type must be application/json, got {content_type!r}")
    document = _object(_json_body(headers, raw, query), "the body")
    for name in ("api_key", "events"):
        if name not in document:
            raise _AmplitudeRefused("Request missing required field", {"missing_field": name})
    key, events = document["api_key"], document["events"]
    if not _nonempty_str(key):
        raise _AmplitudeRefused("Invalid API key", {})
    if not isinstance(events, list):
        raise _AmplitudeRefused("events: expected a list", {"events_with_invalid_fields": {}})
    options = document.get("options") or {}
    min_length = options.get("min_id_length", _DEFAULT_MIN_ID_LENGTH) if isinstance(options, dict) else 0
    missing: dict[str, list[int]] = {}
    short: dict[str, list[int]] = {}
    items = []
    for index, event in enumerate(events):
        data = _object(event, f"events[{index}]")
        if not _nonempty_str(data.get("event_type")):
            missing.setdefault("event_type", []).append(index)
        ids = {name: data.get(name) for name in ("user_id", "device_id") if data.get(name) not in (None, "")}
        if not ids:
            missing.setdefault("user_id or device_id", []).append(index)
        for name, value in ids.items():
            if not isinstance(value, str) or len(value) < min_length:
                short.setdefault(name, []).append(index)
        items.append(("event", data))
    if missing:
        raise _AmplitudeRefused("Request missing required field", {"events_with_missing_fields": missing})
    if short:
        detail = {"events_with_invalid_id_lengths": short}
        raise _AmplitudeRefused("Invalid id length for user_id or device_id", detail)
    answer = {
        "code": 200,
        "events_ingested": len(items),
        "payload_size_bytes": len(raw),
        "server_upload_time": int(time.time() * 1000),
    }
    return _Parsed(document, items, key, json.dumps(answer).encode())


def _amplitude_error(refused: Refused) -> bytes:
    detail = refused.detail if isinstance(refused, _AmplitudeRefused) else {}
    return json.dumps({"code": refused.status, "error": refused.reason, **detail}).encode()


_PARSERS: dict[str, Callable[[str, dict[str, str], Mapping[str, str], bytes], _Parsed]] = {
    "posthog": _posthog,
    "mixpanel": _mixpanel,
    "amplitude": _amplitude,
}
_ERRORS: dict[str, Callable[[Refused], bytes]] = {
    "posthog": _posthog_error,
    "mixpanel": _mixpanel_error,
    "amplitude": _amplitude_error,
}
_INSERT_IDS: dict[str, Callable[[dict[str, Any]], object]] = {
    "posthog": lambda data: data.get("uuid"),
    "mixpanel": lambda data: (data.get("properties") or {}).get("$insert_id"),
    "amplitude": lambda data: data.get("insert_id"),
}


# -- the server -----------------------------------------------------------------------------------


class _Handler(IngestHandler):
    """Hands one vendor request to the endpoint's parser, applying its queued faults."""

    server: EndpointServer[VendorEndpoint]
    server_version = "VendorEndpoint/1"

    def refuse(self, refused: Refused) -> None:
        """Answer a refusal in the vendor's error shape."""
        self.answer(refused.status, _ERRORS[self.server.endpoint.vendor](refused))

    def post(self, path: str) -> None:
        """Parse, record and answer one request (or apply the next fault)."""
        received_at = time.monotonic()
        endpoint = self.server.endpoint
        raw = self.read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = _query(self.path.partition("?")[2])
        fault = endpoint._next_fault()
        if fault is not None and fault.delay > 0 and self._hold(fault.delay):
            return
        try:
            parsed: _Parsed | None = _PARSERS[endpoint.vendor](path, query, headers, raw)
            refused = None
        except Refused as error:
            parsed, refused = None, error
        if fault is not None and fault.status not in (0, 200):
            status = fault.status  # the fault wins over a refusal: the client sees what the test asked for
        elif (fault is not None and fault.status == 0) or endpoint._black_hole.is_set():
            status = 0
        else:
            status = 200 if refused is None else refused.status
        accepted = parsed.items if parsed is not None and status == 200 else []
        body, key = (parsed.body, parsed.key) if parsed is not None else (None, None)
        endpoint._record(
            VendorRequest(endpoint.vendor, path, query, dict(headers), body, key, status, received_at), accepted
        )
        if fault is not None and fault.status == 0:
            self._reset()
        elif status == 0:
            self._hold(None)
        elif fault is not None and fault.status != 200:
            answer = _ERRORS[endpoint.vendor](Refused(status, "injected failure", "injected_failure"))
            body_bytes = fault.body.encode() if fault.body is not None else answer
            self.answer(status, body_bytes, headers=fault.headers)
        elif refused is not None:
            raise refused
        else:
            assert parsed is not None
            self.answer(200, parsed.answer, parsed.content_type)

    def _hold(self, seconds: float | None) -> bool:
        """Wait (the black hole: until it is lifted); True (the connection dropped) if stopped or black."""
        endpoint = self.server.endpoint
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.server.stopping.is_set():
            if seconds is None and not endpoint._black_hole.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if seconds is None and self._client_gone(0.05):
                break  # a black-holed client that gave up: free this thread (it would hold on otherwise)
            if seconds is not None:
                self.server.stopping.wait(0.05)
        self.close_connection = True  # never answered: the client sees its own timeout, or EOF
        return True

    def _client_gone(self, wait: float) -> bool:
        """Whether the client closed its side (EOF readable within ``wait`` seconds)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], wait)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) instead of answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.wfile.close()
            self.rfile.close()
            self.connection.close()


class VendorEndpoint:
    """A loopback PostHog, Mixpanel or Amplitude ingestion API that records what it receives.

    Use as a context manager (or ``start()``/``stop()``); ``url`` is the SDK's host (PostHog ``host=``,
    Amplitude ``server_url=url + "/2/httpapi"``, Mixpanel ``api_host`` or ``events_url=url + "/track"``).
    Only loopback hosts are accepted (ValueError otherwise), and ``vendor`` must be one of ``Vendor``.
    The port chosen on the first start is kept, so ``stop()`` then ``start()`` is an outage and a
    recovery on the same URL.
    """

    def __init__(self, vendor: Vendor, host: str = "127.0.0.1", port: int = 0) -> None:
        if vendor not in _VENDORS:
            raise ValueError(f"vendor must be one of {', '.join(_VENDORS)}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.vendor: Vendor = vendor
        self._host, self._family = _loopback_address(host)
        self._port = port
        self._cond = threading.Condition(threading.Lock())
        self._items: list[VendorItem] = []
        self._requests: list[VendorRequest] = []
        self._faults: deque[_Fault] = deque()
        self._black_hole = threading.Event()
        self._state_lock = threading.Lock()
        self._server: EndpointServer[VendorEndpoint] | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind (the same port as before, if there was a before) and serve in a daemon thread."""
        with self._state_lock:
            if self._server is None:
                server = EndpointServer((self._host, self._port), _Handler, self, self._family)
                self._port = int(server.server_address[1])
                self._thread = serve_in_thread(server, f"{self.vendor}-endpoint-{self._port}")
                self._server = server

    def stop(self) -> None:
        """Stop serving; held (black-holed, hanging) requests are dropped unanswered. Idempotent."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is not None:
                stop_serving(server, thread)

    def __enter__(self) -> VendorEndpoint:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT``; RuntimeError before the first start()."""
        return _base_url(self._host, self._family, self._port)

    # -- recordings --------------------------------------------------------------------------------

    @property
    def items(self) -> list[VendorItem]:
        """Every accepted item (its request answered 200) in arrival order (a copy)."""
        with self._cond:
            return list(self._items)

    @property
    def requests(self) -> list[VendorRequest]:
        """Every request that was read, failed and refused ones included, in arrival order (a copy)."""
        with self._cond:
            return list(self._requests)

    @property
    def insert_ids(self) -> list[str]:
        """The accepted items' insert ids in arrival order, duplicates included (items without one skipped)."""
        return [item.insert_id for item in self.items if item.insert_id is not None]

    @property
    def unique_insert_ids(self) -> int:
        """How many distinct insert ids were accepted (retried duplicates count once)."""
        return len(set(self.insert_ids))

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` items were accepted; False if ``timeout`` seconds ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._items) >= count, timeout=max(timeout, 0.0))

    def clear(self) -> None:
        """Forget every recording (faults and the black hole are kept)."""
        with self._cond:
            self._items.clear()
            self._requests.clear()

    # -- faults ------------------------------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 500, headers: Mapping[str, str] | None = None, body: str | None = None
    ) -> None:
        """Answer the next ``n`` requests with ``status`` (4xx/5xx) in the vendor's error shape (or
        ``body``), with ``headers`` (e.g. Retry-After); their items are not accepted. ValueError on a
        negative ``n`` or a status outside 400..599."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be a 4xx or 5xx code, got {status}")
        self._queue(n, _Fault(status, headers=tuple((headers or {}).items()), body=body))

    def hang_next(self, n: int, seconds: float) -> None:
        """Hold the next ``n`` requests ``seconds`` before handling them normally (dropped if stopped)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._queue(n, _Fault(200, delay=seconds))

    def reset_next(self, n: int) -> None:
        """Read the next ``n`` requests, record them (``status`` 0), then abort their connections with a TCP
        reset instead of answering; their items are not accepted."""
        self._queue(n, _Fault(0))

    def black_hole(self, on: bool = True) -> None:
        """While on: read every request and record it (``status`` 0, its items not accepted), never answer;
        the connection is held until the client gives up, the hole is lifted (then closed unanswered) or
        stop()."""
        if on:
            self._black_hole.set()
        else:
            self._black_hole.clear()

    def _queue(self, n: int, fault: _Fault) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        with self._cond:
            self._faults.extend([fault] * n)

    # -- called by the handler ---------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._cond:
            return self._faults.popleft() if self._faults else None

    def _record(self, request: VendorRequest, items: list[tuple[str, dict[str, Any]]]) -> None:
        insert_id = _INSERT_IDS[self.vendor]
        received = []
        for kind, data in items:
            value = insert_id(data)
            received.append(VendorItem(self.vendor, kind, data, value if isinstance(value, str) else None, request))
        with self._cond:
            self._requests.append(request)
            self._items.extend(received)
            self._cond.notify_all()
