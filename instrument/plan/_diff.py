"""Compare two plans: every change classified breaking or compatible, with a JSON pointer into its rule.

Breaking: event removed, property removed, optional to required, type changed, enum value removed, new
required property, scope changed. Compatible: event added, optional property added, enum value added,
required to optional. Descriptions are not compared here (``plan check`` compares the exported text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from instrument.plan._model import SCOPE_KEYWORD, Plan, Rule
from instrument.plan._types import Schema, type_text

BREAKING = "breaking"
COMPATIBLE = "compatible"

_IGNORED = frozenset({"description", "title", "$comment"})


@dataclass(frozen=True)
class Change:
    """One difference: breaking or compatible, what it is, the rule it is in, and where (JSON pointer)."""

    severity: str
    what: str
    rule: str
    pointer: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The change as ``plan diff --json`` prints it."""
        return {
            "severity": self.severity,
            "change": self.what,
            "rule": self.rule,
            "pointer": self.pointer,
            "detail": self.detail,
        }


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _body_pointer(rule: Rule, *parts: str) -> str:
    # A pointer into the rule's jsonSchema (Segment's shape): /properties/properties/properties/<key>.
    return "".join(f"/{_escape(p)}" for p in ("properties", rule.body_key, *parts))


def _shape(schema: Any) -> Any:
    """A schema without annotations and enums, for telling a type change."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k not in _IGNORED and k != "enum"}
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


def _enum_changes(old: Schema, new: Schema, rule: Rule, key: str) -> list[Change]:
    old_values, new_values = old.get("enum"), new.get("enum")
    if old_values is None and new_values is None:
        return []
    pointer = _body_pointer(rule, "properties", key, "enum")
    if old_values is None or new_values is None:
        return [Change(BREAKING, "type changed", rule.label(), pointer, f"{key}: enum added or removed")]
    changes = [
        Change(BREAKING, "enum value removed", rule.label(), pointer, f"{key}: {v!r}")
        for v in old_values
        if v not in new_values
    ]
    changes += [
        Change(COMPATIBLE, "enum value added", rule.label(), pointer, f"{key}: {v!r}")
        for v in new_values
        if v not in old_values
    ]
    return changes


def _rule_changes(old: Rule, new: Rule) -> list[Change]:
    label = new.label()
    changes: list[Change] = []
    if old.scope != new.scope and old.scope is not None and new.scope is not None:
        changes.append(
            Change(BREAKING, "scope changed", label, _body_pointer(new, SCOPE_KEYWORD), f"{old.scope} -> {new.scope}")
        )
    old_props: Schema = old.body.get("properties", {})
    new_props: Schema = new.body.get("properties", {})
    old_required = set(old.body.get("required", []))
    new_required = set(new.body.get("required", []))
    for key in old_props:
        if key not in new_props:
            changes.append(Change(BREAKING, "property removed", label, _body_pointer(old, "properties", key), key))
    for key, schema in new_props.items():
        pointer = _body_pointer(new, "properties", key)
        if key not in old_props:
            if key in new_required:
                changes.append(Change(BREAKING, "new required property", label, pointer, key))
            else:
                changes.append(Change(COMPATIBLE, "optional property added", label, pointer, key))
            continue
        before = old_props[key]
        if _shape(before) != _shape(schema):
            detail = f"{key}: {type_text(_shape(before))} -> {type_text(_shape(schema))}"
            changes.append(Change(BREAKING, "type changed", label, pointer, detail))
        else:
            changes += _enum_changes(before, schema, new, key)
        if key in new_required and key not in old_required:
            changes.append(Change(BREAKING, "optional to required", label, _body_pointer(new, "required"), key))
        elif key in old_required and key not in new_required:
            changes.append(Change(COMPATIBLE, "required to optional", label, _body_pointer(new, "required"), key))
    return changes


def diff(old: Plan, new: Plan) -> list[Change]:
    """Every change from ``old`` to ``new``, rules in plan order."""
    changes: list[Change] = []
    for rule in old.rules:
        if new.find(rule.type, rule.key) is None:
            changes.append(Change(BREAKING, "event removed", rule.label(), "", rule.key))
    for rule in new.rules:
        before = old.find(rule.type, rule.key)
        if before is None:
            changes.append(Change(COMPATIBLE, "event added", rule.label(), "", rule.key))
        else:
            changes += _rule_changes(before, rule)
    return changes


def is_breaking(changes: list[Change]) -> bool:
    """True when any change is breaking (``plan diff`` exits 1)."""
    return any(c.severity == BREAKING for c in changes)
