"""The vendors' wire references: fixed Segment-shaped inputs sent through each official SDK to the kit's
loopback endpoints, what arrived normalised, and a comparison of another sender's wire against it.

``record(vendor)`` sends ``INPUTS`` (their values as the Segment wire carries them, see ``as_json``)
through the vendor's SDK (posthog, mixpanel, amplitude-analytics, rudder-sdk-python) and returns what
arrived; ``tests/golden/<vendor>.json`` stores it normalised (``Recording.normalised()``), and
``python tests/vendor_wire.py --regenerate [vendor ...]`` rewrites the files (after an SDK upgrade that
changes its wire: review the diff). ``wire_differences(vendor, sent, golden)`` compares what a sender
(instrument's destination) delivered for the same ``INPUTS`` with the golden items, field by field:

* compared exactly: every field of the golden item (event name, distinct/user id, anonymous/device id,
  properties, traits and their encodings, and the SDK's data defaults such as ``$geoip_disable``),
  except those below; an extra field in the sent item is a difference too;
* compared as instants (the same moment, whatever the spelling of the offset): ``TIMESTAMPS``;
* insert/message ids (``INSERT_IDS``): present in every item, unique across the items, and in the
  golden's format (``<uuid>`` or ``<hex32>``); their values are the sender's own;
* library context (``LIBRARY``): present and a non-empty string; the value names the sender's library;
* vendor-generated, not compared (``VOLATILE``): values the SDK makes up per call or per machine
  (send times, runtime and OS descriptions) are markers in the golden; ``OPTIONAL`` of them may be
  absent from the sent item.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
VENDORS = ("posthog", "mixpanel", "amplitude", "rudderstack", "opentelemetry")
#: The span active while the OpenTelemetry reference is emitted (a sender compared with it emits in the same).
OTEL_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
OTEL_SPAN_ID = 0xB7AD6B7169203331


def _at(second: int) -> datetime:
    return datetime(2026, 1, 2, 3, 4, second, 678000, tzinfo=timezone.utc)


#: The fixed inputs, Segment-shaped (type, userId, anonymousId, event, properties/traits, timestamp).
INPUTS: list[dict[str, Any]] = [
    {
        "type": "track",
        "userId": "user-1001",
        "anonymousId": None,
        "event": "Order Completed",
        "properties": {
            "order_id": "o-1",
            "total": 99.95,
            "items": 3,
            "paid": True,
            "coupon": None,
            "shipping": {"method": "express", "cost": 5.5},
            "skus": ["a-1", "b-2"],
            "placed_at": _at(1),
        },
        "timestamp": _at(5),
    },
    {
        "type": "track",
        "userId": None,
        "anonymousId": "anon-7f3a",
        "event": "Product Viewed",
        "properties": {"product": "Widget", "price": 10},
        "timestamp": _at(6),
    },
    {
        "type": "track",
        "userId": "user-\u00fc-1002",
        "anonymousId": "anon-2b9c",
        "event": "Caf\u00e9 Ordered \u2615",
        "properties": {"note": "na\u00efve \u2014 \u6771\u4eac \U0001f680", "empty": "", "zero": 0, "negative": -1.5},
        "timestamp": _at(7),
    },
    {
        "type": "identify",
        "userId": "user-1001",
        "anonymousId": None,
        "traits": {
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "logins": 12,
            "vip": False,
            "signed_up_at": _at(2),
            "address": {"city": "London"},
            "tags": ["beta"],
        },
        "timestamp": _at(8),
    },
    {
        "type": "identify",
        "userId": None,
        "anonymousId": "anon-7f3a",
        "traits": {"referrer": "newsletter"},
        "timestamp": _at(9),
    },
    {
        "type": "identify",
        "userId": "user-\u00fc-1002",
        "anonymousId": "anon-2b9c",
        "traits": {"name": "Zo\u00eb \u5c71\u7530"},
        "timestamp": _at(10),
    },
]

# Paths are "/"-separated keys into an item ("properties/$lib"): OpenTelemetry attribute keys hold dots.
#: Vendor-generated values and their markers (a marker starting "<" replaces the value).
VOLATILE: dict[str, dict[str, str]] = {
    "posthog": {
        "properties/$lib_version": "<version>",
        "properties/$python_runtime": "<python-runtime>",
        "properties/$python_version": "<python-version>",
        "properties/$os": "<os>",
        "properties/$os_version": "<os-version>",
        "properties/$os_distro": "<os-distro>",
    },
    "mixpanel": {"properties/$lib_version": "<version>"},
    "amplitude": {},
    "rudderstack": {"context/library/version": "<version>", "sentAt": "<now>"},
    "opentelemetry": {"observed_timestamp": "<now>"},
}
#: Vendor-generated values a sender may leave out (the SDK's description of its runtime).
OPTIONAL: dict[str, tuple[str, ...]] = {
    "posthog": (
        "properties/$python_runtime",
        "properties/$python_version",
        "properties/$os",
        "properties/$os_version",
        "properties/$os_distro",
    ),
    "mixpanel": (),
    "amplitude": (),
    "rudderstack": ("sentAt",),
    "opentelemetry": (),
}
#: The library context: present and a non-empty string, the value the sender's own.
LIBRARY: dict[str, tuple[str, ...]] = {
    "posthog": ("properties/$lib", "properties/$lib_version"),
    "mixpanel": ("properties/mp_lib", "properties/$lib_version"),
    "amplitude": ("library",),
    "rudderstack": ("context/library/name", "context/library/version"),
    "opentelemetry": ("scope/name", "scope/version"),
}
#: The deduplication id of each item.
INSERT_IDS: dict[str, str] = {
    "posthog": "uuid",
    "mixpanel": "properties/$insert_id",
    "amplitude": "insert_id",
    "rudderstack": "messageId",
    "opentelemetry": "attributes/log.record.uid",
}
#: Times compared as instants (ISO 8601 strings, epoch seconds or epoch milliseconds).
TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "posthog": ("timestamp",),
    "mixpanel": ("properties/time", "$time"),
    "amplitude": ("time",),
    "rudderstack": ("timestamp", "originalTimestamp"),
    "opentelemetry": ("timestamp",),
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


# -- paths ----------------------------------------------------------------------------------------


def _split(item: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping holding ``path``'s last key, and that key (None when a parent is missing)."""
    node: Any = item
    parts = path.split("/")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), parts[-1]


def _get(item: dict[str, Any], path: str) -> Any:
    parent, key = _split(item, path)
    return None if parent is None else parent.get(key)


def _has(item: dict[str, Any], path: str) -> bool:
    parent, key = _split(item, path)
    return parent is not None and key in parent


def _set(item: dict[str, Any], path: str, value: Any) -> None:
    parent, key = _split(item, path)
    if parent is not None and key in parent:
        parent[key] = value


def _pop(item: dict[str, Any], path: str) -> None:
    parent, key = _split(item, path)
    if parent is not None:
        parent.pop(key, None)


def _id_marker(value: Any) -> str:
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return value  # already a marker (a golden item normalised again)
    if isinstance(value, str) and _UUID.match(value):
        return "<uuid>"
    if isinstance(value, str) and _HEX32.match(value):
        return "<hex32>"
    return "<id>" if isinstance(value, str) and value else "<missing>"


def normalise(vendor: str, item: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of one received item with its vendor-generated values replaced by markers."""
    copy: dict[str, Any] = json.loads(json.dumps(item))
    for path, marker in VOLATILE[vendor].items():
        _set(copy, path, marker)
    if vendor == "amplitude" and isinstance(copy.get("library"), str):
        copy["library"] = re.sub(r"/[^/]+$", "/<version>", copy["library"])
    _set(copy, INSERT_IDS[vendor], _id_marker(_get(copy, INSERT_IDS[vendor])))
    return copy


def _instant(value: Any) -> Any:
    """A time as UTC milliseconds since the epoch (strings parsed as ISO 8601; numbers: seconds,
    milliseconds above 1e11, nanoseconds above 1e14); anything else unchanged."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return round(parsed.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value > 1e14:
            return round(value / 1e6)
        return round(value if value > 1e11 else value * 1000)
    return value


def _comparable(vendor: str, item: dict[str, Any]) -> dict[str, Any]:
    copy = normalise(vendor, item)
    for path in OPTIONAL[vendor]:
        _pop(copy, path)
    for path in LIBRARY[vendor]:
        value = _get(item, path)
        _set(copy, path, "<library>" if isinstance(value, str) and value else value)
    for path in TIMESTAMPS[vendor]:
        if _has(copy, path):
            _set(copy, path, _instant(_get(copy, path)))
    return copy


def _diff(sent: Any, golden: Any, where: str) -> Iterator[str]:
    if isinstance(sent, dict) and isinstance(golden, dict):
        for key in sorted(set(sent) | set(golden)):
            here = f"{where}.{key}" if where else key
            if key not in sent:
                yield f"{here}: missing (the SDK sends {golden[key]!r})"
            elif key not in golden:
                yield f"{here}: not sent by the SDK"
            else:
                yield from _diff(sent[key], golden[key], here)
    elif isinstance(sent, list) and isinstance(golden, list) and len(sent) == len(golden):
        for index, (left, right) in enumerate(zip(sent, golden, strict=True)):
            yield from _diff(left, right, f"{where}[{index}]")
    elif type(sent) is not type(golden) or sent != golden:
        yield f"{where}: {sent!r} != the SDK's {golden!r}"


def wire_differences(vendor: str, sent: Sequence[dict[str, Any]], golden: dict[str, Any]) -> list[str]:
    """Every difference between the items a sender delivered for ``INPUTS`` (raw, as received) and the
    golden recording ``golden`` (a loaded tests/golden/<vendor>.json), as "item N: path: why" lines;
    empty when they match. See the module docstring for what is compared and how."""
    expected = golden["items"]
    problems = [] if len(sent) == len(expected) else [f"{len(sent)} items sent, the SDK sends {len(expected)}"]
    # Items the SDK gives an id (Mixpanel's profile updates have none) must carry one; all unique.
    path = INSERT_IDS[vendor]
    shown = path.replace("/", ".")
    ids = []
    for index, (item, wanted) in enumerate(zip(sent, expected, strict=False)):
        if _has(wanted["data"], path):
            value = _get(item, path)
            ids.append(value)
            if not (isinstance(value, str) and value):
                problems.append(f"item {index}: {shown}: missing or not a non-empty string")
    if len(set(map(str, ids))) != len(ids):
        problems.append(f"{shown}: not unique across the items")
    for index, (item, wanted) in enumerate(zip(sent, expected, strict=False)):
        golden_item = _comparable(vendor, wanted["data"])
        sent_item = _comparable(vendor, item)
        problems += [f"item {index}: {line}" for line in _diff(sent_item, golden_item, "")]
    return problems


# -- recording through the official SDKs ------------------------------------------------------------


def as_json(value: Any) -> Any:
    """``value`` as the Segment wire carries it (what each SDK is given): datetimes as ISO 8601 UTC with
    milliseconds and a ``Z``, as instrument encodes them. (Given datetime objects, Mixpanel's SDK writes
    them naive to the second, and Amplitude's drops the whole properties dict.)"""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dict):
        return {key: as_json(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [as_json(inner) for inner in value]
    return value


def _messages() -> Iterator[dict[str, Any]]:
    for message in INPUTS:
        yield {**message, "properties": as_json(message.get("properties")), "traits": as_json(message.get("traits"))}


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _send_posthog(url: str) -> None:
    import posthog

    client = posthog.Posthog("phc_golden", host=url, sync_mode=True, max_retries=0)
    for message in _messages():
        distinct_id = message["userId"] or message["anonymousId"]
        if message["type"] == "track":
            client.capture(
                message["event"],
                distinct_id=distinct_id,
                properties=message["properties"],
                timestamp=message["timestamp"],
            )
        else:
            client.set(distinct_id=distinct_id, properties=message["traits"], timestamp=message["timestamp"])
    client.shutdown()


def _send_mixpanel(url: str) -> None:
    import mixpanel

    consumer = mixpanel.Consumer(events_url=f"{url}/track", people_url=f"{url}/engage", retry_limit=0)
    client = mixpanel.Mixpanel("mp_golden", consumer=consumer)
    for message in _messages():
        distinct_id = message["userId"] or message["anonymousId"]
        seconds = message["timestamp"].timestamp()
        if message["type"] == "track":
            client.track(distinct_id, message["event"], {**message["properties"], "time": seconds})
        else:
            client.people_set(distinct_id, message["traits"], meta={"$time": seconds})


def _send_amplitude(url: str) -> None:
    from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify

    client = Amplitude("amp_golden", Config(server_url=f"{url}/2/httpapi", flush_queue_size=100))
    for message in _messages():
        ids = {"user_id": message["userId"], "device_id": message["anonymousId"], "time": _ms(message["timestamp"])}
        if message["type"] == "track":
            client.track(BaseEvent(event_type=message["event"], event_properties=message["properties"], **ids))
        else:
            identify = Identify()
            for name, value in message["traits"].items():
                identify.set(name, value)
            client.identify(identify, EventOptions(**ids))
    client.flush()
    client.shutdown()


def _send_rudderstack(url: str) -> None:
    from rudderstack.analytics.client import Client

    client = Client("rudder_golden", host=url, sync_mode=True, max_retries=0)  # no consumer thread: no shutdown()
    for message in _messages():
        ids = {"user_id": message["userId"], "anonymous_id": message["anonymousId"]}
        if message["type"] == "track":
            client.track(
                event=message["event"], properties=message["properties"], timestamp=message["timestamp"], **ids
            )
        else:
            client.identify(traits=message["traits"], timestamp=message["timestamp"], **ids)


def otel_attributes(message: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The reference mapping of a Segment track/identify to an OpenTelemetry event's attributes: the
    properties (traits) as they are (log attributes hold any value: maps, mixed lists, None), then
    ``enduser.id`` (userId), ``enduser.pseudo.id`` (anonymousId) where present and ``log.record.uid``
    (messageId), per the current semantic conventions."""
    attributes = dict(message.get("properties") or message.get("traits") or {})
    if message["userId"] is not None:
        attributes["enduser.id"] = message["userId"]
    if message["anonymousId"] is not None:
        attributes["enduser.pseudo.id"] = message["anonymousId"]
    attributes["log.record.uid"] = message_id
    return attributes


def _plain(value: Any) -> Any:
    """An attribute value as JSON (the SDK keeps sequences as tuples)."""
    if isinstance(value, Mapping):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(inner) for inner in value]
    return value


def _record_opentelemetry() -> Recording:
    """Each input emitted as an event (a log record with ``event_name``) through opentelemetry-sdk's logs
    API to its in-memory exporter, inside a span with OTEL_TRACE_ID/OTEL_SPAN_ID."""
    import uuid

    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "golden"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("golden-sender", "1.0")
    span = NonRecordingSpan(SpanContext(OTEL_TRACE_ID, OTEL_SPAN_ID, is_remote=False, trace_flags=TraceFlags(1)))
    context = trace.set_span_in_context(span)
    for message in _messages():
        logger.emit(
            event_name=message["event"] if message["type"] == "track" else message["type"],
            timestamp=round(message["timestamp"].timestamp() * 1e6) * 1000,
            context=context,
            severity_number=SeverityNumber.INFO,
            attributes=otel_attributes(message, str(uuid.uuid4())),
        )
    provider.shutdown()
    items = []
    resource: dict[str, Any] = {}
    for finished in exporter.get_finished_logs():
        record, scope = finished.log_record, finished.instrumentation_scope
        resource = dict(finished.resource.attributes)
        data = {
            "event_name": record.event_name,
            "timestamp": record.timestamp,
            "observed_timestamp": record.observed_timestamp,
            "severity_number": record.severity_number.value if record.severity_number else None,
            "severity_text": record.severity_text,
            "body": record.body,
            "attributes": _plain(dict(record.attributes or {})),
            "dropped_attributes": finished.dropped_attributes,
            "trace_id": format(record.trace_id or 0, "032x"),
            "span_id": format(record.span_id or 0, "016x"),
            "trace_flags": int(record.trace_flags or 0),
            "scope": {"name": scope.name, "version": scope.version} if scope else None,
        }
        items.append({"kind": "identify" if record.event_name == "identify" else "track", "data": data})
    markers = {"telemetry.sdk.version": "<version>", "service.instance.id": "<uuid>"}
    envelope = {"resource": {key: markers.get(key, value) for key, value in sorted(resource.items())}}
    return Recording("opentelemetry", items, [("in-memory log record exporter", {}, envelope)])


_SENDERS: dict[str, Callable[[str], None]] = {
    "posthog": _send_posthog,
    "mixpanel": _send_mixpanel,
    "amplitude": _send_amplitude,
    "rudderstack": _send_rudderstack,
}


def _envelope(body: Any) -> Any:
    """The request around the items (its keys and fixed values; volatile ones as markers)."""
    if not isinstance(body, dict):
        return {"type": type(body).__name__}
    markers = {"sent_at": "<now>", "sentAt": "<now>", "data": "<items>", "batch": "<items>", "events": "<items>"}
    return {key: markers.get(key, value) for key, value in sorted(body.items())}


@dataclass(frozen=True)
class Recording:
    """What one SDK delivered for ``INPUTS``: the items (kind, data) as received and the requests."""

    vendor: str
    items: list[dict[str, Any]]
    requests: list[tuple[str, dict[str, str], Any]]

    @property
    def data(self) -> list[dict[str, Any]]:
        """The items' data, raw (what ``wire_differences`` takes as ``sent``)."""
        return [item["data"] for item in self.items]

    def normalised(self) -> dict[str, Any]:
        """The golden document: the first request's shape and every item with its markers."""
        path, headers, body = self.requests[0]
        lowered = {name.lower(): value for name, value in headers.items()}
        return {
            "vendor": self.vendor,
            "note": "Recorded by tests/vendor_wire.py from the official SDK; regenerate with --regenerate.",
            "request": {
                "path": path,
                "requests": len(self.requests),
                "content_type": lowered.get("content-type"),
                "content_encoding": lowered.get("content-encoding"),
                "envelope": _envelope(body),
            },
            "items": [{"kind": item["kind"], "data": normalise(self.vendor, item["data"])} for item in self.items],
        }


def record(vendor: str) -> Recording:
    """Send ``INPUTS`` through ``vendor``'s official SDK to a loopback endpoint and return what arrived.

    Raises AssertionError when the SDK's items did not all arrive (bounded wait) or its ids repeat."""
    from instrument.testing import SegmentEndpoint, VendorEndpoint

    if vendor == "opentelemetry":
        return _record_opentelemetry()
    if vendor == "rudderstack":  # the Segment wire: the kit's Segment endpoint
        with SegmentEndpoint() as segment:
            _SENDERS[vendor](segment.url)
            assert segment.wait_for(len(INPUTS), timeout=20), "the SDK's messages did not all arrive"
            items = [{"kind": m["type"], "data": m} for m in segment.messages]
            requests = [(b.path, b.headers, b.body) for b in segment.batches]
    else:
        with VendorEndpoint(vendor) as endpoint:  # type: ignore[arg-type]
            _SENDERS[vendor](endpoint.url)
            assert endpoint.wait_for(len(INPUTS), timeout=20), "the SDK's items did not all arrive"
            items = [{"kind": item.kind, "data": item.data} for item in endpoint.items]
            requests = [(r.path, r.headers, r.body) for r in endpoint.requests]
    ids = [i for item in items if (i := _get(item["data"], INSERT_IDS[vendor])) is not None]
    assert len(set(ids)) == len(ids), f"{vendor}: the SDK's insert ids repeat"
    return Recording(vendor, items, requests)


def golden(vendor: str) -> dict[str, Any]:
    """The stored recording of ``vendor`` (tests/golden/<vendor>.json)."""
    loaded: dict[str, Any] = json.loads((GOLDEN / f"{vendor}.json").read_text(encoding="utf-8"))
    return loaded


def write(vendor: str, recording: dict[str, Any]) -> Path:
    """Store ``recording`` as tests/golden/<vendor>.json (sorted keys, UTF-8 kept readable)."""
    GOLDEN.mkdir(exist_ok=True)
    path = GOLDEN / f"{vendor}.json"
    path.write_text(json.dumps(recording, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str]) -> int:
    """``--regenerate [vendor ...]``: re-record and rewrite the golden files (all vendors by default)."""
    if not argv or argv[0] != "--regenerate":
        print("usage: python tests/vendor_wire.py --regenerate [vendor ...]", file=sys.stderr)
        return 2
    for vendor in argv[1:] or VENDORS:
        print(write(vendor, record(vendor).normalised()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
