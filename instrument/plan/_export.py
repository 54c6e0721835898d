"""Render a plan: Segment's tracking-plan shape, one plain draft-07 schema per event, or a Markdown catalog.

Every format is byte-identical across runs (sorted keys, fixed indentation, a final newline), so the
output can be committed and diffed.
"""

from __future__ import annotations

import json
from typing import Any

from instrument.plan._model import DRAFT_07, PERSONAL_KEYWORD, Plan, PlanError, Rule
from instrument.plan._types import Schema, type_text

FORMATS = ("segment", "jsonschema", "markdown")


def dumps(data: Any) -> str:
    """The one JSON text form of every export: sorted keys, two-space indent, UTF-8 kept, final newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def segment_document(plan: Plan) -> dict[str, Any]:
    """Segment's Public API / Typewriter shape: ``{"rules": [{"key", "type", "version", "jsonSchema"}]}``."""
    return {
        "rules": [
            {"key": rule.key, "type": rule.type, "version": 1, "jsonSchema": rule.message_schema()}
            for rule in plan.rules
        ]
    }


def plain_schema(rule: Rule) -> Schema:
    """A standalone draft-07 schema of a whole message of this rule (type, event, userId and body)."""
    kind = "track" if rule.type == "TRACK" else "identify"
    props: Schema = {"type": {"const": kind}, "userId": {"type": "string"}, rule.body_key: rule.body}
    required = ["type", "userId", rule.body_key]
    if rule.type == "TRACK":
        props["event"] = {"const": rule.key}
        required.insert(1, "event")
    schema: Schema = {
        "$schema": DRAFT_07,
        "title": rule.key,
        "type": "object",
        "properties": props,
        "required": required,
    }
    if rule.doc:
        schema["description"] = rule.doc
    return schema


def jsonschema_document(plan: Plan) -> dict[str, Any]:
    """``{"events": {label: schema}}``: one plain draft-07 schema per event or identify."""
    return {"events": {rule.label(): plain_schema(rule) for rule in plan.rules}}


def markdown(plan: Plan) -> str:
    """A readable catalog: each event with its scope, description and a table of its properties."""
    lines = [f"# Tracking plan: {plan.origin}", ""]
    for title, rule_type in (("Tracks", "TRACK"), ("Identifies", "IDENTIFY")):
        rules = [r for r in plan.rules if r.type == rule_type]
        if not rules:
            continue
        lines += [f"## {title}", ""]
        for rule in rules:
            lines += [f"### {rule.key}", ""]
            if rule.doc:
                lines += [rule.doc, ""]
            facts = [f"scope `{rule.scope}`"] if rule.scope else []
            if rule.cls_name:
                facts.append(f"class `{rule.cls_name}`")
            if facts:
                text = ", ".join(facts)
                lines += [text[0].upper() + text[1:], ""]
            lines += _property_table(rule)
    return "\n".join(lines).rstrip("\n") + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _property_table(rule: Rule) -> list[str]:
    props: Schema = rule.body.get("properties", {})
    if not props:
        return ["No properties.", ""]
    required = set(rule.body.get("required", []))
    rows = [f"| {rule.body_key[:-1] if rule.type == 'IDENTIFY' else 'property'} | type | required | description |"]
    rows.append("|---|---|---|---|")
    for key, schema in props.items():
        described = ("personal. " if schema.get(PERSONAL_KEYWORD) else "") + schema.get("description", "")
        rows.append(
            f"| `{key}` | {_cell(type_text({k: v for k, v in schema.items() if k != 'description'}))} | "
            f"{'yes' if key in required else 'no'} | {_cell(described.strip())} |"
        )
    return [*rows, ""]


def render(plan: Plan, fmt: str) -> str:
    """The plan as text in ``fmt`` (segment, jsonschema or markdown). Raises PlanError for another format."""
    if fmt == "segment":
        return dumps(segment_document(plan))
    if fmt == "jsonschema":
        return dumps(jsonschema_document(plan))
    if fmt == "markdown":
        return markdown(plan)
    raise PlanError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")


def format_of(data: Any) -> str:
    """Which export format a parsed plan file is in (segment or jsonschema)."""
    return "segment" if isinstance(data, dict) and "rules" in data else "jsonschema"
