"""The plan export shows the destinations a module declares: which get each event, under which name."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import routed_app
from routed_app import CartViewed, OrderPlaced, Person, ProjectCreated, ReportSaved, SignedUp, start_checkout
from run_instrument import run_instrument

import instrument
from instrument import Consent, analytics_scope, consent_scope
from instrument.plan import plan_of_module, render
from instrument.plan._diff import diff
from instrument.plan._model import plan_of_document
from instrument.testing import AnalyticsAssertionError, VendorEndpoint, VendorItem, capture_events

pytestmark = pytest.mark.timeout(120)
TESTS = Path(__file__).resolve().parent

EXPECTED = {
    "Cart Viewed": [{"name": "amplitude", "event": "Cart Viewed"}],
    "Checkout Started": [{"name": "amplitude", "event": "Checkout Started"}],
    "Order Placed": [{"name": "amplitude", "event": "Order Placed"}],
    "Project Created": [{"name": "posthog", "event": "project_created"}],
    "Refund Issued": [{"name": "amplitude", "event": "Refund Issued"}],
    "Report Saved": [{"name": "mixpanel", "event": "Report Saved"}, {"name": "posthog", "event": "Report Saved"}],
    "Signed Up": [{"name": "mixpanel", "event": "Signed Up"}],
    "identify Person": [{"name": "amplitude"}, {"name": "posthog"}],
}


def _jsonschema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render(plan_of_module("routed_app"), "jsonschema"))
    return loaded


def test_the_jsonschema_export_lists_each_rules_destinations_and_names() -> None:
    events = _jsonschema()["events"]
    assert {label: schema["x-destinations"] for label, schema in events.items()} == EXPECTED
    for schema in events.values():
        jsonschema.Draft7Validator.check_schema(schema)  # the extension keyword keeps it a draft-07 schema


def test_the_exported_routing_is_what_each_destination_gets_on_delivery() -> None:
    routed = {label: schema["x-destinations"] for label, schema in _jsonschema()["events"].items()}
    with capture_events() as events:
        instrument.configure(destinations=routed_app.DESTINATIONS)
        _send_every_event()
    sent = ["Order Placed", "Cart Viewed", "Project Created", "Report Saved", "Signed Up", "Checkout Started"]
    for event in sent:
        exported = {item["name"]: item["event"] for item in routed[event]}
        for destination in ("amplitude", "mixpanel", "posthog"):
            if destination in exported:
                received = events.assert_tracked(event, 1, destination=destination)
                assert received[0].event == exported[destination]
            else:
                with pytest.raises(AnalyticsAssertionError):
                    events.assert_tracked(event, destination=destination)


def _send_every_event() -> None:
    with analytics_scope(user_id="user-1", project_id=7), consent_scope(Consent(granted={"analytics"})):
        instrument.track(OrderPlaced(total=3))
        instrument.track(CartViewed(items=2))
        instrument.track(ProjectCreated(name="p"))
        instrument.track(ReportSaved(pages=4))
        instrument.track(SignedUp(plan="pro"))
        start_checkout()
        instrument.identify(Person(plan="pro"))


def test_the_exported_routing_is_what_each_vendor_endpoint_receives() -> None:
    routed = {label: schema["x-destinations"] for label, schema in _jsonschema()["events"].items()}
    vendors = ("amplitude", "mixpanel", "posthog")
    endpoints = {vendor: VendorEndpoint(vendor) for vendor in vendors}  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack:
        for endpoint in endpoints.values():
            stack.enter_context(endpoint)
        instrument.configure(destinations=routed_app.make_destinations({v: e.url for v, e in endpoints.items()}))
        _send_every_event()
        assert instrument.flush(30)
    for vendor, endpoint in endpoints.items():
        expected = sorted(
            item.get("event", label.removeprefix("identify "))
            for label, items in routed.items()
            for item in items
            if item["name"] == vendor and label != "Refund Issued"  # never sent: no class, no @tracks use
        )
        assert sorted(_event_of(item) for item in endpoint.items) == expected, vendor


def _event_of(item: VendorItem) -> str:
    """The event name a vendor item carries, or the identify's class name for a profile update."""
    name = item.data.get("event_type") or item.data.get("event")
    return "Person" if name in (None, "$identify", "$set") else str(name)


def test_consent_is_shown_per_destination_not_decided_per_event() -> None:
    with capture_events() as events:
        instrument.configure(destinations=routed_app.DESTINATIONS)
        with analytics_scope(user_id="u1"):
            instrument.track(OrderPlaced(total=3))  # no consent bound: amplitude needs "analytics"
    with pytest.raises(AnalyticsAssertionError):
        events.assert_tracked(OrderPlaced, destination="amplitude")
    assert _jsonschema()["events"]["Order Placed"]["x-destinations"] == [{"name": "amplitude", "event": "Order Placed"}]


def test_the_markdown_export_has_a_destinations_section() -> None:
    text = render(plan_of_module("routed_app"), "markdown")
    section = text[text.index("## Destinations") :]
    routing = "events Cart Viewed, Checkout Started, Order Placed, Refund Issued; identifies"
    assert f"| `amplitude` | amplitude | {routing} | analytics | hash |" in section
    assert "| `mixpanel` | mixpanel | events Report Saved, Signed Up; no identifies | none | omit |" in section
    assert "| `posthog` | posthog | scopes project; identifies | none | hash |" in section
    assert "| Project Created | `posthog` as `project_created` |" in section
    assert "| Report Saved | `mixpanel`, `posthog` |" in section
    assert "| identify Person | `amplitude`, `posthog` |" in section


def test_segment_typewriter_and_rudder_exports_carry_no_destinations() -> None:
    plan = plan_of_module("routed_app")
    for fmt in ("segment", "typewriter", "rudder"):
        text = render(plan, fmt)
        assert "x-destinations" not in text
        assert "amplitude" not in text


def test_a_module_without_destinations_exports_no_routing() -> None:
    plan = plan_of_module("calls_app")
    assert plan.destinations == ()
    assert all(rule.destinations is None for rule in plan.rules)
    assert "x-destinations" not in render(plan, "jsonschema")
    assert "## Destinations" not in render(plan, "markdown")


def test_an_exported_routing_reads_back_and_diffs_clean(tmp_path: Path) -> None:
    plan = plan_of_module("routed_app")
    read = plan_of_document(json.loads(render(plan, "jsonschema")), "plan.json")
    assert diff(read, plan) == []
    assert {r.label(): r.destinations for r in read.rules} == {r.label(): r.destinations for r in plan.rules}
    path = tmp_path / "plan.json"
    path.write_text(render(plan, "jsonschema"), encoding="utf-8")
    checked = run_instrument("plan", "check", "routed_app", "--against", str(path), cwd=TESTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A routing change is drift: the committed file no longer says where events go.
    path.write_text(render(plan, "jsonschema").replace('"project_created"', '"Project Created"'), encoding="utf-8")
    drifted = run_instrument("plan", "check", "routed_app", "--against", str(path), cwd=TESTS)
    assert drifted.returncode != 0


def test_porters_committed_plan_stays_byte_identical() -> None:
    checked = run_instrument("plan", "check", "examples.porter.analytics", "--against", "examples/porter/plan.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
