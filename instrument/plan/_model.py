"""The tracking plan: rules derived from the Track/Identify classes of a module, or read from a file.

A ``Rule`` is one event (TRACK) or one set of traits (IDENTIFY) with the JSON Schema of its body (the
message's ``properties`` or ``traits`` object). Export formats, diff, check and the collector all work
on this one form.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from instrument import AnalyticsError, EventSchema, Identify, Track, describe
from instrument.plan._types import Inexpressible, Schema, annotation_schema

RuleType = Literal["TRACK", "IDENTIFY", "COMMON"]
_ORDER = {"TRACK": 0, "IDENTIFY": 1, "COMMON": 2}
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# Drafts a plan file may declare; the export always writes draft-07.
KNOWN_DRAFTS = frozenset(
    {DRAFT_07, "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft-07/schema#"}
)
#: The extension keyword carrying a rule's scope, so that a diff can tell a scope change.
SCOPE_KEYWORD = "x-scope"
#: The extension keyword flagging a property marked ``Personal`` (hashed or omitted per destination).
PERSONAL_KEYWORD = "x-personal"


class PlanError(AnalyticsError):
    """Bad input to the plan tools: a module that fails to import, a file that is not a plan, a type
    that cannot be expressed. The message names the file, class or field; the CLI exits 2 with it."""


@dataclass(frozen=True)
class Rule:
    """One planned event (TRACK, keyed by event name) or identify (IDENTIFY, keyed by class name).

    COMMON rules (Segment's rules for every event) are read from files and compared, not enforced."""

    type: RuleType
    key: str
    body: Schema  # the schema of the message's properties (TRACK) or traits (IDENTIFY) object
    doc: str | None = None
    source: tuple[str, int] | None = field(default=None, compare=False)
    cls_name: str | None = field(default=None, compare=False)

    @property
    def body_key(self) -> str:
        """``traits`` for an identify, else ``properties``."""
        return "traits" if self.type == "IDENTIFY" else "properties"

    @property
    def scope(self) -> str | None:
        """The scope's name, when the plan records it."""
        value = self.body.get(SCOPE_KEYWORD)
        return value if isinstance(value, str) else None

    def message_schema(self) -> Schema:
        """The draft-07 schema a whole Segment message of this rule satisfies (Segment's rule shape)."""
        schema: Schema = {
            "$schema": DRAFT_07,
            "type": "object",
            "properties": {"context": {}, "traits": {}, "properties": {}, self.body_key: self.body},
            "required": [self.body_key],
        }
        if self.doc:
            schema["description"] = self.doc
        return schema

    def label(self) -> str:
        """How people name the rule: the event name, or ``identify <ClassName>``."""
        return self.key if self.type == "TRACK" else f"{self.type.lower()} {self.key}".rstrip()


@dataclass(frozen=True)
class Plan:
    """Rules in a stable order (tracks by event name, then identifies by name), and where they came from."""

    rules: tuple[Rule, ...]
    origin: str

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
    """A concrete Track (one with an event) or an Identify subclass; not the bases, not ad-hoc tracks."""
    if not isinstance(obj, type) or obj in (Track, Identify):
        return False
    if not issubclass(obj, (Track, Identify)):
        return False
    if obj.__dict__.get("_free_form", False):
        return False
    return issubclass(obj, Identify) or getattr(obj, "_event", None) is not None


def classes_of(module_name: str) -> list[type]:
    """Every planned class reachable from the module and its submodules, each once, in a stable order."""
    seen: dict[int, type] = {}
    for module in walk_modules(import_module(module_name)):
        for obj in vars(module).values():
            if is_planned_class(obj) and id(obj) not in seen:
                seen[id(obj)] = obj
    if not seen:
        raise PlanError(f"module {module_name!r} (with its submodules) declares no Track or Identify classes")
    return sorted(seen.values(), key=lambda c: (c.__module__, c.__qualname__))


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
    try:
        file = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return cls.__module__
    return f"{file}:{line}"


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
        if scope_field.is_user_id:
            continue  # sent as the message's userId, never a property
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
    if desc.kind == "track":
        return Rule("TRACK", str(desc.event), body, desc.doc, desc.source, cls_name)
    return Rule("IDENTIFY", desc.cls.__name__, body, desc.doc, desc.source, cls_name)


def plan_of_module(module_name: str) -> Plan:
    """The plan of every planned class reachable from ``module_name``.

    Raises PlanError for an import failure, an inexpressible type, or two classes for one event that
    disagree.
    """
    rules: dict[tuple[str, str], Rule] = {}
    for cls in classes_of(module_name):
        rule = rule_of(describe_class(cls))
        other = rules.get((rule.type, rule.key))
        if other is not None and other != rule:
            raise PlanError(
                f"{_where(cls)}: {rule.label()!r} is also declared by {other.cls_name} with other properties"
            )
        rules.setdefault((rule.type, rule.key), rule)
    return Plan(_sorted_rules(list(rules.values())), module_name)


# -- from files ------------------------------------------------------------------------------------


def load_plan(source: str) -> Plan:
    """A plan from an exported file (segment or jsonschema format) or from an importable module name.

    A source naming an existing file, or ending in ``.json``, is a file. Raises PlanError.
    """
    if source.endswith(".json") or Path(source).is_file():
        return plan_of_file(Path(source))
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
    return plan_of_document(data, str(path))


def plan_of_document(data: Any, origin: str) -> Plan:
    """A plan from parsed JSON (segment shape ``{"rules": [...]}`` or jsonschema shape). Raises PlanError."""
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
        raise PlanError(f"{where}: rule type {rule_type!r} is not TRACK, IDENTIFY or COMMON")
    if not isinstance(key, str) or (rule_type == "TRACK" and not key):
        raise PlanError(f"{where}: rule key must be a non-empty string")
    body_key = "traits" if rule_type == "IDENTIFY" else "properties"
    schema = item.get("jsonSchema")
    body = _body(schema, body_key, f"{where} ({key})")
    doc = schema.get("description") if isinstance(schema, dict) else None
    return Rule(rule_type, key, body, doc if isinstance(doc, str) else None)


def _plain_rule(key: str, schema: Any, where: str) -> Rule:
    if not isinstance(schema, dict):
        raise PlanError(f"{where}: not a schema object")
    _check_draft(schema, where)
    props = schema.get("properties")
    kind = props.get("type", {}).get("const") if isinstance(props, dict) else None
    if kind not in ("track", "identify"):
        raise PlanError(f"{where}: properties.type.const must be 'track' or 'identify'")
    rule_type: RuleType = "TRACK" if kind == "track" else "IDENTIFY"
    body_key = "properties" if kind == "track" else "traits"
    doc = schema.get("description")
    title = schema.get("title")  # the rule's key; the document's own key is a label ("identify X")
    key = title if isinstance(title, str) and title else key
    return Rule(rule_type, key, _body(schema, body_key, where), doc if isinstance(doc, str) else None)
