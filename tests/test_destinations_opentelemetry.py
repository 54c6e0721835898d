"""OpenTelemetry's wire: each event an OTLP/HTTP JSON log record with eventName and attributes."""

from __future__ import annotations

from vendor_server import send_through

from instrument.destinations import OpenTelemetry
from instrument.destinations._opentelemetry import any_value


def _attributes(record: dict[str, object]) -> dict[str, object]:
    return {a["key"]: a["value"] for a in record["attributes"]}  # type: ignore[attr-defined,index]


def test_each_event_is_a_log_record_with_its_event_name_attributes_and_user() -> None:
    server = send_through(lambda url: OpenTelemetry(host=url, service_name="shop"))
    (body,) = server.json_bodies("/v1/logs")
    (resource_logs,) = body["resourceLogs"]
    assert resource_logs["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "shop"}}]
    (scope_logs,) = resource_logs["scopeLogs"]
    assert scope_logs["scope"]["name"] == "instrument"
    track, identify = scope_logs["logRecords"]
    assert track["eventName"] == "Items Exported"
    assert identify["eventName"] == "identify"
    attributes = _attributes(track)
    assert attributes["count"] == {"intValue": "3"}
    assert attributes["enduser.id"] == {"stringValue": "u1"}
    assert len(attributes["log.record.uid"]["stringValue"]) == 36  # type: ignore[index]
    assert int(track["timeUnixNano"]) > 1_700_000_000 * 10**9
    assert _attributes(identify)["email"] == {"stringValue": "a@example.com"}


def test_values_become_otlp_any_values() -> None:
    assert any_value({"a": [1, 2.5, True, None]}) == {
        "kvlistValue": {
            "values": [
                {
                    "key": "a",
                    "value": {
                        "arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 2.5}, {"boolValue": True}, {}]}
                    },
                }
            ]
        }
    }
