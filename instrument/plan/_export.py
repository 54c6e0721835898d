"""Render a plan: Segment's tracking-plan rules, Typewriter's plan.json, Iglu self-describing schemas,
rudder-cli YAML, one plain draft-07 schema per event, or a Markdown catalog.

Every format is byte-identical across runs (sorted keys, fixed indentation, a final newline), so the
output can be committed and diffed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from instrument.plan._model import (
    DESTINATIONS_KEYWORD,
    DRAFT_07,
    PERSONAL_KEYWORD,
    RULE_TYPES,
    Plan,
    PlanError,
    Rule,
)
from instrument.plan._types import Schema, type_text

FORMATS = ("segment", "jsonschema", "markdown", "typewriter", "iglu", "rudder")
IGLU_META = "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
#: The Iglu vendor when neither ``--vendor`` nor the plan (an imported one) names one.
DEFAULT_VENDOR = "com.example"


def dumps(data: Any) -> str:
    """The one JSON text form of every export: sorted keys, two-space indent, UTF-8 kept, final newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


#: Segment's rule types (Protocols has no ALIAS rule: alias rules stay in instrument's own formats).
SEGMENT_TYPES = frozenset({"TRACK", "IDENTIFY", "GROUP", "PAGE", "SCREEN", "COMMON"})
_KINDS = {rule_type: kind for kind, rule_type in RULE_TYPES.items()}


def segment_document(plan: Plan) -> dict[str, Any]:
    """Segment's Public API / Typewriter shape: ``{"rules": [{"key", "type", "version", "jsonSchema"}]}``
    (every rule but ALIAS, which Segment's plans do not have)."""
    return {
        "rules": [
            {
                "key": None if rule.null_key else rule.key,
                "type": rule.type,
                "version": rule.model,
                "jsonSchema": rule.message_schema(),
            }
            for rule in plan.rules
            if rule.type in SEGMENT_TYPES
        ]
        # An imported plan's COMMON rules (kept whole: no class declares them).
        + list(plan.meta.get("segment", {}).get("common", []))
    }


def typewriter_document(plan: Plan) -> dict[str, Any]:
    """Typewriter's plan.json: ``rules.events`` (name, description, version, rules), ``rules.identify`` and
    ``rules.group``; an imported plan's own fields (display name, times) are kept. Typewriter has no place
    for page, screen or alias rules."""
    kept = plan.meta.get("typewriter", {})
    events = []
    for rule in plan.rules:
        if rule.type != "TRACK":
            continue
        schema = rule.message_schema()
        if rule.doc is not None and schema.get("description") == rule.doc:
            del schema["description"]  # Typewriter keeps it beside the rules, not in them
        event: dict[str, Any] = {"name": rule.key, "rules": schema, "version": rule.model}
        if rule.doc is not None:
            event["description"] = rule.doc
        events.append(event)
    rules: dict[str, Any] = {**kept.get("rules", {}), "events": events}
    for rule_type, place in (("IDENTIFY", "identify"), ("GROUP", "group")):
        first = next((r for r in plan.rules if r.type == rule_type), None)
        if first is not None:
            rules[place] = first.message_schema()
    return {**kept.get("document", {}), "rules": rules}


def iglu_files(plan: Plan, vendor: str | None = None) -> dict[str, str]:
    """One Iglu self-describing schema per TRACK rule, by path (``vendor/name/jsonschema/version``)."""
    vendor = vendor or plan.meta.get("iglu", {}).get("vendor") or DEFAULT_VENDOR
    if not _IGLU_VENDOR.fullmatch(vendor):
        raise PlanError(f"Iglu vendor {vendor!r} is not a reversed domain name (letters, digits, '.', '-', '_')")
    files: dict[str, str] = {}
    for rule in plan.rules:
        if rule.type != "TRACK":
            continue
        name = iglu_name(rule.key)
        document: Schema = {
            "$schema": IGLU_META,
            "self": {"vendor": vendor, "name": name, "format": "jsonschema", "version": rule.version},
            **rule.body,
        }
        if rule.doc is not None:
            document["description"] = rule.doc
        path = f"{vendor}/{name}/jsonschema/{rule.version}"
        if path in files:
            raise PlanError(f"events {rule.key!r} and another have the same Iglu schema name {name!r}")
        files[path] = dumps(document)
    return files


_IGLU_NAME = re.compile(r"[A-Za-z0-9_-]+")
_IGLU_VENDOR = re.compile(r"[A-Za-z0-9_.-]+")


def iglu_name(event: str) -> str:
    """An event's Iglu schema name: itself when Iglu allows it (letters, digits, '-', '_'), else snake_case
    (``Cluster Deleted`` -> ``cluster_deleted``); Snowplow events are named by their schema."""
    if _IGLU_NAME.fullmatch(event):
        return event
    return "_".join(re.findall(r"[A-Za-z0-9]+", event)).lower() or "event"


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[A-Za-z0-9]+", text)).lower() or "item"


def _rudder_property(key: str, schema: Schema, prop_id: str) -> dict[str, Any]:
    prop: dict[str, Any] = {"id": prop_id, "name": key}
    kind = schema.get("type")
    if kind is not None:
        prop["type"] = ",".join(kind) if isinstance(kind, list) else kind
    if "description" in schema:
        prop["description"] = schema["description"]
    config = {k: v for k, v in schema.items() if k not in ("type", "description")}
    items = config.get("items")
    if isinstance(items, dict) and set(items) == {"type"}:
        del config["items"]
        config["itemTypes"] = items["type"] if isinstance(items["type"], list) else [items["type"]]
    if config:
        prop["propConfig"] = config
    return prop


def property_label(key: str, schema: Schema) -> str:
    """How a rudder-cli property is told apart: its name, and its schema when names repeat."""
    return f"{key} {json.dumps(schema, sort_keys=True)}"


def rudder_documents(plan: Plan) -> list[dict[str, Any]]:
    """rudder-cli's three documents (events, properties, tp) of the plan's TRACK, GROUP, PAGE and SCREEN
    rules (each with its ``event_type``); an imported plan's ids and names are kept, others are made from
    the names."""
    kept = plan.meta.get("rudder", {})
    ids = kept.get("ids", {})
    version = kept.get("version") or "rudder/v0.1"
    names = {"events": "events", "properties": "properties", "tp": "tracking_plan", **kept.get("metadata", {})}
    events: list[dict[str, Any]] = []
    properties: dict[str, dict[str, Any]] = {}
    rules: list[dict[str, Any]] = []
    for rule in plan.rules:
        if rule.type not in ("TRACK", "GROUP", "PAGE", "SCREEN"):
            continue
        kind = _KINDS[rule.type]
        rule_label = rule.key if rule.type == "TRACK" else rule.label()
        event_id = ids.get("events", {}).get(rule_label) or _slug(rule_label)
        event: dict[str, Any] = {"id": event_id, "name": rule.key, "event_type": kind}
        if rule.doc is not None:
            event["description"] = rule.doc
        events.append(event)
        refs = []
        required = set(rule.body.get("required", []))
        for key, schema in rule.body.get("properties", {}).items():
            label = property_label(key, schema)
            if label not in properties:
                taken = {p["id"] for p in properties.values()}
                prop_id = ids.get("properties", {}).get(label) or _slug(key)
                while prop_id in taken:
                    prop_id += "_"
                properties[label] = _rudder_property(key, schema, prop_id)
            ref = f"#/properties/{names['properties']}/{properties[label]['id']}"
            refs.append({"$ref": ref, "required": key in required})
        item: dict[str, Any] = {
            "type": "event_rule",
            "id": ids.get("rules", {}).get(rule_label) or f"{event_id}_rule",
            "event": {
                "$ref": f"#/events/{names['events']}/{event_id}",
                "allow_unplanned": rule.body.get("additionalProperties") is not False,
            },
        }
        if refs:
            item["properties"] = refs
        rules.append(item)
    tp = {"id": "tracking_plan", "display_name": "Tracking plan", **kept.get("tp", {}), "rules": rules}
    return [
        {"version": version, "kind": "events", "metadata": {"name": names["events"]}, "spec": {"events": events}},
        {
            "version": version,
            "kind": "properties",
            "metadata": {"name": names["properties"]},
            "spec": {"properties": list(properties.values())},
        },
        {"version": version, "kind": "tp", "metadata": {"name": names["tp"]}, "spec": tp},
    ]


def yaml_text(documents: list[dict[str, Any]]) -> str:
    """Documents as one YAML stream, in one fixed style (PyYAML, imported only here)."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise PlanError("rudder-cli YAML needs PyYAML: pip install 'instrument[plan]'") from None
    text: str = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    return text


def plain_schema(rule: Rule) -> Schema:
    """A standalone draft-07 schema of a whole message of this rule (type, its name or ids, and body)."""
    kind = _KINDS.get(rule.type, "track")
    if rule.type == "ALIAS":  # the body is already the message's: its ids
        props: Schema = {"type": {"const": kind}, **rule.body.get("properties", {})}
        required = ["type", *rule.body.get("required", [])]
        whole = {k: v for k, v in rule.body.items() if k not in ("properties", "required")}
        return _titled(rule, {**whole, "properties": props, "required": required})
    props = {"type": {"const": kind}, "userId": {"type": "string"}, rule.body_key: rule.body}
    required = ["type", "userId", rule.body_key]
    named = {"TRACK": "event", "PAGE": "name", "SCREEN": "name"}.get(rule.type)
    if named is not None and rule.key:
        props[named] = {"const": rule.key}
        required.insert(1, named)
    if rule.type == "GROUP":
        props["groupId"] = {"type": "string"}
        required.insert(1, "groupId")
    return _titled(rule, {"type": "object", "properties": props, "required": required})


def _titled(rule: Rule, schema: Schema) -> Schema:
    titled: Schema = {"$schema": DRAFT_07, "title": rule.key, **schema}
    if rule.doc:
        titled["description"] = rule.doc
    if rule.destinations is not None:  # draft-07 ignores unknown keywords: validators skip it
        titled[DESTINATIONS_KEYWORD] = [_routed_item(rule, name, event) for name, event in rule.destinations]
    return titled


def _routed_item(rule: Rule, name: str, event: str) -> dict[str, str]:
    # Only a track names an event (renames apply to it); other calls are listed by destination.
    return {"name": name, "event": event} if rule.type == "TRACK" else {"name": name}


def jsonschema_document(plan: Plan) -> dict[str, Any]:
    """``{"events": {label: schema}}``: one plain draft-07 schema per rule (every call)."""
    return {"events": {rule.label(): plain_schema(rule) for rule in plan.rules}}


def markdown(plan: Plan) -> str:
    """A readable catalog: each event with its scope, description and a table of its properties."""
    lines = [f"# Tracking plan: {plan.origin}", ""]
    sections = (("Tracks", "TRACK"), ("Identifies", "IDENTIFY"), ("Groups", "GROUP"), ("Pages", "PAGE"))
    for title, rule_type in (*sections, ("Screens", "SCREEN"), ("Aliases", "ALIAS")):
        rules = [r for r in plan.rules if r.type == rule_type]
        if not rules:
            continue
        lines += [f"## {title}", ""]
        for rule in rules:
            lines += [f"### {rule.key or f'every {rule.type.lower()}'}", ""]
            if rule.doc:
                lines += [rule.doc, ""]
            facts = [f"scope `{rule.scope}`"] if rule.scope else []
            if rule.cls_name:
                facts.append(f"class `{rule.cls_name}`")
            if facts:
                text = ", ".join(facts)
                lines += [text[0].upper() + text[1:], ""]
            lines += _property_table(rule)
    lines += _destinations_section(plan)
    return "\n".join(lines).rstrip("\n") + "\n"


def _destinations_section(plan: Plan) -> list[str]:
    """The module's destinations (wire, routing, consent, personal policy) and where each rule goes."""
    if not plan.destinations:
        return []
    lines = ["## Destinations", "", "| destination | wire | routing | consent | personal |", "|---|---|---|---|---|"]
    for found in plan.destinations:
        routing = [f"events {', '.join(found['events']) or 'none'}"] if found["events"] is not None else []
        routing += [f"scopes {', '.join(found['scopes'])}"] if found["scopes"] is not None else []
        routing = (routing or ["every event"]) + ["identifies" if found["identifies"] else "no identifies"]
        consent = ", ".join(found["consent"]) or "none"
        lines.append(
            f"| `{found['name']}` | {found['wire']} | {_cell('; '.join(routing))} | {consent} | {found['personal']} |"
        )
    lines += ["", "| rule | goes to |", "|---|---|"]
    for rule in plan.rules:
        where = [
            f"`{name}`" + (f" as `{_cell(event)}`" if rule.type == "TRACK" and event != rule.key else "")
            for name, event in rule.destinations or ()
        ]
        lines.append(f"| {_cell(rule.label() or rule.type.lower())} | {', '.join(where) or 'none'} |")
    return [*lines, ""]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _property_table(rule: Rule) -> list[str]:
    props: Schema = rule.body.get("properties", {})
    if not props:
        return ["No properties.", ""]
    required = set(rule.body.get("required", []))
    rows = [f"| {'trait' if rule.body_key == 'traits' else 'property'} | type | required | description |"]
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
    if fmt == "typewriter":
        return dumps(typewriter_document(plan))
    if fmt == "rudder":
        return yaml_text(rudder_documents(plan))
    if fmt == "iglu":
        raise PlanError("the iglu format is a directory of schemas: give -o DIR")
    raise PlanError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")


def format_of(data: Any) -> str:
    """Which export format a parsed plan file is in (segment, typewriter or jsonschema)."""
    if isinstance(data, dict) and isinstance(data.get("rules"), dict):
        return "typewriter"
    return "segment" if isinstance(data, dict) and "rules" in data else "jsonschema"
