"""Check a Segment message against a plan with the jsonschema library (draft-07).

Violations carry the names people already know from RudderStack: Unplanned-Event, Required-Missing,
Datatype-Mismatch, Additional-Properties and Unknown-Violation (anything else a schema refuses: a
``format``, ``enum``, ``pattern``, bound), each with the field it concerns. ``format`` is enforced for
date-time, date, time, uuid and email (date-time and time need rfc3339-validator, in the ``plan`` extra);
a time may lack its offset, as the encoder sends a naive ``datetime.time``.
Track and identify calls are always planned; page, screen, group and alias calls are checked against the
plan's rules of their type when it has some (a page or screen rule keyed by name, or unkeyed for all).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from instrument.plan._model import Plan, PlanError, Rule

UNPLANNED = "Unplanned-Event"
REQUIRED_MISSING = "Required-Missing"
DATATYPE_MISMATCH = "Datatype-Mismatch"
ADDITIONAL_PROPERTIES = "Additional-Properties"
UNKNOWN_VIOLATION = "Unknown-Violation"
#: The formats the checker enforces (others are annotations, as draft-07 allows).
FORMATS = ("date-time", "date", "time", "uuid", "email")
# The object a rule's body describes, by rule type (alias: the message itself).
_BODY_KEYS = {"TRACK": "properties", "PAGE": "properties", "SCREEN": "properties", "IDENTIFY": "traits"}
_BODY_KEYS["GROUP"] = "traits"
_OPTIONAL_TYPES = {"page": "PAGE", "screen": "SCREEN", "group": "GROUP", "alias": "ALIAS"}
# RFC 3339 time, its offset optional: the encoder sends a naive datetime.time without one (isoformat()).
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)?")


def _is_time(value: object) -> bool:
    return not isinstance(value, str) or _TIME.fullmatch(value) is not None


def _format_checker() -> jsonschema.FormatChecker:
    # Draft 2020-12's checkers (draft-07's, plus uuid), and a time that may lack its offset.
    checker = jsonschema.FormatChecker(())
    checker.checkers = dict(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    if "time" in checker.checkers:  # only with rfc3339-validator, as for date-time
        checker.checkers["time"] = (_is_time, ())
    return checker


#: The checker of the formats the collector enforces (date-time and time need rfc3339-validator).
FORMAT_CHECKER = _format_checker()


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
    if error.validator == "type":
        reason = f"expected type {error.validator_value!r}, got {_json_type(instance)}"
        return [Violation(DATATYPE_MISMATCH, _pointer(path), reason)]
    if error.validator in ("format", "const", "pattern") or error.validator.startswith(("min", "max")):
        reason = f"expected {error.validator} {error.validator_value!r}, got a {_json_type(instance)} that is not"
    elif error.validator == "enum":
        reason = f"expected one of the {len(error.validator_value)} planned values, got another {_json_type(instance)}"
    else:
        reason = f"refused by {error.validator!r}, got {_json_type(instance)}"
    return [Violation(UNKNOWN_VIOLATION, _pointer(path), reason)]


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
        formats = FORMAT_CHECKER
        unable = [f for f in FORMATS if f not in formats.checkers]
        for rule in plan.rules:
            schema = _message_schema(rule)
            used = [f for f in unable if f'"format": "{f}"' in json.dumps(schema)]
            if used:
                raise PlanError(
                    f"{plan.origin}: rule {rule.label()!r}: format {used[0]!r} cannot be checked without "
                    "rfc3339-validator: pip install 'instrument[plan]'"
                )
            try:
                jsonschema.Draft7Validator.check_schema(schema)
            except jsonschema.SchemaError as error:
                where = _pointer(list(error.absolute_path))
                raise PlanError(
                    f"{plan.origin}: rule {rule.label()!r}: not a valid draft-07 schema at {where or '/'}: "
                    f"{error.message}"
                ) from None
            self._validators[(rule.type, rule.key)] = jsonschema.Draft7Validator(schema, format_checker=formats)

    def _rule_violations(self, rule: Rule, message: Mapping[str, Any]) -> list[Violation]:
        validator = self._validators[(rule.type, rule.key)]
        found: dict[tuple[str, str], Violation] = {}
        # jsonschema reports each missing property as its own "required" error: keep one per field.
        for error in sorted(validator.iter_errors(message), key=lambda e: list(map(str, e.absolute_path))):
            for violation in _from_error(error):
                found.setdefault((violation.kind, violation.field), violation)
        # A value of the wrong type fails its enum or format too: the type is the one to report.
        mistyped = {field for kind, field in found if kind == DATATYPE_MISMATCH}
        return [v for (kind, field), v in found.items() if not (kind == UNKNOWN_VIOLATION and field in mistyped)]

    def check(self, message: Mapping[str, Any]) -> list[Violation]:
        """The message's violations (empty when it is good). Track and identify messages are always planned;
        page, screen, group and alias ones when the plan has rules of their type."""
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
        rule_type = _OPTIONAL_TYPES.get(kind) if isinstance(kind, str) else None
        rules = [r for r in self.plan.rules if r.type == rule_type]
        if not rules:
            return []
        if kind in ("page", "screen"):
            name = message.get("name")
            named = [r for r in rules if r.key and r.key == name]
            rules = named or [r for r in rules if not r.key]
            if not rules:
                return [Violation(UNPLANNED, "/name", f"no {kind} rule for this name in the plan")]
        return min((self._rule_violations(r, message) for r in rules), key=len)


def _message_schema(rule: Rule) -> dict[str, Any]:
    """The schema a whole message of this rule satisfies; a group's body is its traits, an alias rule's
    body is the message itself."""
    rule_type: str = rule.type  # the model may hold more types than its Literal names yet
    if rule_type == "ALIAS":
        return dict(rule.body)
    schema = dict(rule.message_schema())
    body_key = _BODY_KEYS.get(rule_type, rule.body_key)
    if body_key != rule.body_key:
        schema["properties"] = {**schema["properties"], rule.body_key: {}, body_key: rule.body}
        schema["required"] = [body_key]
    return schema
