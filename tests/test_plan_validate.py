"""Messages against the plan: RudderStack's violation names, with the field as a JSON pointer."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import jsonschema
import pytest
from calls_app import sent_messages

from instrument.plan import Checker, Plan, PlanError, Rule, plan_of_module, render
from instrument.plan._model import plan_of_document
from instrument.plan._validate import (
    ADDITIONAL_PROPERTIES,
    DATATYPE_MISMATCH,
    FORMAT_CHECKER,
    FORMATS,
    REQUIRED_MISSING,
    UNKNOWN_VIOLATION,
    UNPLANNED,
)

PORTER = "examples.porter.analytics"
Messages = list[dict[str, Any]]


def _rule_key(message: dict[str, Any]) -> tuple[str, str]:
    keys = {"identify": ("IDENTIFY", "UserTraits"), "group": ("GROUP", "ProjectMembership")}
    return ("TRACK", message["event"]) if message["type"] == "track" else keys[message["type"]]


def test_every_payload_the_porter_example_sends_validates_against_its_rule(porter_messages: Messages) -> None:
    rules = {
        (r["type"], r["key"]): r["jsonSchema"] for r in json.loads(render(plan_of_module(PORTER), "segment"))["rules"]
    }
    assert len(porter_messages) >= 10
    assert {m["type"] for m in porter_messages} == {"track", "identify", "group"}
    checker = Checker(plan_of_module(PORTER))
    for message in porter_messages:
        # The exported rule, with the jsonschema library directly; and the collector's checker.
        jsonschema.validate(message, rules[_rule_key(message)], cls=jsonschema.Draft7Validator)
        assert checker.check(message) == []


def test_dropping_any_required_property_of_any_payload_is_required_missing_at_that_property(
    porter_messages: Messages,
) -> None:
    plan = plan_of_module(PORTER)
    checker = Checker(plan)
    dropped = 0
    for message in porter_messages:
        rule = plan.find(*_rule_key(message))  # type: ignore[arg-type]
        assert rule is not None
        for key in rule.body["required"]:
            broken = copy.deepcopy(message)
            del broken[rule.body_key][key]
            violations = checker.check(broken)
            assert [(v.kind, v.field) for v in violations] == [(REQUIRED_MISSING, f"/{rule.body_key}/{key}")]
            dropped += 1
    assert dropped >= 30


def _success(messages: Messages) -> dict[str, Any]:
    [message] = [m for m in messages if m.get("event") == "Cluster Provisioning Success"]
    return message


def test_a_wrong_type_is_a_datatype_mismatch_without_the_value(porter_messages: Messages) -> None:
    message = _success(porter_messages)
    message["properties"]["infra_id"] = "secret-text"
    [violation] = Checker(plan_of_module(PORTER)).check(message)
    assert (violation.kind, violation.field) == (DATATYPE_MISMATCH, "/properties/infra_id")
    assert violation.reason == "expected type 'integer', got string"


def test_an_extra_property_is_additional_properties_naming_it(porter_messages: Messages) -> None:
    message = _success(porter_messages)
    message["properties"]["email"] = "ada@example.com"
    assert [v.as_dict() for v in Checker(plan_of_module(PORTER)).check(message)] == [
        {"type": ADDITIONAL_PROPERTIES, "field": "/properties/email", "reason": "property 'email' is not planned"}
    ]


def test_an_event_outside_the_plan_is_unplanned(porter_messages: Messages) -> None:
    message = {**_success(porter_messages), "event": "Cluster Renamed"}
    [violation] = Checker(plan_of_module(PORTER)).check(message)
    assert (violation.kind, violation.field) == (UNPLANNED, "/event")


def test_other_message_types_are_good_when_the_plan_has_no_rules_for_them() -> None:
    assert Checker(plan_of_module(PORTER)).check({"type": "page", "userId": "1", "name": "Home"}) == []


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": 5}, "/properties/properties/properties/n/type"),
        ({"enum": "x"}, "/properties/properties/properties/n/enum"),
    ],
)
def test_a_plan_with_an_invalid_schema_is_a_plan_error_naming_the_rule(schema: dict[str, Any], pointer: str) -> None:
    body = {"type": "object", "properties": {"n": schema}}
    document = {"rules": [{"key": "Order Placed", "type": "TRACK", "jsonSchema": {"properties": {"properties": body}}}]}
    with pytest.raises(PlanError, match=f"plan.json: rule 'Order Placed': not a valid draft-07 schema at {pointer}"):
        Checker(plan_of_document(document, "plan.json"))


def _plan(*rules: tuple[str, str, dict[str, Any]]) -> Plan:
    return Plan(tuple(Rule(cast("Any", kind), key, body) for kind, key, body in rules), "test plan")


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


FORMATTED = _plan(
    (
        "TRACK",
        "Order Completed",
        _object(
            ["completed_at"],
            completed_at={"type": "string", "format": "date-time"},
            day={"type": "string", "format": "date"},
            at={"type": "string", "format": "time"},
            order_id={"type": "string", "format": "uuid"},
            email={"type": "string", "format": "email"},
        ),
    )
)


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("completed_at", "2026-12-06T04:13:22Z", "yesterday"),
        ("completed_at", "2026-12-06T04:13:22.5+01:00", "2026-12-06 04:13"),
        ("day", "2026-12-06", "06/12/2026"),
        ("at", "04:13:22Z", "4 pm"),
        ("at", "04:13:22.250", "25:00:00"),  # a naive time, as the encoder sends it, has no offset
        ("order_id", "0b9c6a3e-5d0a-4a8e-9d7e-2f1f0c9b1a22", "order-7"),
        ("email", "ada@example.com", "ada at example"),
    ],
)
def test_formats_are_enforced_as_unknown_violations_without_the_value(field: str, good: str, bad: str) -> None:
    checker = Checker(FORMATTED)
    base = {"completed_at": "2026-12-06T04:13:22Z"}
    message = {"type": "track", "event": "Order Completed", "userId": "1"}
    assert checker.check({**message, "properties": {**base, field: good}}) == []
    [violation] = checker.check({**message, "properties": {**base, field: bad}})
    assert (violation.kind, violation.field) == (UNKNOWN_VIOLATION, f"/properties/{field}")
    assert bad not in violation.reason
    assert "format" in violation.reason


def test_every_format_the_checker_names_has_a_checker_installed() -> None:
    assert set(FORMATS) <= set(FORMAT_CHECKER.checkers)


@pytest.mark.parametrize(
    ("schema", "value"), [({"enum": ["a", "b"]}, "c"), ({"minimum": 1}, 0), ({"pattern": "^[a-z]+$"}, "A1")]
)
def test_other_refusals_are_unknown_violations(schema: dict[str, Any], value: Any) -> None:
    checker = Checker(_plan(("TRACK", "E", _object(["v"], v=schema))))
    [violation] = checker.check({"type": "track", "event": "E", "properties": {"v": value}})
    assert (violation.kind, violation.field) == (UNKNOWN_VIOLATION, "/properties/v")


CALLS = _plan(
    ("PAGE", "Checkout", _object(["step"], step={"type": "integer"})),
    ("PAGE", "", _object(["path"], path={"type": "string"})),
    ("SCREEN", "Home", _object([], tab={"type": "string"})),
    ("GROUP", "", _object(["plan"], plan={"type": "string", "enum": ["free", "pro"]})),
    ("ALIAS", "", _object(["previousId", "userId"], previousId={"type": "string"}, userId={"type": "string"})),
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "page", "name": "Checkout", "properties": {"step": 2}}, []),
        ({"type": "page", "name": "Checkout", "properties": {"step": "2"}}, [(DATATYPE_MISMATCH, "/properties/step")]),
        ({"type": "page", "name": "Docs", "properties": {"path": "/docs"}}, []),  # the unkeyed page rule
        ({"type": "page", "properties": {}}, [(REQUIRED_MISSING, "/properties/path")]),
        ({"type": "screen", "name": "Home", "properties": {"tab": 3}}, [(DATATYPE_MISMATCH, "/properties/tab")]),
        ({"type": "screen", "name": "Settings", "properties": {}}, [(UNPLANNED, "/name")]),
        ({"type": "group", "groupId": "g", "traits": {"plan": "pro"}}, []),
        ({"type": "group", "groupId": "g", "traits": {"plan": "gold"}}, [(UNKNOWN_VIOLATION, "/traits/plan")]),
        ({"type": "group", "groupId": "g", "traits": {}}, [(REQUIRED_MISSING, "/traits/plan")]),
        ({"type": "alias", "previousId": "a", "userId": "b"}, []),
        ({"type": "alias", "userId": "b"}, [(REQUIRED_MISSING, "/previousId")]),
    ],
)
def test_page_screen_group_and_alias_calls_are_checked_against_their_rules(
    message: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(v.kind, v.field) for v in Checker(CALLS).check(message)] == expected


def test_a_plan_without_rules_for_a_call_type_leaves_those_calls_good() -> None:
    checker = Checker(_plan(("PAGE", "", _object(["path"], path={"type": "string"}))))
    assert checker.check({"type": "group", "groupId": "g", "traits": {"anything": 1}}) == []
    assert checker.check({"type": "alias", "userId": "b"}) == []


def test_a_value_of_the_wrong_type_is_reported_once_as_a_datatype_mismatch() -> None:
    checker = Checker(_plan(("TRACK", "E", _object(["v"], v={"type": "string", "enum": ["a"], "format": "email"}))))
    violations = checker.check({"type": "track", "event": "E", "properties": {"v": 3}})
    assert [(v.kind, v.field) for v in violations] == [(DATATYPE_MISMATCH, "/properties/v")]


# -- every call ---------------------------------------------------------------------------------------


def test_the_collector_checks_each_of_the_six_calls_against_its_rule() -> None:
    checker = Checker(plan_of_module("calls_app"))
    messages = {m["type"]: m for m in sent_messages()}
    assert sorted(messages) == ["alias", "group", "identify", "page", "screen", "track"]
    for message in messages.values():
        assert checker.check(message) == [], message["type"]
    broken = copy.deepcopy(messages)
    broken["track"]["properties"]["seats"] = "3"
    del broken["identify"]["traits"]["email"]
    broken["group"]["traits"]["role"] = "owner"
    broken["page"]["properties"]["plan"] = 3
    del broken["screen"]["properties"]["tab"]
    del broken["alias"]["previousId"]
    found = {kind: [(v.kind, v.field) for v in checker.check(m)] for kind, m in broken.items()}
    assert found == {
        "track": [(DATATYPE_MISMATCH, "/properties/seats")],
        "identify": [(REQUIRED_MISSING, "/traits/email")],
        "group": [(UNKNOWN_VIOLATION, "/traits/role")],
        "page": [(DATATYPE_MISMATCH, "/properties/plan")],
        "screen": [(REQUIRED_MISSING, "/properties/tab")],
        "alias": [(REQUIRED_MISSING, "/previousId")],
    }


def test_a_page_whose_name_the_plan_lacks_is_unplanned() -> None:
    page = next(m for m in sent_messages() if m["type"] == "page")
    [violation] = Checker(plan_of_module("calls_app")).check({**page, "name": "Careers"})
    assert (violation.kind, violation.field) == (UNPLANNED, "/name")
