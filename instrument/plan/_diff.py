"""Compare two plans by Snowplow's published rules: every change classed as Iglu SchemaVer does, with the
next version each changed rule should take and the warehouse caveats where they apply.

SchemaVer (MODEL-REVISION-ADDITION): MODEL is a change that breaks with historical data (Snowplow's
"breaking": ``plan diff`` exits 1), REVISION one that may break with some of it but which Snowplow's table
calls non-breaking, ADDITION one compatible with all of it. By Snowplow's versioning table:

- MODEL: event removed, required property added or removed, optional to required, a type changed or
  narrowed (``number`` -> ``integer``, an enum value or ``null`` dropped, a ``format`` added), scope changed.
- REVISION: an optional property removed from a closed rule (``additionalProperties: false``: historical
  events carrying it no longer validate), an optional property added to an open rule (historical events
  may carry it with another type), a rule closed, a size limit tightened.
- ADDITION: event added, an optional property added to a closed rule or removed from an open one,
  required to optional (breaking on Redshift), a type widened (``integer`` -> ``number``, ``null``
  allowed), an enum value added, a rule opened, a size limit relaxed.

Rules are matched by what is sent: a track by its event name; an identify (the wire carries no name) by
its class name when both plans have it, else by its traits, so renaming the Identify class is no change.
Descriptions are not compared here (``plan check`` compares the exported text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from instrument.plan._model import SCOPE_KEYWORD, Plan, Rule
from instrument.plan._types import Schema, type_text

BREAKING = "breaking"
COMPATIBLE = "compatible"
MODEL, REVISION, ADDITION = "MODEL", "REVISION", "ADDITION"
_RANK = {ADDITION: 0, REVISION: 1, MODEL: 2}

_IGNORED = frozenset({"description", "title", "$comment"})
# Keywords that bound a value's size; Snowplow's table: changing a size is non-breaking, but on Redshift and
# Databricks it may change the column's type.
_UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")
_LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems")
_BOUNDS = frozenset({*_UPPER, *_LOWER})
_HANDLED = frozenset({"type", "enum", "format", "items", *_BOUNDS})

REDSHIFT_NOT_NULL = "Redshift: breaking (the column stays NOT NULL); Snowflake, BigQuery, Databricks: non-breaking"
COLUMN_TYPE = "warehouses: the column's type may change (Snowplow's loaders treat a type change as breaking)"
COLUMN_SIZE = "Redshift, Databricks: a size change may change the column's type"

#: Every kind of change ``diff`` reports.
CHANGE_KINDS = (
    "event removed",
    "event added",
    "required property removed",
    "optional property removed",
    "new required property",
    "optional property added",
    "optional to required",
    "required to optional",
    "type widened",
    "type narrowed",
    "type changed",
    "enum value removed",
    "enum value added",
    "size relaxed",
    "size tightened",
    "scope changed",
    "rule closed",
    "rule opened",
)

Relation = Literal["same", "wider", "narrower", "other"]


@dataclass(frozen=True)
class Change:
    """One difference: its SchemaVer class, what it is, the rule it is in, where (JSON pointer), and the
    warehouse caveat where one applies. ``severity`` is breaking for MODEL, else compatible."""

    severity: str
    what: str
    rule: str
    pointer: str
    detail: str
    schemaver: str = ADDITION
    caveat: str = ""

    def as_dict(self) -> dict[str, str]:
        """The change as ``plan diff --json`` prints it."""
        data = {
            "severity": self.severity,
            "schemaver": self.schemaver,
            "change": self.what,
            "rule": self.rule,
            "pointer": self.pointer,
            "detail": self.detail,
        }
        if self.caveat:
            data["caveat"] = self.caveat
        return data


@dataclass(frozen=True)
class Bump:
    """The version a changed rule should take: its old SchemaVer bumped by its largest change."""

    rule: str
    old: str | None
    new: str
    schemaver: str

    def as_dict(self) -> dict[str, str | None]:
        """The bump as ``plan diff --json`` prints it."""
        return {"rule": self.rule, "from": self.old, "to": self.new, "schemaver": self.schemaver}


def _change(schemaver: str, what: str, rule: Rule, pointer: str, detail: str, caveat: str = "") -> Change:
    assert what in CHANGE_KINDS, what
    severity = BREAKING if schemaver == MODEL else COMPATIBLE
    return Change(severity, what, rule.label(), pointer, detail, schemaver, caveat)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _body_pointer(rule: Rule, *parts: str) -> str:
    # A pointer into the rule's jsonSchema (Segment's shape): /properties/properties/properties/<key>.
    return "".join(f"/{_escape(p)}" for p in ("properties", rule.body_key, *parts))


def _strip(schema: Any) -> Any:
    """A schema without annotations (descriptions, titles, comments)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in _IGNORED}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def _types(schema: Schema) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = {kind} if isinstance(kind, str) else set(kind)
    if "number" in kinds:
        kinds.add("integer")  # every integer is a number: integer -> number widens
    return kinds


def _set_relation(old: set[str] | None, new: set[str] | None) -> Relation:
    # None admits everything.
    if old == new:
        return "same"
    if new is None or (old is not None and old < new):
        return "wider"
    if old is None or new < old:
        return "narrower"
    return "other"


def _bound_relation(old: Schema, new: Schema) -> Relation:
    """Size limits: relaxing an upper or lower bound widens, tightening narrows."""
    seen: set[Relation] = set()
    for keys, sign in ((_UPPER, 1), (_LOWER, -1)):
        for key in keys:
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (before, after)):
                seen.add("other")  # not a number: a plan this tool did not write; call it a change
            elif after is None or (before is not None and (after - before) * sign > 0):
                seen.add("wider")
            else:
                seen.add("narrower")
    return _combine(seen)


def _combine(relations: set[Relation]) -> Relation:
    relations = relations - {"same"}
    if not relations:
        return "same"
    if len(relations) > 1 or "other" in relations:
        return "other"
    return next(iter(relations))


def _values(schema: Schema) -> set[str] | None:
    values = schema.get("enum")
    return None if values is None else {json.dumps(v, sort_keys=True) for v in values}


def relation(old: Schema, new: Schema, *, with_enum: bool = True) -> Relation:
    """How the values ``new`` admits relate to those ``old`` admits: same, wider, narrower, or other."""
    old, new = _strip(old), _strip(new)
    if old == new:
        return "same"
    if not new:
        return "wider"  # {} admits every value
    if not old:
        return "narrower"
    found: set[Relation] = {_set_relation(_types(old), _types(new))}
    if with_enum:
        found.add(_set_relation(_values(old), _values(new)))
    before, after = old.get("format"), new.get("format")
    found.add("same" if before == after else "wider" if after is None else "narrower" if before is None else "other")
    items_old, items_new = old.get("items"), new.get("items")
    if isinstance(items_old, dict | None) and isinstance(items_new, dict | None):
        found.add(relation(items_old or {}, items_new or {}))
    elif items_old != items_new:
        found.add("other")
    found.add(_bound_relation(old, new))
    rest_old = {k: v for k, v in old.items() if k not in _HANDLED}
    rest_new = {k: v for k, v in new.items() if k not in _HANDLED}
    if rest_old != rest_new:
        found.add("other")
    return _combine(found)


def _enum_changes(old: Schema, new: Schema, rule: Rule, key: str) -> list[Change]:
    before, after = old.get("enum"), new.get("enum")
    if before is None or after is None:
        return []  # an enum added or dropped is a narrowing or a widening of the type
    pointer = _body_pointer(rule, "properties", key, "enum")
    changes = [_change(MODEL, "enum value removed", rule, pointer, f"{key}: {v!r}") for v in before if v not in after]
    changes += [_change(ADDITION, "enum value added", rule, pointer, f"{key}: {v!r}") for v in after if v not in before]
    return changes


def _without_bounds(schema: Schema) -> Schema:
    return {k: v for k, v in _strip(schema).items() if k not in _BOUNDS}


def _type_change(before: Schema, schema: Schema, rule: Rule, key: str) -> list[Change]:
    pointer = _body_pointer(rule, "properties", key)
    enums = before.get("enum") is not None and schema.get("enum") is not None  # compared value by value
    core = relation(_without_bounds(before), _without_bounds(schema), with_enum=not enums)
    size = _bound_relation(_strip(before), _strip(schema))
    detail = f"{key}: {type_text(_strip(before))} -> {type_text(_strip(schema))}"
    changes: list[Change] = []
    if core == "same" and size == "wider":
        changes.append(_change(ADDITION, "size relaxed", rule, pointer, detail, COLUMN_SIZE))
    elif core == "same" and size != "same":
        changes.append(_change(REVISION, "size tightened", rule, pointer, detail, COLUMN_SIZE))
    elif core == "wider":
        changes.append(_change(ADDITION, "type widened", rule, pointer, detail, COLUMN_TYPE))
    elif core == "narrower":
        changes.append(_change(MODEL, "type narrowed", rule, pointer, detail))
    elif core == "other":
        changes.append(_change(MODEL, "type changed", rule, pointer, detail))
    if enums:
        changes += _enum_changes(before, schema, rule, key)
    return changes


def _closed(rule: Rule) -> bool:
    return rule.body.get("additionalProperties") is False


def _rule_changes(old: Rule, new: Rule) -> list[Change]:
    changes: list[Change] = []
    if old.scope != new.scope and old.scope is not None and new.scope is not None:
        pointer = _body_pointer(new, SCOPE_KEYWORD)
        changes.append(_change(MODEL, "scope changed", new, pointer, f"{old.scope} -> {new.scope}"))
    old_props: Schema = old.body.get("properties", {})
    new_props: Schema = new.body.get("properties", {})
    old_required = set(old.body.get("required", []))
    new_required = set(new.body.get("required", []))
    for key in old_props:
        if key not in new_props:
            pointer = _body_pointer(old, "properties", key)
            if key in old_required:
                changes.append(_change(MODEL, "required property removed", new, pointer, key))
            else:
                # A closed rule now refuses historical events that carry it; an open one still admits them.
                schemaver = REVISION if _closed(new) else ADDITION
                changes.append(_change(schemaver, "optional property removed", new, pointer, key))
    for key, schema in new_props.items():
        pointer = _body_pointer(new, "properties", key)
        if key not in old_props:
            if key in new_required:
                changes.append(_change(MODEL, "new required property", new, pointer, key))
            else:
                # An open rule admitted the key before with any value: historical events may not match.
                schemaver = ADDITION if _closed(old) else REVISION
                changes.append(_change(schemaver, "optional property added", new, pointer, key))
            continue
        changes += _type_change(old_props[key], schema, new, key)
        required = _body_pointer(new, "required")
        if key in new_required and key not in old_required:
            changes.append(_change(MODEL, "optional to required", new, required, key))
        elif key in old_required and key not in new_required:
            changes.append(_change(ADDITION, "required to optional", new, required, key, REDSHIFT_NOT_NULL))
    if _closed(old) != _closed(new):
        pointer = _body_pointer(new, "additionalProperties")
        if _closed(new):
            changes.append(_change(REVISION, "rule closed", new, pointer, "no other property allowed"))
        else:
            changes.append(_change(ADDITION, "rule opened", new, pointer, "any other property allowed"))
    return changes


def _traits(rule: Rule) -> frozenset[str]:
    return frozenset(rule.body.get("properties", {}))


def pairs(old: Plan, new: Plan) -> list[tuple[Rule | None, Rule | None]]:
    """The rules of both plans matched by what is sent, in plan order: tracks, pages and screens by name,
    identifies, groups and aliases by class name, else (a renamed class sends the same message) by equal
    traits, else the closest traits."""
    matched: list[tuple[Rule | None, Rule | None]] = []
    lone_old = [r for r in old.rules if new.find(r.type, r.key) is None]
    lone_new = [r for r in new.rules if old.find(r.type, r.key) is None]
    renamed: dict[int, Rule] = {}
    # Identify, group and alias messages carry no class name: a renamed class sends the same message.
    for rule in [r for r in lone_new if r.type in ("IDENTIFY", "GROUP", "ALIAS")]:
        candidates = [r for r in lone_old if r.type == rule.type and r not in renamed.values()]
        if candidates:
            best = max(candidates, key=lambda r: (r.body == rule.body, len(_traits(r) & _traits(rule))))
            if best.body == rule.body or _traits(best) & _traits(rule) or len(candidates) == 1:
                renamed[id(rule)] = best
    for rule in old.rules:
        if rule in lone_old and rule not in renamed.values():
            matched.append((rule, None))
    for rule in new.rules:
        matched.append((renamed.get(id(rule)) or old.find(rule.type, rule.key), rule))
    return matched


def diff(old: Plan, new: Plan) -> list[Change]:
    """Every change from ``old`` to ``new``, rules in plan order."""
    changes: list[Change] = []
    for before, after in pairs(old, new):
        if after is None:
            assert before is not None
            changes.append(_change(MODEL, "event removed", before, "", before.key))
        elif before is None:
            changes.append(_change(ADDITION, "event added", after, "", after.key))
        else:
            changes += _rule_changes(before, after)
    return changes


def bump(version: str, schemaver: str) -> str:
    """``version`` (MODEL-REVISION-ADDITION) with the ``schemaver`` part incremented and the parts after it reset."""
    model, revision, addition = (int(part) for part in version.split("-"))
    if schemaver == MODEL:
        return f"{model + 1}-0-0"
    if schemaver == REVISION:
        return f"{model}-{revision + 1}-0"
    return f"{model}-{revision}-{addition + 1}"


def bumps(old: Plan, new: Plan) -> list[Bump]:
    """The next version of every rule that changed (a new rule starts at 1-0-0), in plan order."""
    result: list[Bump] = []
    for before, after in pairs(old, new):
        if after is None:
            continue
        if before is None:
            result.append(Bump(after.label(), None, "1-0-0", ADDITION))
            continue
        changes = _rule_changes(before, after)
        if changes:
            largest = max((c.schemaver for c in changes), key=_RANK.__getitem__)
            result.append(Bump(after.label(), before.version, bump(before.version, largest), largest))
    return result


def is_breaking(changes: list[Change]) -> bool:
    """True when any change is breaking (a MODEL change: ``plan diff`` exits 1)."""
    return any(c.severity == BREAKING for c in changes)
