"""The golden wire references: each official SDK, re-recorded now, still sends what tests/golden holds
(an SDK upgrade that changes its wire fails here), and ``wire_differences`` accepts the SDK's own wire
and names every kind of departure from it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from vendor_wire import INSERT_IDS, VENDORS, Recording, golden, record, wire_differences

pytestmark = pytest.mark.timeout(120)

_RECORDINGS: dict[str, Recording] = {}


def _recording(vendor: str) -> Recording:
    # One SDK run per vendor per session: each test gets its own deep copy of the items.
    if vendor not in _RECORDINGS:
        _RECORDINGS[vendor] = record(vendor)
    return _RECORDINGS[vendor]


def _sent(vendor: str) -> list[dict[str, Any]]:
    return copy.deepcopy(_recording(vendor).data)


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_official_sdk_still_sends_the_golden_wire(vendor: str) -> None:
    # On a difference: review it, then `python tests/vendor_wire.py --regenerate VENDOR`.
    assert _recording(vendor).normalised() == golden(vendor)


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_sdks_own_wire_has_no_differences(vendor: str) -> None:
    assert wire_differences(vendor, _sent(vendor), golden(vendor)) == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_golden_item_with_an_insert_id_has_the_sdks_format(vendor: str) -> None:
    path = INSERT_IDS[vendor].split("/")
    for item in golden(vendor)["items"]:
        node: Any = item["data"]
        for part in path[:-1]:
            node = node.get(part, {})
        if path[-1] in node:
            assert node[path[-1]] in ("<uuid>", "<hex32>")


def _properties(item: dict[str, Any], vendor: str) -> dict[str, Any]:
    key = {"amplitude": "event_properties", "opentelemetry": "attributes"}.get(vendor, "properties")
    return item[key]  # type: ignore[no-any-return]


_MUTATIONS: dict[str, Callable[[str, list[dict[str, Any]]], None]] = {
    "a property value": lambda vendor, items: _properties(items[0], vendor).update(total=99.96),
    "a property type": lambda vendor, items: _properties(items[0], vendor).update(items="3"),
    "an extra property": lambda vendor, items: _properties(items[0], vendor).update(extra=1),
    "a missing property": lambda vendor, items: _properties(items[0], vendor).pop("order_id"),
    "an item": lambda vendor, items: items.pop(),
}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("mutation", sorted(_MUTATIONS))
def test_a_changed_event_is_a_difference(vendor: str, mutation: str) -> None:
    sent = _sent(vendor)
    _MUTATIONS[mutation](vendor, sent)
    assert wire_differences(vendor, sent, golden(vendor)) != []


_ID_FIELDS = {
    "posthog": ("distinct_id", "event"),
    "mixpanel": ("event", "properties/distinct_id"),
    "amplitude": ("user_id", "event_type"),
    "rudderstack": ("userId", "event"),
    "opentelemetry": ("event_name", "attributes/enduser.id"),
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_changed_id_or_event_name_is_named(vendor: str) -> None:
    for path in _ID_FIELDS[vendor]:
        sent = _sent(vendor)
        node = sent[0]
        *parents, key = path.split("/")
        for part in parents:
            node = node[part]
        node[key] = "changed"
        where = path.replace("/", ".")  # the differences name paths with dots
        assert any(where in line for line in wire_differences(vendor, sent, golden(vendor))), path


def _insert_id_holder(vendor: str, item: dict[str, Any]) -> tuple[dict[str, Any], str]:
    *parents, key = INSERT_IDS[vendor].split("/")
    node = item
    for part in parents:
        node = node[part]
    return node, key


@pytest.mark.parametrize("vendor", VENDORS)
def test_insert_ids_must_be_present_and_unique(vendor: str) -> None:
    missing = _sent(vendor)
    holder, key = _insert_id_holder(vendor, missing[0])
    del holder[key]
    shown = INSERT_IDS[vendor].replace("/", ".")
    assert f"item 0: {shown}: missing or not a non-empty string" in wire_differences(vendor, missing, golden(vendor))
    repeated = _sent(vendor)
    holder, key = _insert_id_holder(vendor, repeated[0])
    holder[key] = _insert_id_holder(vendor, repeated[1])[0][key]
    assert f"{shown}: not unique across the items" in wire_differences(vendor, repeated, golden(vendor))


@pytest.mark.parametrize("vendor", VENDORS)
def test_insert_ids_of_another_format_are_a_difference(vendor: str) -> None:
    sent = _sent(vendor)
    holder, key = _insert_id_holder(vendor, sent[0])
    holder[key] = "not-a-uuid"
    assert wire_differences(vendor, sent, golden(vendor)) != []


def test_the_same_instant_spelled_otherwise_is_no_difference() -> None:
    sent = _sent("posthog")
    sent[0]["timestamp"] = "2026-01-02T03:04:05.678Z"
    assert wire_differences("posthog", sent, golden("posthog")) == []
    sent[0]["timestamp"] = datetime(2026, 1, 2, 3, 4, 5, 679000, tzinfo=timezone.utc).isoformat()
    assert wire_differences("posthog", sent, golden("posthog")) == [
        "item 0: timestamp: 1767323045679 != the SDK's 1767323045678"
    ]


def test_mixpanel_time_in_milliseconds_is_the_same_instant() -> None:
    sent = _sent("mixpanel")
    sent[0]["properties"]["time"] = 1767323045678
    assert wire_differences("mixpanel", sent, golden("mixpanel")) == []


def test_the_library_context_is_the_senders_own_but_required() -> None:
    sent = _sent("rudderstack")
    sent[0]["context"]["library"] = {"name": "instrument", "version": "0.9.0"}
    assert wire_differences("rudderstack", sent, golden("rudderstack")) == []
    del sent[0]["context"]["library"]["name"]
    assert wire_differences("rudderstack", sent, golden("rudderstack")) != []


def test_the_sdks_runtime_description_may_be_left_out_but_geoip_not() -> None:
    sent = _sent("posthog")
    for name in ("$python_runtime", "$python_version", "$os", "$os_version", "$os_distro"):
        sent[0]["properties"].pop(name)
    assert wire_differences("posthog", sent, golden("posthog")) == []
    sent[0]["properties"].pop("$geoip_disable")
    assert wire_differences("posthog", sent, golden("posthog")) == [
        "item 0: properties.$geoip_disable: missing (the SDK sends True)"
    ]


def test_the_opentelemetry_reference_is_an_event_record_in_the_active_span() -> None:
    from vendor_wire import OTEL_SPAN_ID, OTEL_TRACE_ID

    items = golden("opentelemetry")["items"]
    assert [item["data"]["event_name"] for item in items][:3] == [
        "Order Completed",
        "Product Viewed",
        "Caf\u00e9 Ordered \u2615",
    ]
    assert {item["data"]["trace_id"] for item in items} == {format(OTEL_TRACE_ID, "032x")}
    assert {item["data"]["span_id"] for item in items} == {format(OTEL_SPAN_ID, "016x")}
    # The logs SDK keeps any value in an attribute: nested maps and lists as they are, None too.
    assert items[0]["data"]["attributes"]["shipping"] == {"method": "express", "cost": 5.5}
    assert items[0]["data"]["attributes"]["coupon"] is None
