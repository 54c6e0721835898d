"""``instrument plan import``: read another tool's tracking plan and write a typed Python module of it.

Reads Segment's tracking-plan rules (the Public API's ``{"rules": [...]}``), Typewriter's ``plan.json``,
Iglu self-describing JSON Schemas (a file, or a directory of them) and RudderStack's rudder-cli YAML
(events, properties and tracking-plan documents in one file). Writes one module: an ``EventName``
catalog, a Track class per event and an Identify class per identify rule, with the wire keys and the
descriptions; ``plan export`` of that module writes the same plan back. What the classes do not imply
(a rule's version, labels, a keyword the types cannot say) is kept in each class's ``__plan__`` and the
document's own facts in the module's ``__plan_meta__``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import keyword
import re
import sys
import types
import typing
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from instrument import _scopes
from instrument._errors import EventNameError
from instrument._events import check_event_name
from instrument._spec import RESERVED
from instrument.plan._export import property_label, segment_document
from instrument.plan._lint import words
from instrument.plan._model import (
    RULE_ORDER,
    RULE_TYPES,
    Plan,
    PlanError,
    Rule,
    describe_class,
    is_planned_class,
    plan_of_document,
    read_document,
    residual,
    rule_of,
    rule_of_schema,
)
from instrument.plan._types import Schema, annotation_schema

IMPORT_FORMATS = ("segment", "typewriter", "iglu", "rudder")


# -- reading the formats ---------------------------------------------------------------------------


def read_foreign(source: str) -> tuple[str, Plan]:
    """The format and plan of a file or directory in one of IMPORT_FORMATS. Raises PlanError naming it."""
    path = Path(source)
    if path.is_dir():
        return "iglu", _iglu_dir(path)
    if path.suffix in (".yaml", ".yml"):
        return "rudder", read_rudder(path)
    _, data = read_document(path)
    if isinstance(data, dict) and isinstance(data.get("rules"), dict):
        return "typewriter", _typewriter(data, str(path))
    if isinstance(data, dict) and isinstance(data.get("self"), dict):
        return "iglu", _iglu_plan([(path, data)], str(path))
    return "segment", _segment(data, str(path))


def _segment(data: Any, origin: str) -> Plan:
    """Segment's rules; the COMMON rules (for every message) are kept whole for the export, not as classes."""
    plan = plan_of_document(data, origin)
    common = [r for r in plan.rules if r.type == "COMMON"]
    if not common:
        return plan
    kept = {"common": segment_document(Plan(tuple(common), origin))["rules"]}
    return Plan(tuple(r for r in plan.rules if r.type != "COMMON"), origin, {"segment": kept})


def _typewriter(data: dict[str, Any], origin: str) -> Plan:
    """Typewriter's plan.json: ``rules.events`` (name, description, version, rules), ``rules.identify`` and
    ``rules.group``."""
    body = data["rules"]
    events = body.get("events", [])
    if not isinstance(events, list):
        raise PlanError(f"{origin}: rules.events is not a list")
    rules: list[Rule] = []
    for index, event in enumerate(events):
        where = f"{origin}: rules.events[{index}]"
        if not isinstance(event, dict) or not isinstance(event.get("name"), str) or not event["name"]:
            raise PlanError(f"{where}: an event needs a name")
        version = event.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise PlanError(f"{where}: version must be a positive integer")
        rule = rule_of_schema("TRACK", event["name"], event.get("rules", {}), f"{version}-0-0", where, doc_inside=False)
        description = event.get("description")
        rules.append(replace(rule, doc=description if isinstance(description, str) else None))
    for place in ("identify", "group"):
        if isinstance(body.get(place), dict):
            rules.append(rule_of_schema(RULE_TYPES[place], "", body[place], "1-0-0", f"{origin}: rules.{place}"))
    meta = {
        "document": {k: v for k, v in data.items() if k != "rules"},
        "rules": {k: v for k, v in body.items() if k not in ("events", "identify", "group")},
    }
    return _plan(rules, origin, {"typewriter": meta})


def _plan(rules: list[Rule], origin: str, meta: dict[str, Any]) -> Plan:
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        if (rule.type, rule.key) in seen:
            raise PlanError(f"{origin}: duplicate rule {rule.type} {rule.key!r}")
        seen.add((rule.type, rule.key))
    return Plan(tuple(sorted(rules, key=lambda r: (RULE_ORDER[r.type], r.key))), origin, meta)


def _iglu_dir(path: Path) -> Plan:
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        _, data = read_document(file)
        if isinstance(data, dict) and isinstance(data.get("self"), dict):
            found.append((file, data))
    if not found:
        raise PlanError(f"{path}: no Iglu self-describing schemas (JSON with a 'self' object) in it")
    return _iglu_plan(found, str(path))


def _iglu_plan(found: list[tuple[Path, Any]], origin: str) -> Plan:
    """Iglu self-describing schemas: one TRACK rule per schema, keyed by its ``self.name``, one vendor."""
    vendors: set[str] = set()
    rules: list[Rule] = []
    for file, data in found:
        self_ = data["self"]
        name, vendor, version = self_.get("name"), self_.get("vendor"), self_.get("version")
        if not all(isinstance(v, str) and v for v in (name, vendor, version)):
            raise PlanError(f"{file}: self needs vendor, name and version strings")
        if not re.fullmatch(r"\d+-\d+-\d+", version):
            raise PlanError(f"{file}: self.version {version!r} is not a SchemaVer (MODEL-REVISION-ADDITION)")
        vendors.add(vendor)
        body = {k: v for k, v in data.items() if k not in ("$schema", "self", "description")}
        doc = data.get("description")
        rules.append(Rule("TRACK", name, body, doc if isinstance(doc, str) else None, version=version))
    if len(vendors) != 1:
        raise PlanError(f"{origin}: one import takes one Iglu vendor, found {sorted(vendors)}")
    return _plan(rules, origin, {"iglu": {"vendor": vendors.pop()}})


def _yaml() -> Any:
    try:
        import yaml
    except ModuleNotFoundError:
        raise PlanError("rudder-cli YAML needs PyYAML: pip install 'instrument[plan]'") from None
    return yaml


def read_rudder(path: Path) -> Plan:
    """rudder-cli YAML: ``kind: events``, ``kind: properties`` and ``kind: tp`` documents in one file."""
    yaml = _yaml()
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except OSError as error:
        raise PlanError(f"{path}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PlanError(f"{path}: not YAML: {error}") from None
    by_kind: dict[str, dict[str, Any]] = {}
    for document in documents:
        kind = document.get("kind") if isinstance(document, dict) else None
        if kind not in ("events", "properties", "tp") or kind in by_kind:
            raise PlanError(f"{path}: expected one document each of kind events, properties and tp")
        by_kind[kind] = document
    if len(by_kind) != 3:
        raise PlanError(f"{path}: expected one document each of kind events, properties and tp")
    return _rudder_plan(by_kind, str(path))


def _ref_id(ref: Any, kind: str, where: str) -> str:
    match = re.fullmatch(rf"#/{kind}/[^/]+/([^/]+)", ref) if isinstance(ref, str) else None
    if match is None:
        raise PlanError(f"{where}: $ref {ref!r} is not '#/{kind}/<group>/<id>'")
    return match.group(1)


def rudder_schema(prop: dict[str, Any]) -> Schema:
    """A rudder-cli property as JSON Schema: its type (comma-separated types), propConfig and description."""
    kind = prop.get("type")
    schema: Schema = {}
    if isinstance(kind, str) and kind:
        kinds = [k.strip() for k in kind.split(",")]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    config = dict(prop.get("propConfig") or {})
    item_types = config.pop("itemTypes", None)
    if isinstance(item_types, list):
        schema["items"] = {"type": item_types[0] if len(item_types) == 1 else item_types}
    schema.update(config)
    if isinstance(prop.get("description"), str):
        schema["description"] = prop["description"]
    return schema


def _rudder_plan(docs: dict[str, dict[str, Any]], origin: str) -> Plan:
    events = {e["id"]: e for e in docs["events"].get("spec", {}).get("events", [])}
    props = {p["id"]: p for p in docs["properties"].get("spec", {}).get("properties", [])}
    tp = docs["tp"].get("spec", {})
    rules: list[Rule] = []
    ids: dict[str, dict[str, str]] = {"events": {}, "rules": {}, "properties": {}}
    for index, item in enumerate(tp.get("rules", [])):
        where = f"{origin}: tp rules[{index}]"
        event = events.get(_ref_id(item.get("event", {}).get("$ref"), "events", where))
        if event is None:
            raise PlanError(f"{where}: its event is not in the events document")
        name = event.get("name") or event.get("display_name")
        kind = event.get("event_type", "track")
        if kind in ("group", "page", "screen") and name is None:
            name = ""  # a rule for every page (screen, group)
        if kind not in ("track", "group", "page", "screen") or not isinstance(name, str):
            raise PlanError(f"{where}: only named track events and group, page and screen rules are imported")
        properties: Schema = {}
        required: list[str] = []
        for ref in item.get("properties") or []:
            prop = props.get(_ref_id(ref.get("$ref"), "properties", where))
            if prop is None or not isinstance(prop.get("name"), str):
                raise PlanError(f"{where}: a property is not in the properties document")
            properties[prop["name"]] = rudder_schema(prop)
            ids["properties"].setdefault(property_label(prop["name"], properties[prop["name"]]), prop["id"])
            if ref.get("required"):
                required.append(prop["name"])
        body: Schema = {"type": "object", "properties": properties, "required": required}
        if not item.get("event", {}).get("allow_unplanned", False):
            body["additionalProperties"] = False
        description = event.get("description")
        rule = Rule(RULE_TYPES[kind], name, body, description if isinstance(description, str) else None)
        rules.append(rule)
        label = name if kind == "track" else rule.label()
        ids["events"][label], ids["rules"][label] = event["id"], item.get("id", "")
    meta = {
        "version": docs["tp"].get("version"),
        "metadata": {kind: doc.get("metadata", {}).get("name") for kind, doc in docs.items()},
        "tp": {k: v for k, v in tp.items() if k != "rules"},
        "ids": ids,
    }
    return _plan(rules, origin, {"rudder": meta})


# -- writing the module ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Type:
    """A Python annotation as an object (to check its schema) and as source text."""

    obj: Any
    text: str


_SCALARS = {
    "string": _Type(str, "str"),
    "integer": _Type(int, "int"),
    "number": _Type(float, "float"),
    "boolean": _Type(bool, "bool"),
    "null": _Type(None, "None"),
    "object": _Type(dict[str, Any], "dict[str, Any]"),
    "array": _Type(list[Any], "list[Any]"),
}
_FORMATS = {
    "date-time": _Type(dt.datetime, "datetime.datetime"),
    "date": _Type(dt.date, "datetime.date"),
    "time": _Type(dt.time, "datetime.time"),
    "uuid": _Type(uuid.UUID, "uuid.UUID"),
}
_ZERO = {str: '""', int: "0", float: "0.0", bool: "False"}
_ANY = _Type(Any, "Any")


def _candidate(schema: Schema) -> _Type:
    """The closest Python type to a schema (checked against it afterwards)."""
    if "enum" in schema and all(v is None or isinstance(v, (str, int, bool)) for v in schema["enum"]):
        values = [v for v in schema["enum"] if v is not None]
        if values:
            literal = _Type(Literal[tuple(values)], f"Literal[{', '.join(map(repr, values))}]")
            return _or_none(literal) if None in schema["enum"] else literal
    kind = schema.get("type")
    if isinstance(kind, list):
        parts = [_candidate({**schema, "type": k}) for k in kind if k != "null"]
        if not parts:
            return _SCALARS["null"]
        union = parts[0]
        for part in parts[1:]:
            union = _Type(union.obj | part.obj, f"{union.text} | {part.text}")
        return _or_none(union) if "null" in kind else union
    if kind == "string" and schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"]:
        item = _candidate(schema["items"])
        return _Type(types.GenericAlias(list, (item.obj,)), f"list[{item.text}]")
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"]:
        value = _candidate(schema["additionalProperties"])
        return _Type(types.GenericAlias(dict, (str, value.obj)), f"dict[str, {value.text}]")
    return _SCALARS.get(kind, _ANY) if isinstance(kind, str) else _ANY


def _or_none(part: _Type) -> _Type:
    return _Type(typing.Optional[part.obj], f"{part.text} | None")  # noqa: UP045


def annotation_of(schema: Schema) -> tuple[_Type, Schema]:
    """A Python annotation whose schema is ``schema`` exactly: the closest type, plus the keywords it
    cannot say (returned, for ``Annotated``); ``Any`` and the whole schema when no type fits."""
    for choice in (_candidate(schema), _ANY):
        try:
            derived = annotation_schema(choice.obj)
        except TypeError:
            continue
        if all(key in schema and schema[key] == value for key, value in derived.items()):
            return choice, {k: v for k, v in schema.items() if derived.get(k, object()) != v}
    return _ANY, dict(schema)


def _empty_fits(extra: Schema) -> bool:
    """True when the empty value ("", 0, False, [], {}) meets the keywords the type does not say."""
    for keyword_, value in extra.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if keyword_ in ("maxLength", "maxItems", "maxProperties") or (keyword_ == "maximum" and numeric and value >= 0):
            continue
        if keyword_ == "minimum" and numeric and value <= 0:
            continue
        return False
    return True


def _python_name(key: str, taken: set[str]) -> str:
    name = key if key.isidentifier() and key == key.lower() else "_".join(words(key)) or "value"
    if name[0].isdigit():
        name = f"n_{name}"
    while keyword.iskeyword(name) or name in RESERVED or name in taken or name in _scopes.known_fields():
        name += "_"
    taken.add(name)
    return name


def _class_name(key: str, taken: set[str], fallback: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", key)
    name = "".join(w[:1].upper() + w[1:] for w in words) or fallback
    if name[0].isdigit():
        name = f"{fallback}{name}"
    while name in taken or keyword.iskeyword(name):
        name += "_"
    taken.add(name)
    return name


def _member_name(key: str, taken: set[str]) -> str:
    name = "_".join(re.findall(r"[A-Za-z0-9]+", key)).upper() or "EVENT"
    if name[0].isdigit():
        name = f"E_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


@dataclass
class _Source:
    lines: list[str]
    imports: set[str]


def scope_keys(rule: Rule) -> dict[str, str] | None:
    """The scope fields' wire keys of a rule this tool exported (``x-scope`` names a defined scope and its
    last properties are that scope's fields, as ``rule_of`` writes them), else None."""
    name = rule.scope
    if name is None or name == "user" or name not in _scopes.scopes():
        return None
    fields = _scopes.get_scope(name).property_fields
    props, required = rule.body.get("properties"), rule.body.get("required")
    if not isinstance(props, dict) or not isinstance(required, list):
        return None
    note = f"scope field of {name!r}"
    # rule_of requires the scope's fields last, in the scope's order; a file may have sorted the properties.
    keys = [k for k in required if isinstance(props.get(k), dict) and props[k].get("description") == note]
    if len(keys) != len(fields) or sum(
        isinstance(v, dict) and v.get("description") == note for v in props.values()
    ) != len(keys):
        return None
    return dict(zip(fields, keys, strict=True))


def _property_lines(rule: Rule, out: _Source, scoped: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    taken: set[str] = set()
    props: Schema = rule.body.get("properties", {}) if isinstance(rule.body.get("properties"), dict) else {}
    if scoped:  # filled from the bound scope, not declared
        props = {k: v for k, v in props.items() if k not in scoped.values()}
    required = set(rule.body.get("required", []) if isinstance(rule.body.get("required"), list) else [])
    for key, raw in props.items():
        schema = {k: v for k, v in raw.items() if k != "description"} if isinstance(raw, dict) else {}
        doc = raw.get("description") if isinstance(raw, dict) else None
        kind, extra = annotation_of(schema)
        text = kind.text
        if extra:
            text = f"Annotated[{text}, {extra!r}]"
            out.imports.add("Annotated")
        for name in ("Any", "Literal"):
            if name in text:
                out.imports.add(name)
        if "datetime." in text:
            out.imports.add("datetime")
        if "uuid." in text:
            out.imports.add("uuid")
        args: list[str] = []
        if key not in required:
            nullable = annotation_schema(kind.obj) == {} or typing.Optional[kind.obj] == kind.obj  # noqa: UP045
            origin = typing.get_origin(kind.obj) or kind.obj
            if nullable:
                args.append("default=None")
            elif origin in (list, dict) and _empty_fits(extra):
                args.append(f"default_factory={origin.__name__}")
            elif kind.obj in _ZERO and _empty_fits(extra):
                args.append(f"default={_ZERO[kind.obj]}")
            else:  # no empty value of this type: the plan's "optional" is kept in __plan__ (see the residual)
                args.append("default=None")
                # Inside Annotated: a union would hash the metadata dict.
                text = f"Annotated[{kind.text} | None, {extra!r}]" if extra else f"{text} | None"
        name = _python_name(key, taken)
        if name != key:
            args.append(f"key={key!r}")
        if isinstance(doc, str):
            args.append(f"doc={doc!r}")
        if args == ["default=None"] or (len(args) == 1 and args[0].startswith("default=") and "factory" not in args[0]):
            lines.append(f"    {name}: {text} = {args[0].removeprefix('default=')}")
        elif args:
            out.imports.add("field")
            lines.append(f"    {name}: {text} = field({', '.join(args)})")
        else:
            lines.append(f"    {name}: {text}")
    return lines


def module_source(
    plan: Plan, fmt: str, kept: dict[str, dict[str, Any]] | None = None, shared: dict[str, Any] | None = None
) -> str:
    """The Python module of ``plan``: a catalog, a Track class per TRACK rule, an Identify class per IDENTIFY
    rule, a Group, Page, Screen or Alias class per rule of those types. ``kept`` maps a rule label to its
    ``__plan__`` (what the classes do not imply); ``shared`` is the body residual every track shares, kept
    once on a base class of them."""
    kept = kept or {}
    out = _Source([], {"EventName", "Track"})
    tracks = [r for r in plan.rules if r.type == "TRACK"]
    identifies = [r for r in plan.rules if r.type == "IDENTIFY"]
    # Names the module itself uses (a class named like a base would hide it).
    classes: set[str] = {"Events", "PlannedTrack", "LEGACY", "SHARED_PLAN", "Identify", "Track", *_BASE_NAMES}
    members: set[str] = set()
    body: list[str] = []
    renames, scoped = _renames(tracks)
    keywords = f", wire_keys={renames!r}" if renames else ""
    catalog = ["", "", f"class Events(EventName, legacy=LEGACY{keywords}):", '    """The events of the plan."""', ""]
    legacy: list[str] = []
    for rule in tracks:
        member = _member_name(rule.key, members)
        catalog.append(f"    {member} = {rule.key!r}")
        try:
            check_event_name(rule.key)
        except EventNameError:
            legacy.append(rule.key)
        name = _class_name(rule.key, classes, "Event")
        scope = f', scope="{rule.scope}"' if rule.label() in scoped else ""
        base = "PlannedTrack" if shared else "Track"
        body += ["", "", f"class {name}({base}, event=Events.{member}{scope}):"]
        body += _class_body(rule, kept.get(rule.label()), out, scoped.get(rule.label()))
    for rule in identifies:
        out.imports.add("Identify")
        name = _class_name(rule.key or "Traits", classes, "Traits")
        body += ["", "", f"class {name}(Identify):"]
        body += _class_body(rule, kept.get(rule.label()), out)
    for rule in [r for r in plan.rules if r.type in _CALL_BASES]:
        body += _call_class(rule, kept.get(rule.label()), out, classes)
    header = [
        f'"""The tracking plan imported by `instrument plan import` from {_safe(Path(plan.origin).name)} ({fmt}).',
        "",
        f"`instrument plan export <this module> --format {fmt}` writes the same plan back.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    stdlib = sorted(m for m in ("datetime", "uuid") if m in out.imports)
    header += [f"import {m}" for m in stdlib]
    # Any always: __plan_meta__ is annotated with it.
    typing_names = sorted({"Any", *(n for n in ("Annotated", "Literal") if n in out.imports)})
    header += [f"from typing import {', '.join(typing_names)}", ""]
    names = sorted(n for n in ("EventName", "Identify", "Track", "field", *_BASE_NAMES) if n in out.imports)
    header += [f"from instrument import {', '.join(names)}", ""]
    header += [f"__plan_meta__: dict[str, Any] = {_literal(plan.meta, 0, 34)}", ""]
    header.append(f"LEGACY: frozenset[str] = frozenset({_literal(sorted(legacy), 0, 37)})")
    header.append('"""Event names kept as the plan spells them, outside the "[Noun] [Verb]" convention."""')
    if not tracks:
        catalog = []
    if shared:
        catalog += [
            "",
            f"SHARED_PLAN: dict[str, Any] = {_literal({'body': shared}, 0, 30)}",
            '"""What the rules of all the events say beyond their properties (the base class keeps it)."""',
            "",
            "",
            "class PlannedTrack(Track):",
            '    """The base of the events."""',
            "",
            "    __plan__ = SHARED_PLAN",
        ]
    return "\n".join([*header, *catalog, *body]) + "\n"


def _safe(text: str) -> str:
    """Text for inside a docstring: no quote or backslash can end it early."""
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in text)


def _docstring(text: str) -> str:
    """A triple-quoted docstring when it reads back as the text (``describe`` cleans docstrings), else its
    repr (a string literal all the same)."""
    plain = '"' not in text and "\\" not in text and all(line.isprintable() for line in text.split("\n"))
    indented = text.replace("\n", "\n    ").replace("\n    \n", "\n\n").replace("\n    \n", "\n\n")
    if plain and text and inspect.cleandoc(indented) == text:
        return f'"""{indented}"""'
    return repr(text)


def _literal(value: Any, indent: int, used: int = 0) -> str:
    """A Python literal of JSON-like data, one item a line where it does not fit on one (as formatters do);
    ``used`` is how much of its first line is taken already."""
    flat = repr(value)
    if len(flat) + max(indent, used) <= _WIDTH or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{key!r}: {_literal(item, indent + 4)}," for key, item in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{_literal(item, indent + 4)}," for item in value]
    return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"


_WIDTH = 100


def _renames(tracks: list[Rule]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The catalog's scope-field renames, and the scope keys of each rule declared with its scope (a rule
    whose renames disagree with the others' stays unscoped: one process sends one wire format)."""
    renames: dict[str, str] = {}
    scoped: dict[str, dict[str, str]] = {}
    for rule in tracks:
        keys = scope_keys(rule)
        if keys is None:
            continue
        own = {f: k for f, k in keys.items() if k != _scopes.default_wire_key(f)}
        if any(renames.get(f, k) != k for f, k in own.items()) or any(
            renames.get(f) not in (None, k) for f, k in keys.items()
        ):
            continue
        renames.update(own)
        scoped[rule.label()] = keys
    return renames, scoped


#: The base of a group, page, screen or alias rule's class; a group's by the scope its groupId is of.
_CALL_BASES = {"GROUP": "Group", "PAGE": "Page", "SCREEN": "Screen", "ALIAS": "Alias"}
_GROUP_BASES = {"project": "ProjectGroup", "cluster": "ClusterGroup", "registry": "RegistryGroup"}
_BASE_NAMES = ("Alias", "ClusterGroup", "Group", "Page", "ProjectGroup", "RegistryGroup", "Screen")


def _call_class(rule: Rule, kept: dict[str, Any] | None, out: _Source, classes: set[str]) -> list[str]:
    """The class of a GROUP, PAGE, SCREEN or ALIAS rule (a page's name as its ``name=``, its scope as
    ``scope=``; a group on the base of its scope; an alias declares no property)."""
    base = _CALL_BASES[rule.type]
    keywords = ""
    scoped = None
    if rule.type == "GROUP":
        base = _GROUP_BASES.get(rule.scope or "", base)
    elif rule.type in ("PAGE", "SCREEN"):
        keywords = f", name={rule.key!r}" if rule.key else ""
        scoped = scope_keys(rule)
        if scoped is not None and not set(scoped.items()) - set(_default_keys(scoped)):
            keywords += f", scope={rule.scope!r}"
        else:
            scoped = None
    out.imports.add(base)
    fallback = rule.type.title()
    name = _class_name(rule.key or fallback, classes, fallback)
    declared = replace(rule, body={}) if rule.type == "ALIAS" else rule
    return ["", "", f"class {name}({base}{keywords}):", *_class_body(declared, kept, out, scoped)]


def _default_keys(scoped: dict[str, str]) -> list[tuple[str, str]]:
    return [(f, _scopes.default_wire_key(f)) for f in scoped]


def _class_body(
    rule: Rule, kept: dict[str, Any] | None, out: _Source, scoped: dict[str, str] | None = None
) -> list[str]:
    lines = [f"    {_docstring(rule.doc)}"] if rule.doc is not None else []
    if kept:
        assignment = f"    __plan__ = {_literal(kept, 4, 15)}"
        lines += ["", assignment] if lines else [assignment]
    props = _property_lines(rule, out, scoped)
    if props:
        lines += ["", *props] if lines else props
    return lines or ["    pass"]


def declared_rules(source: str, name: str) -> dict[str, Rule]:
    """The rules the classes of generated ``source`` declare (run as module ``name``, then forgotten)."""
    module = types.ModuleType(name)
    module.__file__ = f"<plan import {name}>"
    sys.modules[name] = module  # annotations resolve in the module's namespace
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        rules: dict[str, Rule] = {}
        for obj in vars(module).values():
            if is_planned_class(obj) and obj.__module__ == name:
                rule = rule_of(describe_class(obj))
                rules[rule.label()] = rule
        return rules
    finally:
        del sys.modules[name]


def _kept(source: Rule, derived: Rule | None) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    if source.version != "1-0-0":
        kept["version"] = source.version
    if derived is not None and derived.doc != source.doc:  # a docstring is cleaned: keep the text as it is
        kept["doc"] = source.doc
    if source.type in ("IDENTIFY", "GROUP", "ALIAS") and (derived is None or derived.key != source.key):
        kept["key"] = None if source.null_key else source.key
    if derived is not None:
        body = residual(derived.body, source.body, ("properties",))
        if body:
            kept["body"] = body
    if source.schema_extra:
        kept["schema"] = source.schema_extra
    return kept


def import_plan(source: str, module_name: str = "imported_plan") -> tuple[str, str]:
    """The format of ``source`` and the text of a Python module declaring its plan. Raises PlanError,
    also when the module would not export back to the same plan (a bug: please report it)."""
    fmt, plan = read_foreign(source)
    first = declared_rules(module_source(plan, fmt), module_name)
    kept = {rule.label(): _kept(rule, first.get(_label_in(rule, first))) for rule in plan.rules}
    shared = _shared([kept[r.label()] for r in plan.rules if r.type == "TRACK"])
    for rule in plan.rules:
        body = kept[rule.label()].get("body", {})
        if rule.type == "TRACK" and shared:
            body = {k: v for k, v in body.items() if k not in shared}
            kept[rule.label()] = {k: v for k, v in kept[rule.label()].items() if k != "body"} | (
                {"body": body} if body else {}
            )
    text = module_source(plan, fmt, {label: k for label, k in kept.items() if k}, shared)
    final = declared_rules(text, module_name)
    mismatched = [r.label() for r in plan.rules if _same(r, final.get(r.label())) is False]
    if mismatched:
        raise PlanError(f"{source}: the generated module would not export {mismatched[0]!r} back unchanged")
    return fmt, text


def _shared(kept: list[dict[str, Any]]) -> dict[str, Any]:
    """The body residual items (not properties) every track keeps alike, to keep once on a base class."""
    bodies = [k.get("body", {}) for k in kept]
    if len(bodies) < 2:
        return {}
    first = bodies[0]
    return {
        key: value
        for key, value in first.items()
        if key != "properties" and all(key in b and b[key] == value for b in bodies[1:])
    }


def _label_in(rule: Rule, declared: dict[str, Rule]) -> str:
    prefix = rule.type.lower()
    if rule.type in ("IDENTIFY", "GROUP", "ALIAS") and rule.label() not in declared:
        return next((label for label in declared if label.startswith(prefix)), rule.label())
    return rule.label()


def _same(source: Rule, made: Rule | None) -> bool:
    return (
        made is not None
        and made.body == source.body
        and made.doc == source.doc
        and made.version == source.version
        and made.message_schema() == source.message_schema()
    )
