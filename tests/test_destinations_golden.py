"""Golden wire: the inputs the official SDKs were recorded with (tests/golden, tests/vendor_wire.py), sent
through instrument's destinations to the kit's loopback endpoints, carry the same events, ids,
properties, traits and timestamps (``wire_differences`` says what is compared and how)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timezone
from typing import Any

import pytest
from vendor_server import vendor_server
from vendor_wire import INPUTS, OTEL_SPAN_ID, OTEL_TRACE_ID, as_json, golden, wire_differences

import instrument
from instrument.destinations import Amplitude, Destination, Mixpanel, OpenTelemetry, PostHog, RudderStack
from instrument.testing import SegmentEndpoint, VendorEndpoint

pytestmark = pytest.mark.timeout(120)


def _messages(*, trace: bool) -> list[dict[str, Any]]:
    """INPUTS as instrument builds messages: ids only when present, timestamps to the millisecond."""
    built = []
    for given in INPUTS:
        message: dict[str, Any] = {"type": given["type"]}
        for key in ("userId", "anonymousId"):
            if given[key] is not None:
                message[key] = given[key]
        if given["type"] == "track":
            message["event"] = given["event"]
            message["properties"] = as_json(given["properties"])
        else:
            message["traits"] = as_json(given["traits"])
        if trace:
            message["context"] = {"traceId": format(OTEL_TRACE_ID, "032x"), "spanId": format(OTEL_SPAN_ID, "016x")}
        moment = given["timestamp"].astimezone(timezone.utc)
        message["timestamp"] = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        message["messageId"] = str(uuid.uuid4())
        built.append(message)
    return built


def _send(destination: Destination, *, trace: bool = False) -> None:
    instrument.configure(destinations=[destination])
    dispatcher = instrument.get_client().dispatcher
    for message in _messages(trace=trace):
        assert dispatcher.put(message)  # already built (as strict mode hands them over)
    assert instrument.flush(20)


VENDORS: dict[str, Callable[[str], Destination]] = {
    "posthog": lambda url: PostHog("phc_golden", host=url),
    "mixpanel": lambda url: Mixpanel("mp_golden", host=url),
    "amplitude": lambda url: Amplitude("amp_golden", host=url),
}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_vendor_gets_from_instrument_what_its_official_sdk_sends(vendor: str) -> None:
    with VendorEndpoint(vendor) as endpoint:  # type: ignore[arg-type]
        _send(VENDORS[vendor](endpoint.url))
        assert endpoint.wait_for(len(INPUTS), timeout=20)
        sent = [item.data for item in endpoint.items]
    assert wire_differences(vendor, sent, golden(vendor)) == []


def test_rudderstack_gets_from_instrument_what_rudder_sdk_python_sends() -> None:
    with SegmentEndpoint() as endpoint:
        _send(RudderStack("rs_golden", host=endpoint.url))
        assert endpoint.wait_for(len(INPUTS), timeout=20)
        sent = list(endpoint.messages)
    assert wire_differences("rudderstack", sent, golden("rudderstack")) == []


def _plain(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as the SDK's log record holds it."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [_plain(v) for v in value["arrayValue"]["values"]]
    if "kvlistValue" in value:
        return {kv["key"]: _plain(kv["value"]) for kv in value["kvlistValue"]["values"]}
    return None


def test_opentelemetry_gets_from_instrument_the_log_records_the_sdk_emits() -> None:
    with vendor_server() as server:
        _send(OpenTelemetry(host=server.url), trace=True)
        assert server.wait_for(lambda s: bool(s.requests))
        bodies = server.json_bodies("/v1/logs")
    sent = []
    for body in bodies:
        scope_logs = body["resourceLogs"][0]["scopeLogs"][0]
        for record in scope_logs["logRecords"]:
            sent.append(
                {
                    "attributes": {a["key"]: _plain(a["value"]) for a in record["attributes"]},
                    "body": _plain(record["body"]) if "body" in record else None,
                    "dropped_attributes": record.get("droppedAttributesCount", 0),
                    "event_name": record["eventName"],
                    "observed_timestamp": int(record["observedTimeUnixNano"]),
                    "scope": scope_logs["scope"],
                    "severity_number": record["severityNumber"],
                    "severity_text": record.get("severityText"),
                    "span_id": record.get("spanId"),
                    "timestamp": int(record["timeUnixNano"]),
                    "trace_flags": record.get("flags", 0),
                    "trace_id": record.get("traceId"),
                }
            )
    assert wire_differences("opentelemetry", sent, golden("opentelemetry")) == []
