"""The tracking plan: rules derived from the Track/Identify classes of a module, or read from a file.

A ``Rule`` is one event (TRACK) or one set of traits (IDENTIFY) with the JSON Schema of its body (the
message's ``properties`` or ``traits`` object). Export formats, diff, check and the collector all work
on this one form.

Routing is declared once: the ``Destination`` objects the app passes to ``configure(destinations=...)``
are found in the planned module and its submodules, as module-level ``Destination`` instances or the items
of a module-level list or tuple named ``DESTINATIONS``. Each rule then records which destinations get it
and under which name, decided by ``Destination.accepts`` and ``Destination.transform`` (the methods
delivery uses), consent aside: consent is a per-user fact, shown per destination.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from instrument import AnalyticsError, EventName, EventSchema, Track, _records, describe
from instrument.destinations import Destination
from instrument.plan._types import Inexpressible, Schema, annotation_schema

RuleType = Literal["TRACK", "IDENTIFY", "GROUP", "PAGE", "SCREEN", "ALIAS", "COMMON"]
#: The order rules are kept in, by type.
RULE_ORDER = {"TRACK": 0, "IDENTIFY": 1, "GROUP": 2, "PAGE": 3, "SCREEN": 4, "ALIAS": 5, "COMMON": 6}
_ORDER = RULE_ORDER
#: The rule type of each call a class declares.
RULE_TYPES: dict[str, RuleType] = {
    "track": "TRACK",
    "identify": "IDENTIFY",
    "group": "GROUP",
    "page": "PAGE",
    "screen": "SCREEN",
    "alias": "ALIAS",
}


def body_key_of(rule_type: str) -> str:
    """The message's object a rule's body describes: ``traits`` (identify, group), else ``properties``
    (an ALIAS rule's body is the whole message: its ids)."""
    return "traits" if rule_type in ("IDENTIFY", "GROUP") else "properties"


#: The body of every alias rule: an alias sends its two ids and nothing else of its own.
ALIAS_BODY: Schema = {
    "type": "object",
    "properties": {"previousId": {"type": "string"}, "userId": {"type": "string"}},
    "required": ["previousId", "userId"],
}
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# Drafts a plan file may declare; the export always writes draft-07.
KNOWN_DRAFTS = frozenset(
    {DRAFT_07, "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft-07/schema#"}
)
#: The extension keyword carrying a rule's scope, so that a diff can tell a scope change.
SCOPE_KEYWORD = "x-scope"
#: The extension keyword flagging a property marked ``Personal`` (hashed or omitted per destination).
PERSONAL_KEYWORD = "x-personal"
#: The extension keyword listing the destinations a rule's messages go to: ``[{"name", "event"}]``.
DESTINATIONS_KEYWORD = "x-destinations"
#: The module attribute a module may list its destinations in (else its ``Destination`` instances count).
DESTINATIONS_ATTRIBUTE = "DESTINATIONS"
#: The class attribute keeping what an imported plan says that the class does not imply (``plan import``
#: writes it): ``{"version": "1-0-2", "key": None, "doc": "...", "body": {...}, "schema": {...}}``.
PLAN_ATTRIBUTE = "__plan__"
#: The module attribute keeping a plan document's own facts (Typewriter's names, the Iglu vendor, ...).
PLAN_META_ATTRIBUTE = "__plan_meta__"


def residual(derived: Any, source: Any, nested: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keywords that turn ``derived`` into ``source`` (None removes one); ``nested`` keys recurse once."""
    out: dict[str, Any] = {key: None for key in derived if key not in source}
    for key, value in source.items():
        if key in nested and isinstance(value, dict) and isinstance(derived.get(key), dict):
            inner = residual(derived[key], value)
            if inner:
                out[key] = inner
        elif key not in derived or derived[key] != value:
            out[key] = value
    return out


def apply_residual(derived: dict[str, Any], over: Any, nested: tuple[str, ...] = ()) -> dict[str, Any]:
    """``derived`` with ``over`` (a ``residual``) applied."""
    if not isinstance(over, dict):
        return derived
    result = dict(derived)
    for key, value in over.items():
        if value is None:
            result.pop(key, None)
        elif key in nested and isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = apply_residual(result[key], value)
        else:
            result[key] = value
    return result


class PlanError(AnalyticsError):
    """Bad input to the plan tools: a module that fails to import, a file that is not a plan, a type
    that cannot be expressed. The message names the file, class or field; the CLI exits 2 with it."""


@dataclass(frozen=True)
class Rule:
    """One planned event (TRACK, keyed by event name), identify or group (IDENTIFY, GROUP, keyed by class
    name), page or screen (PAGE, SCREEN, keyed by name, "" for every page) or alias (ALIAS, by class name).

    COMMON rules (Segment's rules for every event) are read from files and compared, not enforced."""

    type: RuleType
    key: str
    body: Schema  # the schema of the message's properties or traits object (ALIAS: of the message)
    doc: str | None = None
    source: tuple[str, int] | None = field(default=None, compare=False)
    cls_name: str | None = field(default=None, compare=False)
    #: The rule's SchemaVer (MODEL-REVISION-ADDITION): read from a plan file, 1-0-0 for code.
    version: str = field(default="1-0-0", compare=False)
    #: Keywords of the whole-message schema beyond the derived ones (Segment's ``labels``, ...), as a residual.
    schema_extra: dict[str, Any] = field(default_factory=dict, compare=False)
    #: Segment writes some IDENTIFY and COMMON keys as null.
    null_key: bool = field(default=False, compare=False)
    #: The destinations this rule's messages go to, as (destination name, event name it gets there; the
    #: rule's key where nothing is renamed), or None when the plan declares no destinations.
    destinations: tuple[tuple[str, str], ...] | None = field(default=None, compare=False)

    @property
    def body_key(self) -> str:
        """``traits`` for an identify or group, else ``properties``."""
        return body_key_of(self.type)

    @property
    def model(self) -> int:
        """The MODEL part of the version: Segment's rule ``version``."""
        return int(self.version.split("-")[0])

    @property
    def scope(self) -> str | None:
        """The scope's name, when the plan records it."""
        value = self.body.get(SCOPE_KEYWORD)
        return value if isinstance(value, str) else None

    def message_schema(self) -> Schema:
        """The draft-07 schema a whole Segment message of this rule satisfies (Segment's rule shape; an
        alias rule's body is already the message's)."""
        if self.type == "ALIAS":
            whole: Schema = {"$schema": DRAFT_07, **self.body}
            if self.doc:
                whole["description"] = self.doc
            return apply_residual(whole, self.schema_extra, ("properties",))
        schema: Schema = {
            "$schema": DRAFT_07,
            "type": "object",
            "properties": {"context": {}, "traits": {}, "properties": {}, self.body_key: self.body},
            "required": [self.body_key],
        }
        if self.doc:
            schema["description"] = self.doc
        return apply_residual(schema, self.schema_extra, ("properties",))

    def label(self) -> str:
        """How people name the rule: the event name, or ``identify <ClassName>``."""
        return self.key if self.type == "TRACK" else f"{self.type.lower()} {self.key}".rstrip()


@dataclass(frozen=True)
class Plan:
    """Rules in a stable order (tracks by event name, then identifies by name), and where they came from."""

    rules: tuple[Rule, ...]
    origin: str
    #: Facts of the plan document itself, by format (``typewriter``, ``iglu``, ``rudder``), kept for export.
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The module's destinations, each as ``Destination.describe()`` gives it, by name.
    destinations: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def find(self, rule_type: RuleType, key: str) -> Rule | None:
        """The rule of that type and key, or None."""
        for rule in self.rules:
            if rule.type == rule_type and rule.key == key:
                return rule
        return None


def _sorted_rules(rules: list[Rule]) -> tuple[Rule, ...]:
    return tuple(sorted(rules, key=lambda r: (_ORDER[r.type], r.key)))


# -- from code -------------------------------------------------------------------------------------


def import_module(name: str) -> ModuleType:
    """Import ``name``. Raises PlanError with the import's own error (last frame only), never a traceback."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules of the current directory are importable
    try:
        return importlib.import_module(name)
    except Exception as error:
        # Where in the user's code it failed: the last frame outside the import machinery.
        frames = [f for f in traceback.extract_tb(error.__traceback__) if not _is_machinery(f.filename)]
        where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        raise PlanError(f"module {name!r} failed to import: {type(error).__name__}: {error}{where}") from None


def _is_machinery(filename: str) -> bool:
    return filename.startswith("<frozen") or filename == __file__ or "importlib" in Path(filename).parts


def walk_modules(root: ModuleType) -> Iterator[ModuleType]:
    """``root`` and, for a package, every submodule (imported). Raises PlanError for one that fails."""
    yield root
    path = getattr(root, "__path__", None)
    if path is None:
        return
    for info in sorted(pkgutil.walk_packages(path, root.__name__ + "."), key=lambda i: i.name):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # running a package's __main__ is not importing it
        yield import_module(info.name)


def is_planned_class(obj: object) -> bool:
    """A concrete Track (one with an event) or a subclass of another call's base (Identify, Group, Page,
    Screen, Alias); not the bases, not ad-hoc tracks."""
    if not isinstance(obj, type) or not issubclass(obj, _records._Record) or obj.__dict__.get("_machinery", False):
        return False
    if obj.__dict__.get("_free_form", False):
        return False
    return not issubclass(obj, Track) or getattr(obj, "_event", None) is not None


def is_catalog(obj: object) -> bool:
    """An event catalog with members (an EventName subclass), not the base itself."""
    return isinstance(obj, type) and issubclass(obj, EventName) and obj is not EventName and len(obj) > 0


@dataclass(frozen=True)
class Declarations:
    """What a module and its submodules declare: planned classes and event catalogs, each once."""

    classes: list[type]
    catalogs: list[type[EventName]]


def declarations_of(module_name: str) -> Declarations:
    """The planned classes and catalogs reachable from the module and its submodules, in a stable order.

    Raises PlanError when the module fails to import or declares neither."""
    classes: dict[int, type] = {}
    catalogs: dict[int, type[EventName]] = {}
    for module in walk_modules(import_module(module_name)):
        for obj in vars(module).values():
            if is_planned_class(obj):
                classes.setdefault(id(obj), obj)
            elif is_catalog(obj):
                catalogs.setdefault(id(obj), obj)
    if not classes and not catalogs:
        raise PlanError(
            f"module {module_name!r} (with its submodules) declares no Track or Identify classes and no event catalog"
        )
    return Declarations(sorted(classes.values(), key=_order), sorted(catalogs.values(), key=_order))


def _order(cls: type) -> tuple[str, str]:
    return cls.__module__, cls.__qualname__


def classes_of(module_name: str) -> list[type]:
    """Every planned class reachable from the module and its submodules, each once, in a stable order."""
    return declarations_of(module_name).classes


def describe_class(cls: type) -> EventSchema:
    """``describe(cls)``, with its errors turned into PlanError naming the file, line and class."""
    try:
        return describe(cls)
    except (AnalyticsError, NameError, TypeError) as error:
        text = str(error)
        if not text.startswith(cls.__qualname__):
            text = f"{cls.__qualname__}: {text}"
        raise PlanError(f"{_location(cls)}: {text}") from None


def _location(cls: type) -> str:
    source = source_of(cls)
    return f"{source[0]}:{source[1]}" if source else cls.__module__


def _where(cls: type) -> str:
    return f"{_location(cls)}: {cls.__qualname__}"


def rule_of(desc: EventSchema) -> Rule:
    """The rule of one described class. Raises PlanError for a type the schema cannot express."""
    cls_name = desc.cls.__qualname__
    properties: Schema = {}
    required: list[str] = []
    for prop in desc.properties:
        try:
            schema = annotation_schema(prop.annotation)
        except Inexpressible as error:
            raise PlanError(f"{_where(desc.cls)}: field {prop.name!r}: type cannot be expressed: {error}") from None
        if prop.doc:
            schema = {**schema, "description": prop.doc}
        if prop.personal:  # personal data: destinations hash or omit it
            schema = {**schema, PERSONAL_KEYWORD: True}
        properties[prop.key] = schema
        if prop.required and not prop.nullable:
            required.append(prop.key)
    for scope_field in desc.scope_fields:
        if scope_field.is_user_id or desc.kind in ("group", "alias"):
            continue  # the message's userId (a group's groupId), never a property
        typed = scope_field.annotation is not Any  # a scope field declared without a type takes any value
        schema = {"type": ["integer", "string"]} if scope_field.is_id else {"not": {"type": "null"}}
        schema = annotation_schema(scope_field.annotation) if typed and not scope_field.is_id else schema
        properties[scope_field.key] = {
            **schema,
            "description": f"scope field of {desc.scope!r}",
        }
        required.append(scope_field.key)
    body: Schema = {"type": "object", "properties": properties, "required": required, SCOPE_KEYWORD: desc.scope}
    if not desc.free_form:
        body["additionalProperties"] = False
    kept = kept_facts(desc.cls)
    body = apply_residual(body, kept.get("body"), ("properties",))
    facts: dict[str, Any] = {
        "version": str(kept.get("version", "1-0-0")),
        "schema_extra": dict(kept.get("schema", {})),
        "null_key": "key" in kept and kept["key"] is None,
    }
    doc = kept.get("doc", desc.doc)
    if desc.kind == "alias":
        body = {**ALIAS_BODY, SCOPE_KEYWORD: desc.scope}
    rule_type = RULE_TYPES[desc.kind]
    if desc.kind in ("track", "page", "screen"):  # keyed by what the message names ("": every page)
        return Rule(rule_type, desc.event or "", body, doc, desc.source, cls_name, **facts)
    key = kept.get("key", desc.cls.__name__)
    return Rule(rule_type, key if isinstance(key, str) else "", body, doc, desc.source, cls_name, **facts)


def _tracks_uses(event: str) -> list[type[Track]]:
    """The ad-hoc Track classes ``@tracks(event, scope=...)`` made for ``event`` in this process."""
    return [cls for (name, _scope, _renames), cls in sorted(_records._adhoc.items()) if name == event]


def _catalog_rule(catalog: type[EventName], member: EventName) -> Rule:
    """The rule of a catalog event no Track class declares: from its ``@tracks`` use (its scope's fields,
    any other property) when an imported module decorates with it, else from the entry alone (any property)."""
    event = str(member)
    uses = _tracks_uses(event)
    scopes = sorted({describe(cls).scope for cls in uses})
    if len(scopes) > 1:
        raise PlanError(f"{catalog.__qualname__}.{member.name}: @tracks sends {event!r} with scopes {scopes}")
    if uses:
        return rule_of(describe(uses[0]))
    body: Schema = {"type": "object", "properties": {}, "required": []}  # nothing is known of its properties
    return Rule("TRACK", event, body, None, source_of(catalog), None)


def source_of(cls: type) -> tuple[str, int] | None:
    """(file, line) of a class's definition, when its source is known."""
    try:
        file = inspect.getsourcefile(cls)
        return (file, inspect.getsourcelines(cls)[1]) if file else None
    except (OSError, TypeError):
        return None


def kept_facts(cls: type) -> dict[str, Any]:
    """A class's ``__plan__`` over its bases' (a base may keep what all its events share); ``body`` merges."""
    kept: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get(PLAN_ATTRIBUTE)
        if not isinstance(own, dict):
            continue
        for key, value in own.items():
            if key == "body" and isinstance(value, dict) and isinstance(kept.get("body"), dict):
                kept["body"] = {**kept["body"], **value}
            else:
                kept[key] = value
    return kept


def plan_of_module(module_name: str) -> Plan:
    """The plan of every planned class reachable from ``module_name``, and of every event of its catalogs
    that no class declares (from the event's ``@tracks`` use or its catalog entry).

    Raises PlanError for an import failure, an inexpressible type, or two classes (or ``@tracks`` uses)
    for one event that disagree.
    """
    found = declarations_of(module_name)
    rules: dict[tuple[str, str], Rule] = {}
    classes: dict[tuple[str, str], type] = {}
    for cls in found.classes:
        rule = rule_of(describe_class(cls))
        classes.setdefault((rule.type, rule.key), cls)
        other = rules.get((rule.type, rule.key))
        if other is not None and other != rule:
            raise PlanError(
                f"{_where(cls)}: {rule.label()!r} is also declared by {other.cls_name} with other properties"
            )
        rules.setdefault((rule.type, rule.key), rule)
    for catalog in found.catalogs:
        for member in catalog:
            if ("TRACK", str(member)) not in rules:
                rules[("TRACK", str(member))] = _catalog_rule(catalog, member)
                uses = _tracks_uses(str(member))
                classes[("TRACK", str(member))] = uses[0] if uses else _catalog_class(member)
    meta = getattr(import_module(module_name), PLAN_META_ATTRIBUTE, None)
    destinations = destinations_of(module_name)
    if destinations:
        rules = {at: replace(rule, destinations=routing(rule, classes[at], destinations)) for at, rule in rules.items()}
    return Plan(
        _sorted_rules(list(rules.values())),
        module_name,
        dict(meta) if isinstance(meta, dict) else {},
        tuple(d.describe() for d in destinations),
    )


def destinations_of(module_name: str) -> list[Destination]:
    """The destinations the module and its submodules declare (module-level ``Destination`` instances and
    the items of a module-level ``DESTINATIONS`` list or tuple), each once, by name.

    Raises PlanError for two different destinations with one name (delivery could not tell them apart)."""
    found: dict[str, Destination] = {}
    for module in walk_modules(import_module(module_name)):
        listed = getattr(module, DESTINATIONS_ATTRIBUTE, ())
        listed = listed if isinstance(listed, (list, tuple)) else ()
        for obj in [*vars(module).values(), *listed]:
            if not isinstance(obj, Destination):
                continue
            other = found.setdefault(obj.name, obj)
            if other is not obj:
                raise PlanError(f"module {module.__name__!r}: two destinations are named {obj.name!r}")
    return [found[name] for name in sorted(found)]


def routing(rule: Rule, cls: type, destinations: list[Destination]) -> tuple[tuple[str, str], ...]:
    """Which of ``destinations`` get messages of ``cls`` (the class of ``rule``) and under which event name:
    ``Destination.accepts`` on a message of the rule's type granting every category the destination needs
    (consent is decided per user, at delivery), and the name ``Destination.transform`` gives it."""
    kind = {rule_type: call for call, rule_type in RULE_TYPES.items()}.get(rule.type, "track")
    routed: list[tuple[str, str]] = []
    for destination in destinations:
        granted = dict.fromkeys(destination.consent, True)
        message = {"type": kind, "event": rule.key, "context": {"consent": {"categoryPreferences": granted}}}
        if destination.accepts(cls, message):
            routed.append((destination.name, str(destination.transform(message, frozenset())["event"])))
    return tuple(routed)


def _catalog_class(member: EventName) -> type:
    """What a catalog event that no class and no ``@tracks`` use declares is routed as: its name alone
    (no Track base, no scope), like ``Destination.routes`` sees it."""
    return type(f"Event[{member}]", (), {"_event": member, "_scope_name": None})


# -- from files ------------------------------------------------------------------------------------


def load_plan(source: str) -> Plan:
    """A plan from a file (Segment rules, Typewriter's plan.json, rudder-cli YAML, an Iglu schema or the
    jsonschema export), a directory of Iglu schemas, or an importable module name.

    A source naming an existing file or directory, or ending in ``.json``, is a file. Raises PlanError.
    """
    path = Path(source)
    if path.is_dir() or path.suffix in (".yaml", ".yml"):
        from instrument.plan._import import read_foreign

        return read_foreign(source)[1]
    if source.endswith(".json") or path.is_file():
        return plan_of_file(path)
    return plan_of_module(source)


def read_document(path: Path) -> tuple[str, Any]:
    """An exported plan file's text and its parsed JSON. Raises PlanError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlanError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return text, json.loads(text)
    except ValueError as error:
        raise PlanError(f"{path}: not JSON: {error}") from None


def plan_of_file(path: Path) -> Plan:
    """Read an exported plan. Raises PlanError naming the file for anything that is not one."""
    _, data = read_document(path)
    if isinstance(data, dict) and (isinstance(data.get("rules"), dict) or isinstance(data.get("self"), dict)):
        from instrument.plan._import import read_foreign  # Typewriter's plan.json, an Iglu schema

        return read_foreign(str(path))[1]
    return plan_of_document(data, str(path))


def plan_of_document(data: Any, origin: str) -> Plan:
    """A plan from parsed JSON (segment shape ``{"rules": [...]}``, also as the Public API's list answer
    ``{"data": {"rules": [...]}}``, or jsonschema shape). Raises PlanError."""
    wrapped = data.get("data") if isinstance(data, dict) else None
    if isinstance(wrapped, dict) and isinstance(wrapped.get("rules"), list):
        data = wrapped
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        rules = [_segment_rule(item, f"{origin}: rules[{i}]") for i, item in enumerate(data["rules"])]
    elif isinstance(data, dict) and isinstance(data.get("events"), dict):
        rules = [_plain_rule(key, item, f"{origin}: events[{key!r}]") for key, item in data["events"].items()]
    else:
        raise PlanError(f'{origin}: not a plan (expected {{"rules": [...]}} or {{"events": {{...}}}})')
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        if (rule.type, rule.key) in seen:
            raise PlanError(f"{origin}: duplicate rule {rule.type} {rule.key!r}")
        seen.add((rule.type, rule.key))
    return Plan(_sorted_rules(rules), origin)


def _check_draft(schema: dict[str, Any], where: str) -> None:
    draft = schema.get("$schema")
    if draft is not None and draft not in KNOWN_DRAFTS:
        raise PlanError(f"{where}: unknown JSON Schema draft {draft!r} (expected {DRAFT_07!r})")


def _body(schema: Any, body_key: str, where: str) -> Schema:
    if not isinstance(schema, dict):
        raise PlanError(f"{where}: jsonSchema is not an object")
    _check_draft(schema, where)
    props = schema.get("properties", {})
    body = props.get(body_key) if isinstance(props, dict) else None
    if body is None:
        return {"type": "object"}
    if not isinstance(body, dict):
        raise PlanError(f"{where}: properties.{body_key} is not a schema object")
    return body


def _segment_rule(item: Any, where: str) -> Rule:
    if not isinstance(item, dict):
        raise PlanError(f"{where}: a rule must be an object")
    rule_type = item.get("type")
    key = item.get("key")
    if rule_type not in _ORDER:
        raise PlanError(f"{where}: rule type {rule_type!r} is not one of {', '.join(_ORDER)}")
    null_key = key is None and rule_type != "TRACK"
    if not (isinstance(key, str) or null_key) or (rule_type == "TRACK" and not key):
        raise PlanError(f"{where}: rule key must be a non-empty string")
    version = item.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PlanError(f"{where} ({key}): version must be a positive integer")
    return rule_of_schema(rule_type, key or "", item.get("jsonSchema"), f"{version}-0-0", where, null_key=null_key)


def rule_of_schema(
    rule_type: RuleType,
    key: str,
    schema: Any,
    version: str,
    where: str,
    *,
    null_key: bool = False,
    doc_inside: bool = True,
) -> Rule:
    """A rule from a Segment-shaped whole-message schema, keeping what it says beyond the derived shape."""
    if rule_type == "ALIAS":  # the body is the message's schema itself
        _check_draft(schema if isinstance(schema, dict) else {}, where)
        body = (
            {k: v for k, v in schema.items() if k not in ("$schema", "description")} if isinstance(schema, dict) else {}
        )
    else:
        body = _body(schema, body_key_of(rule_type), f"{where} ({key})")
    doc = schema.get("description") if doc_inside and isinstance(schema, dict) else None
    rule = Rule(rule_type, key, body, doc if isinstance(doc, str) else None, version=version, null_key=null_key)
    if isinstance(schema, dict):
        extra = residual(rule.message_schema(), schema, ("properties",))
        rule = replace(rule, schema_extra=extra)
    return rule


def _plain_rule(key: str, schema: Any, where: str) -> Rule:
    if not isinstance(schema, dict):
        raise PlanError(f"{where}: not a schema object")
    _check_draft(schema, where)
    props = schema.get("properties")
    kind = props.get("type", {}).get("const") if isinstance(props, dict) else None
    if kind not in RULE_TYPES:
        raise PlanError(f"{where}: properties.type.const must be one of {', '.join(map(repr, RULE_TYPES))}")
    rule_type = RULE_TYPES[kind]
    doc = schema.get("description")
    title = schema.get("title")  # the rule's key; the document's own key is a label ("identify X")
    key = title if isinstance(title, str) else key
    if rule_type == "ALIAS":
        body = {k: v for k, v in schema.items() if k not in ("$schema", "description", "title", DESTINATIONS_KEYWORD)}
        body = {**body, "properties": {k: v for k, v in body.get("properties", {}).items() if k != "type"}}
        body["required"] = [k for k in body.get("required", []) if k != "type"]
    else:
        body = _body(schema, body_key_of(rule_type), where)
    routed = _routed(schema.get(DESTINATIONS_KEYWORD), key, f"{where}: {DESTINATIONS_KEYWORD}")
    return Rule(rule_type, key, body, doc if isinstance(doc, str) else None, destinations=routed)


def _routed(value: Any, key: str, where: str) -> tuple[tuple[str, str], ...] | None:
    """A rule's ``x-destinations`` as the export writes it (``[{"name", "event"}]``), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("event", key), str)
        for item in value
    ):
        raise PlanError(f'{where}: expected a list of {{"name": ..., "event": ...}} objects')
    return tuple((item["name"], item.get("event", key)) for item in value)
