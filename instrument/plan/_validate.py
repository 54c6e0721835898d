"""Check a Segment message against a plan with the jsonschema library (draft-07).

Violations carry the names people already know from RudderStack: Unplanned-Event, Required-Missing,
Datatype-Mismatch, Additional-Properties, each with the field it concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from instrument.plan._model import Plan, PlanError, Rule

UNPLANNED = "Unplanned-Event"
REQUIRED_MISSING = "Required-Missing"
DATATYPE_MISMATCH = "Datatype-Mismatch"
ADDITIONAL_PROPERTIES = "Additional-Properties"


@dataclass(frozen=True)
class Violation:
    """One way a message breaks the plan: its kind, the field (a JSON pointer into the message), why."""

    kind: str
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """``{"type", "field", "reason"}``, as the collector's API shows it."""
        return {"type": self.kind, "field": self.field, "reason": self.reason}


def _pointer(parts: list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _from_error(error: jsonschema.ValidationError) -> list[Violation]:
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        missing = [k for k in error.validator_value if k not in instance]
        return [
            Violation(REQUIRED_MISSING, _pointer([*path, k]), f"required property {k!r} is missing") for k in missing
        ]
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = error.schema.get("properties", {})
        extra = sorted(k for k in instance if k not in known)
        return [Violation(ADDITIONAL_PROPERTIES, _pointer([*path, k]), f"property {k!r} is not planned") for k in extra]
    # Name the expectation, never the value: payloads may hold personal data.
    expected = error.validator_value if error.validator in ("type", "format", "enum", "const") else error.validator
    reason = f"expected {error.validator} {expected!r}, got {_json_type(instance)}"
    return [Violation(DATATYPE_MISMATCH, _pointer(path), reason)]


def _json_type(value: object) -> str:
    for kind, types in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float)):
        if isinstance(value, types):
            return kind
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


class Checker:
    """Validates messages against a plan; one compiled validator per rule.

    Raises PlanError naming the rule when one of the plan's schemas is not valid draft-07.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
        for rule in plan.rules:
            schema = rule.message_schema()
            try:
                jsonschema.Draft7Validator.check_schema(schema)
            except jsonschema.SchemaError as error:
                where = _pointer(list(error.absolute_path))
                raise PlanError(
                    f"{plan.origin}: rule {rule.label()!r}: not a valid draft-07 schema at {where or '/'}: "
                    f"{error.message}"
                ) from None
            self._validators[(rule.type, rule.key)] = jsonschema.Draft7Validator(schema)

    def _rule_violations(self, rule: Rule, message: Mapping[str, Any]) -> list[Violation]:
        validator = self._validators[(rule.type, rule.key)]
        found: dict[tuple[str, str], Violation] = {}
        # jsonschema reports each missing property as its own "required" error: keep one per field.
        for error in sorted(validator.iter_errors(message), key=lambda e: list(map(str, e.absolute_path))):
            for violation in _from_error(error):
                found.setdefault((violation.kind, violation.field), violation)
        return list(found.values())

    def check(self, message: Mapping[str, Any]) -> list[Violation]:
        """The message's violations (empty when it is good). Only track and identify messages are planned."""
        kind = message.get("type")
        if kind == "track":
            event = message.get("event")
            rule = self.plan.find("TRACK", event) if isinstance(event, str) else None
            if rule is None:
                return [Violation(UNPLANNED, "/event", f"event {event!r} is not in the plan")]
            return self._rule_violations(rule, message)
        if kind == "identify":
            rules = [r for r in self.plan.rules if r.type == "IDENTIFY"]
            if not rules:
                return [Violation(UNPLANNED, "/type", "the plan has no identify rule")]
            # Several Identify classes may exist: the message is good if it fits one; else the closest's errors.
            return min((self._rule_violations(r, message) for r in rules), key=len)
        return []
