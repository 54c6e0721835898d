"""Lint a module's Track and Identify classes: naming, duplicates, type drift, personal data, docstrings.

Each finding is ``file:line: CODE message``. Codes:

- ``IN001`` a property key that is not snake_case (the convention the catalog's checks use for fields)
- ``IN002`` two classes declare the same event (the duplicate a catalog refuses at definition)
- ``IN003`` names (events or properties) that differ only in case, spaces, ``_`` or ``-``
- ``IN004`` the same property key with different types in different events
- ``IN005`` likely personal data in a track, page or screen property (send it as an identify trait), any casing
  (``userEmail``, ``shipping_address``); reported once, at the class declaring the field;
  ``__personal_data__ = {"email"}`` on a class (or a base) acknowledges keys it sends on purpose
- ``IN006`` a class without a docstring (the catalog's description comes from it)
"""

from __future__ import annotations

import inspect
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from instrument.plan._model import classes_of, describe_class, rule_of, source_of
from instrument.plan._types import Schema, type_text

_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
# A key's words: snake_case, kebab-case, camelCase and PascalCase all split (``userEmail`` -> user, email).
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+")
# A key whose last word is one of these usually holds personal data (``shipping_address``, ``userEmail``).
_PERSONAL_NOUNS = frozenset(
    {
        "email",
        "emails",
        "phone",
        "mobile",
        "address",
        "street",
        "postcode",
        "zipcode",
        "zip",
        "birthday",
        "birthdate",
        "dob",
        "ip",
        "ssn",
        "surname",
        "firstname",
        "lastname",
        "fullname",
        "username",
        "company",
    }
)
# Last two (or three) words that name a person's data; a bare ``name`` (a project's, a cluster's) is not one.
_PERSONAL_PHRASES = frozenset(
    {
        ("first", "name"),
        ("last", "name"),
        ("middle", "name"),
        ("full", "name"),
        ("given", "name"),
        ("family", "name"),
        ("user", "name"),
        ("customer", "name"),
        ("contact", "name"),
        ("person", "name"),
        ("phone", "number"),
        ("mobile", "number"),
        ("zip", "code"),
        ("postal", "code"),
        ("birth", "date"),
        ("date", "of", "birth"),
        ("social", "security", "number"),
        ("e", "mail"),
    }
)
# Trailing words that qualify a personal noun without changing it: address_line1, email2.
_QUALIFIERS = re.compile(r"line|\d+")
#: The class attribute acknowledging personal data a track sends on purpose (as ``legacy=`` is for names):
#: ``__personal_data__ = {"email"}`` on the class or a base silences IN005 for those keys.
ACKNOWLEDGED = "__personal_data__"


@dataclass(frozen=True, order=True)
class Finding:
    """One lint finding at a file and line."""

    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The finding as ``plan lint --json`` prints it."""
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}


def _relative(where: tuple[str, int]) -> tuple[str, int]:
    """A path relative to the working directory when the file is under it (shorter, and stable in CI)."""
    try:
        path = Path(where[0]).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return where
    return str(path), where[1]


def _field_line(cls: type, name: str, default: tuple[str, int]) -> tuple[str, int]:
    try:
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return default
    pattern = re.compile(rf"\s+{re.escape(name)}\s*:")
    for offset, text in enumerate(lines):
        if pattern.match(text):
            return default[0], start + offset
    return default


def words(key: str) -> list[str]:
    """The lower-case words of a key in any casing: ``shippingAddressLine1`` -> shipping, address, line, 1."""
    return [w.lower() for w in _WORDS.findall(key)]


def is_personal(key: str) -> bool:
    """True when the key's last words name personal data (an email, a person's name, an address, ...)."""
    parts = words(key)
    while len(parts) > 1 and _QUALIFIERS.fullmatch(parts[-1]):
        parts.pop()
    if not parts:
        return False
    return parts[-1] in _PERSONAL_NOUNS or any(tuple(parts[-n:]) in _PERSONAL_PHRASES for n in (2, 3))


def _acknowledged(cls: type) -> frozenset[str]:
    value = getattr(cls, ACKNOWLEDGED, ())
    return frozenset(value) if isinstance(value, (set, frozenset, list, tuple)) else frozenset()


def _declaring_class(cls: type, attribute: str) -> type:
    """The class in ``cls``'s MRO whose own annotations declare ``attribute`` (a base's field is reported there)."""
    for klass in cls.__mro__:
        if attribute in klass.__dict__.get("__annotations__", {}):
            return klass
    return cls


def _source(cls: type) -> tuple[str, int]:
    return source_of(cls) or (cls.__module__, 0)


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def _type_of(schema: Schema) -> str:
    return type_text({k: v for k, v in schema.items() if k != "description"})


def lint(module_name: str) -> list[Finding]:
    """Every finding for the planned classes reachable from ``module_name``, sorted by file and line.

    Raises PlanError when the module cannot be loaded or a class cannot be described.
    """
    findings: list[Finding] = []
    by_event: dict[str, list[tuple[str, tuple[str, int]]]] = defaultdict(list)
    key_types: dict[str, dict[str, tuple[str, str, int]]] = defaultdict(dict)
    spellings: dict[str, dict[str, tuple[str, int]]] = defaultdict(dict)
    personal: set[tuple[type, str]] = set()
    for cls in classes_of(module_name):
        desc = describe_class(cls)
        rule = rule_of(desc)
        where = _relative(desc.source or (cls.__module__, 0))
        name = cls.__qualname__
        if desc.event is not None:
            by_event[desc.event].append((name, where))
            spellings[_fold(desc.event)].setdefault(desc.event, where)
        if desc.doc is None:
            findings.append(Finding(*where, "IN006", f"{name} has no docstring (the plan's description)"))
        props: Schema = rule.body.get("properties", {})
        unsent = sorted(_acknowledged(cls).difference(p.key for p in desc.properties))
        if unsent and ACKNOWLEDGED in cls.__dict__:  # where it is written, as legacy= names must be values
            findings.append(Finding(*where, "IN005", f"{name}: {ACKNOWLEDGED} names {unsent}, which it does not send"))
        for prop in desc.properties:
            at = _field_line(cls, prop.name, where)
            if not _SNAKE.fullmatch(prop.key):
                findings.append(Finding(*at, "IN001", f"{name}.{prop.name}: key {prop.key!r} is not snake_case"))
            sent_as_property = desc.kind in ("track", "page", "screen")
            if sent_as_property and is_personal(prop.key) and prop.key not in _acknowledged(cls):
                declarer = _declaring_class(cls, prop.name)
                if (declarer, prop.name) not in personal:  # once, where it is declared
                    personal.add((declarer, prop.name))
                    declared_at = (
                        at if declarer is cls else _field_line(declarer, prop.name, _relative(_source(declarer)))
                    )
                    findings.append(
                        Finding(
                            *declared_at,
                            "IN005",
                            f"{declarer.__qualname__}.{prop.name}: {prop.key!r} looks like personal data in a track "
                            f"property; send it as an Identify trait, or acknowledge it with "
                            f"{ACKNOWLEDGED} = {{{prop.key!r}}}",
                        )
                    )
            text = _type_of(props[prop.key])
            key_types[prop.key].setdefault(text, (name, *at))
            spellings[_fold(prop.key)].setdefault(prop.key, at)
    for event, owners in by_event.items():
        if len(owners) > 1:
            declared = ", ".join(f"{owner} ({file}:{line})" for owner, (file, line) in owners)
            findings.append(Finding(*owners[1][1], "IN002", f"event {event!r} is declared by {declared}"))
    for key, types in key_types.items():
        if len(types) > 1:
            _owner, file, line = sorted(types.items())[-1][1]
            described = "; ".join(f"{t} in {o}" for t, (o, _f, _l) in sorted(types.items()))
            findings.append(Finding(file, line, "IN004", f"property {key!r} has different types: {described}"))
    for spelled in spellings.values():
        if len(spelled) > 1:
            ordered = sorted(spelled)
            findings.append(
                Finding(
                    *spelled[ordered[-1]],
                    "IN003",
                    f"names differ only in case or spacing: {', '.join(map(repr, ordered))}",
                )
            )
    return sorted(findings)
