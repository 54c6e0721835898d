"""Messages against the plan: RudderStack's violation names, with the field as a JSON pointer."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from instrument.plan import Checker, PlanError, plan_of_module, render
from instrument.plan._model import plan_of_document
from instrument.plan._validate import (
    ADDITIONAL_PROPERTIES,
    DATATYPE_MISMATCH,
    REQUIRED_MISSING,
    UNPLANNED,
)

PORTER = "examples.porter.analytics"
Messages = list[dict[str, Any]]


def _rule_key(message: dict[str, Any]) -> tuple[str, str]:
    return ("TRACK", message["event"]) if message["type"] == "track" else ("IDENTIFY", "UserTraits")


def test_every_payload_the_porter_example_sends_validates_against_its_rule(porter_messages: Messages) -> None:
    rules = {
        (r["type"], r["key"]): r["jsonSchema"] for r in json.loads(render(plan_of_module(PORTER), "segment"))["rules"]
    }
    assert len(porter_messages) >= 10
    assert {m["type"] for m in porter_messages} == {"track", "identify"}
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


def test_other_message_types_are_not_planned() -> None:
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
