"""``describe()``: the public, frozen description of a declared call's class (the tracking plan's input)."""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from instrument import _scopes
from instrument._errors import ConfigurationError, TrackDefinitionError
from instrument._events import EventName
from instrument._fields import MISSING
from instrument._personal import is_personal
from instrument._records import Identify, Track, _Record, spec_of
from instrument._spec import Spec

#: What a declared class sends: one of Segment's six calls.
Kind = Literal["track", "identify", "group", "page", "screen", "alias"]


@dataclass(frozen=True)
class PropertySchema:
    """One declared property of a Track/Identify class."""

    name: str
    """The Python attribute name."""
    key: str
    """The wire key (``field(key=...)`` applied)."""
    annotation: Any
    """The resolved annotation (``typing.get_type_hints(include_extras=True)``)."""
    required: bool
    """True when the property has neither a default nor a default factory."""
    default: Any
    """The default, or MISSING."""
    default_factory: Callable[[], Any] | None
    """The default factory, or None."""
    nullable: bool
    """True when None is an accepted value (``X | None``, ``Optional``, ``Any``)."""
    truncatable: bool
    """True when the value may be cut to make the message fit in 32 KB."""
    doc: str | None
    """``field(doc=...)``, else the string literal right after the annotated assignment, else None."""
    personal: bool = False
    """True when annotated ``Personal`` (destinations hash or omit it; the plan export flags it)."""


@dataclass(frozen=True)
class ScopeFieldSchema:
    """One field of a class's scope, as it is sent."""

    name: str
    """The field's name: "user_id", "project_id", ..."""
    key: str
    """The key it is sent under: "userId" for user_id (the message's userId), else its property key."""
    is_id: bool
    """True when it is checked as an ``int | str`` id."""
    is_user_id: bool
    """True only for the field sent as the message's userId."""
    annotation: Any = Any
    """Its declared type, checked when a track carries it (``ScopeId`` for an id, ``str`` for ``app_name``)."""


@dataclass(frozen=True)
class EventSchema:
    """Everything a Track/Identify class declares: what ``describe(cls)`` returns."""

    cls: type
    """The class itself."""
    kind: Kind
    """"track", "identify", "group", "page", "screen" or "alias"."""
    event: str | None
    """The event name of a track, the name of a page or screen (None for the others)."""
    scope: str
    """The scope's name ("user" for identify)."""
    doc: str | None
    """The class's own docstring (cleaned), None if it has none of its own."""
    properties: tuple[PropertySchema, ...]
    """Declared properties in declaration order, base classes first."""
    scope_fields: tuple[ScopeFieldSchema, ...]
    """Every field of the scope, root first (user_id first)."""
    free_form: bool
    """True for ad-hoc tracks made from a bare event name (any keyword allowed)."""
    source: tuple[str, int] | None
    """(file, line) of the class definition, when known."""
    category: str | None = None
    """A page's or screen's category (None: none, or another call)."""
    group_field: str | None = None
    """The scope field a group's groupId is (None: a ``group_id=`` given, or another call)."""


def describe(cls: type) -> EventSchema:
    """Describe a concrete declared class (a Track, Identify, Group, Page, Screen or Alias): event or name,
    scope, properties (traits) and scope fields with wire keys.

    Raises TrackDefinitionError for an abstract base (a Track without ``event=``, a scope or group base),
    something that is not such a class, or a class whose annotations cannot be resolved.
    """
    if not isinstance(cls, type) or not issubclass(cls, _Record) or cls.__dict__.get("_machinery", False):
        raise TrackDefinitionError(f"describe() takes a Track, Identify or other call's subclass, got {_what(cls)}")
    spec = spec_of(cls)  # raises TrackDefinitionError for annotations that do not resolve
    docs = _attribute_docs(cls)
    properties = tuple(
        PropertySchema(
            name=p.name,
            key=p.key,
            annotation=p.annotation,
            required=p.required,
            default=p.default,
            default_factory=None if p.default_factory is MISSING else p.default_factory,
            nullable=_accepts_none(p.check.ok),
            truncatable=p.truncatable,
            doc=p.doc if p.doc is not None else docs.get(p.name),
            personal=is_personal(p.annotation),
        )
        for p in spec.properties
    )
    scope = spec.scope
    scope_fields = tuple(
        ScopeFieldSchema(
            name=f,
            key=_wire_key(spec, f),
            is_id=f in scope.id_fields,
            is_user_id=f == _scopes.USER_ID,
            annotation=scope.type_of(f),
        )
        for f in scope.fields
    )
    own_doc = cls.__dict__.get("__doc__")
    return EventSchema(
        cls=cls,
        kind=spec.kind,  # type: ignore[arg-type]  # one of Kind: set by the machinery's bases
        event=spec.event,
        scope=scope.name,
        doc=inspect.cleandoc(own_doc) if isinstance(own_doc, str) else None,
        properties=properties,
        scope_fields=scope_fields,
        free_form=spec.free_form,
        source=_source(cls),
        category=spec.category,
        group_field=spec.group_field,
    )


def _wire_key(spec: Spec, field: str) -> str:
    """Where scope ``field`` is sent: userId, a group's groupId, else its property key (its name when a
    group or alias does not send it)."""
    if field == _scopes.USER_ID:
        return _scopes.USER_WIRE_KEY
    if field == spec.group_field:
        return "groupId"
    return spec.scope_keys.get(field, field)


def tracks_of(source: type[EventName] | ModuleType) -> tuple[type[_Record], ...]:
    """The Track and Identify classes of a catalog (tracks of its events, in member order) or of a module.

    ``tracks_of(Events)`` lists the declared tracks of each member (the ad-hoc ones ``@tracks`` makes
    for a bare event are not declarations); ``tracks_of(module)`` the concrete Track and Identify
    classes defined in it, in definition order. Raises ConfigurationError for anything else.
    """
    records = _all_records()
    if isinstance(source, ModuleType):
        found = [c for c in records if c.__module__ == source.__name__]
        order = {id(v): i for i, v in enumerate(vars(source).values())}
        return tuple(sorted(found, key=lambda c: order.get(id(c), len(order))))
    if isinstance(source, type) and issubclass(source, EventName):
        position = {str(member): i for i, member in enumerate(source)}
        tracks = [c for c in records if c._catalog is source]
        return tuple(sorted(tracks, key=lambda c: position[str(c._event)]))
    raise ConfigurationError(f"tracks_of() takes an EventName catalog or a module, got {_what(source)}")


def _all_records() -> list[type[_Record]]:
    # Concrete declarations only: no machinery, no scope base, no abstract base, no ad-hoc track.
    found: list[type[_Record]] = []
    stack: list[type[_Record]] = [_Record]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            concrete = sub._event is not None or (sub._kind != "track" and not sub.__dict__.get("_machinery", False))
            if concrete and not sub.__dict__.get("_free_form") and sub not in found:
                found.append(sub)
    return found


def _what(obj: object) -> str:
    return obj.__qualname__ if isinstance(obj, type) else f"a {type(obj).__name__}"


def _accepts_none(ok: Callable[[object], bool]) -> bool:
    try:
        return bool(ok(None))
    except Exception:  # a user class's isinstance hook: treat as "no"
        return False


def _source(cls: type) -> tuple[str, int] | None:
    try:
        file = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    return (file, line) if file is not None else None


def _attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a str literal right after ``name: T`` in a class body), base classes first."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not issubclass(klass, _Record) or klass in (Track, Identify, _Record):
            continue
        docs.update(_class_attribute_docs(klass))
    return docs


def _class_attribute_docs(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):  # no source (a REPL, exec, a zipped module without it)
        return {}
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    body = node.body
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs
