"""The compiled description of one Track/Identify class (``Spec``), built from its annotations and fields.

``check_declaration`` runs when a class is defined and needs no annotation resolved (names, defaults, wire
keys); ``build_spec`` resolves the annotations and compiles each property's check.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import re
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any

from instrument import _scopes
from instrument._checks import Check, UnsupportedAnnotation, compile_check
from instrument._errors import ConfigurationError, TrackDefinitionError
from instrument._fields import MISSING, FieldInfo, _Truncatable

#: Names a property may not have: the record's own attributes.
RESERVED = frozenset({"scope", "properties", "validation_error", "analytics_scope"})


@dataclass(frozen=True)
class PropertySpec:
    """One declared property: its name, wire key, check, default, and doc."""

    name: str
    key: str
    check: Check
    default: Any
    default_factory: Any
    truncatable: bool
    doc: str | None = None
    annotation: Any = None
    #: A derived property's function, and the fields it takes (by name).
    derive: Callable[..., Any] | None = None
    derive_args: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """True when the property has neither a default nor a default factory."""
        return self.default is MISSING and self.default_factory is MISSING


@dataclass
class Spec:
    """Everything instrument knows about one Track/Identify class, built when it is defined (or first used)."""

    cls_name: str
    kind: str  # "track", "identify", "group", "page", "screen" or "alias"
    event: str | None
    scope: _scopes.Scope
    properties: tuple[PropertySpec, ...] = ()
    free_form: bool = False
    by_name: dict[str, PropertySpec] = _dc_field(default_factory=dict)
    #: Each property field of the scope (user_id excluded) and the wire key it is sent under.
    scope_keys: dict[str, str] = _dc_field(default_factory=dict)
    #: The init-only inputs (``first_name: InitVar[str]``): constructor arguments, never sent.
    inputs: tuple[PropertySpec, ...] = ()
    #: A Page/Screen's category, and the scope field a Group's groupId is (None: its group_id input).
    category: str | None = None
    group_field: str | None = None
    #: The compiled message builder (``_messages``), made on first use.
    builder: Any = _dc_field(default=None, compare=False, repr=False)
    #: A track's direct path to its bytes (``_messages``; False: none for this kind), made on first use.
    wire: Any = _dc_field(default=None, compare=False, repr=False)
    #: With ``wire``: the worker's loop over a run of this track's packed records (``_messages``).
    run: Any = _dc_field(default=None, compare=False, repr=False)

    @property
    def field_names(self) -> frozenset[str]:
        """The constructor's names: inputs, properties not derived, scope fields (what @tracks fills)."""
        given = [p.name for p in (*self.inputs, *self.properties) if p.derive is None]
        return frozenset(given) | frozenset(self.scope.fields)


class UnresolvedAnnotation(TrackDefinitionError):
    """An annotation names something not defined (yet): a forward reference, retried on first use."""


def _record_classes(cls: type, machinery: tuple[type, ...]) -> list[type]:
    """The user classes of ``cls``'s MRO that declare properties, base classes first (not scope bases)."""
    return [
        k
        for k in reversed(cls.__mro__)
        if issubclass(k, machinery[0]) and k not in machinery and "__instrument_scope_base__" not in k.__dict__
    ]


_INITVAR = re.compile(r"^\s*(dataclasses\.)?InitVar\b")


def is_init_only(annotation: object) -> bool:
    """True for ``InitVar[T]`` (resolved, or still the text of a postponed annotation)."""
    if isinstance(annotation, str):
        return bool(_INITVAR.match(annotation))
    return isinstance(annotation, dataclasses.InitVar) or annotation is dataclasses.InitVar


def _own_annotations(cls: type, machinery: tuple[type, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in _record_classes(cls, machinery):
        found.update({n: a for n, a in klass.__dict__.get("__annotations__", {}).items() if not n.startswith("_")})
    return found


def _check_derived(cls: Any, machinery: tuple[type, ...]) -> None:
    # A derived property's function takes inputs and properties that are not derived, by name.
    name = cls.__qualname__
    declared = _own_annotations(cls, machinery)
    infos = {pname: field_info(cls, pname) for pname in declared}
    for pname, info in infos.items():
        if info.derive is None:
            continue
        if is_init_only(declared[pname]):
            raise TrackDefinitionError(f"{name}.{pname}: an InitVar input cannot be derived", track=name)
        try:
            params = list(inspect.signature(info.derive).parameters.values())
        except (TypeError, ValueError):
            raise TrackDefinitionError(
                f"{name}.{pname}: derived() needs a function with a signature", track=name
            ) from None
        for param in params:
            source = infos.get(param.name)
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise TrackDefinitionError(
                    f"{name}.{pname}: derived() function parameters must be plain names of fields, "
                    f"not {param.kind.description} {param.name!r}",
                    track=name,
                )
            if source is None or source.derive is not None:
                raise TrackDefinitionError(
                    f"{name}.{pname}: derived() function parameter {param.name!r} names no input or property "
                    f"of the track (inputs are declared as InitVar[...]; derived properties cannot be inputs)",
                    track=name,
                )


def field_info(cls: type, name: str) -> FieldInfo:
    """What the class body says about property ``name``: ``field(...)``, a plain default, or nothing."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            value = klass.__dict__[name]
            return value if isinstance(value, FieldInfo) else FieldInfo(default=value)
    return FieldInfo()


def _declared_names(cls: type, machinery: tuple[type, ...]) -> list[str]:
    names: dict[str, None] = {}
    for klass in _record_classes(cls, machinery):
        names.update(dict.fromkeys(n for n in klass.__dict__.get("__annotations__", {}) if not n.startswith("_")))
    return list(names)


def scope_keys_of(cls: Any) -> dict[str, str]:
    """The wire key of each property field of ``cls``'s scope (its catalog's renames applied)."""
    name = cls.__qualname__
    if cls._kind in ("group", "alias"):
        return {}  # a Group's scope field is its groupId; an Alias sends ids only
    try:
        keys = _scopes.check_wire_keys(cls._wire_keys, name)
    except ConfigurationError as error:  # a scope defined after the catalog took one of its keys
        raise TrackDefinitionError(str(error), track=name) from None
    return {f: keys[f] for f in _scopes.get_scope(cls._scope_name).property_fields}


def check_declaration(cls: Any, machinery: tuple[type, ...]) -> None:
    """Checks that need no annotation resolved: property names, defaults and wire keys.

    Raises TrackDefinitionError naming the class and the property.
    """
    name = cls.__qualname__
    known = _scopes.known_fields()
    for pname in cls.__dict__.get("__annotations__", {}):
        where = f"{name}.{pname}"
        if not isinstance(pname, str) or not pname.isidentifier() or keyword.iskeyword(pname):
            raise TrackDefinitionError(
                f"{name}: property name {pname!r} is not a Python identifier (or is a keyword); name the "
                f"attribute e.g. {_suggest(pname)!r} and send it under that key with field(key={pname!r})",
                track=name,
            )
        if pname in known:
            raise TrackDefinitionError(
                f"{where}: {pname!r} is a scope field; it is filled from the bound analytics_scope (or given "
                "as a keyword), not declared as a property",
                track=name,
            )
        if pname in RESERVED or pname in cls._id_inputs:
            raise TrackDefinitionError(
                f"{where}: {pname!r} is reserved by Track (rename the property and send it under that key "
                f"with field(key={pname!r}))",
                track=name,
            )
        if pname.startswith("_"):
            raise TrackDefinitionError(f"{where}: property names may not start with '_'", track=name)
    # Every property, inherited ones too: a subclass may give a base's property a new default.
    for pname in _declared_names(cls, machinery):
        default = field_info(cls, pname).default
        if default is not MISSING and type(default).__hash__ is None:
            raise TrackDefinitionError(
                f"{name}.{pname}: mutable default {type(default).__name__} would be shared by every instance; "
                f"use field(default_factory={type(default).__name__})",
                track=name,
            )
    _check_derived(cls, machinery)
    if cls._event is None and cls._kind == "track":
        return  # an abstract base: its scope and keys are its subclasses'
    keys: dict[str, str] = {}
    declared = _own_annotations(cls, machinery)
    for pname in _declared_names(cls, machinery):
        if is_init_only(declared.get(pname)):
            continue  # an input: never sent, so it has no wire key
        key = field_info(cls, pname).key or pname
        if key in keys:
            raise TrackDefinitionError(
                f"{name}: properties {keys[key]!r} and {pname!r} share a wire key ({key!r})", track=name
            )
        keys[key] = pname
    for f, key in scope_keys_of(cls).items():
        if key in keys:
            raise TrackDefinitionError(
                f"{name}.{keys[key]}: wire key {key!r} is the wire key of scope field {f!r} "
                "(choose another with field(key=...))",
                track=name,
            )


def _suggest(name: object) -> str:
    text = "".join(c if c.isalnum() else "_" for c in str(name)).strip("_") or "value"
    text = text if text[0].isalpha() else f"p_{text}"
    return f"{text}_" if keyword.iskeyword(text) else text


def _resolve(klass: type) -> dict[str, Any]:
    """``klass``'s own annotations, resolved; an unresolvable one is a TrackDefinitionError naming it."""
    own: dict[str, Any] = klass.__dict__.get("__annotations__", {})
    try:
        hints = typing.get_type_hints(klass, include_extras=True)
        return {n: hints[n] for n in own}
    except Exception as error:
        failing = _failing_annotation(klass, own)
        raise UnresolvedAnnotation(
            f"{klass.__qualname__}.{failing}: cannot resolve the annotation {own.get(failing)!r} "
            f"({type(error).__name__}: {error}); define the name before the class is first used",
            track=klass.__qualname__,
        ) from None


def _failing_annotation(klass: type, own: Mapping[str, Any]) -> str:
    module = sys.modules.get(klass.__module__)
    globalns = dict(getattr(module, "__dict__", {}))
    localns = dict(vars(klass))
    for name, annotation in own.items():
        probe = type("probe", (), {"__annotations__": {name: annotation}, "__module__": klass.__module__})
        try:
            typing.get_type_hints(probe, globalns=globalns, localns=localns, include_extras=True)
        except Exception:
            return name
    return next(iter(own), "?")


def _check_derived_types(name: str, props: list[PropertySpec], inputs: list[PropertySpec]) -> None:
    # Where a derived() function annotates a parameter or its result with a plain class, the field it
    # names must be of that class (a type checker does not relate the function's parameters to fields).
    fields = {p.name: p for p in (*inputs, *props)}
    for prop in props:
        if prop.derive is None:
            continue
        try:
            hints = typing.get_type_hints(prop.derive)
        except Exception:  # an annotation of the function that does not resolve: nothing to compare
            continue
        # (what the function says, the field's class, the class the function takes or gives)
        pairs = [(f"parameter {a!r} takes", fields[a].annotation, hints[a]) for a in prop.derive_args if a in hints]
        if "return" in hints:
            pairs.append(("property is", hints["return"], prop.annotation))
        for what, given, expected in pairs:
            if isinstance(given, type) and isinstance(expected, type) and not issubclass(given, expected):
                text = f"{what} {expected.__name__}, but gets {given.__name__}"
                raise TrackDefinitionError(f"{name}.{prop.name}: derived(): {text}", track=name)


def build_spec(cls: Any, machinery: tuple[type, ...]) -> Spec:
    """Resolve ``cls``'s annotations and compile its Spec.

    Raises TrackDefinitionError for an annotation that cannot be resolved or checked.
    """
    name = cls.__qualname__
    annotations: dict[str, Any] = {}
    for klass in _record_classes(cls, machinery):
        if klass.__dict__.get("__annotations__"):
            annotations.update({n: a for n, a in _resolve(klass).items() if not n.startswith("_")})
    props: list[PropertySpec] = []
    inputs: list[PropertySpec] = []
    for pname, declared in annotations.items():
        info = field_info(cls, pname)
        init_only = is_init_only(declared)
        annotation = getattr(declared, "type", Any) if init_only else declared
        truncatable = info.truncatable
        if typing.get_origin(annotation) is typing.Annotated:
            truncatable = truncatable or any(isinstance(m, _Truncatable) for m in typing.get_args(annotation)[1:])
        try:
            check = compile_check(annotation)
        except UnsupportedAnnotation as exc:
            raise TrackDefinitionError(f"{name}.{pname}: {exc}", track=name) from None
        except Exception as exc:  # an annotation object no supported form foresaw: still a definition error
            raise TrackDefinitionError(
                f"{name}.{pname}: cannot check values against {annotation!r} ({type(exc).__name__})", track=name
            ) from exc
        derive_args = tuple(inspect.signature(info.derive).parameters) if info.derive is not None else ()
        (inputs if init_only else props).append(
            PropertySpec(
                pname,
                info.key or pname,
                check,
                info.default,
                info.default_factory,
                truncatable,
                info.doc,
                annotation,
                info.derive,
                derive_args,
            )
        )
    _check_derived_types(name, props, inputs)
    # A call's own ids (an Alias's previous_id, a Group's group_id when given): required id inputs.
    id_check = Check(_scopes.is_id, None, "an int or a non-empty str id", shallow=True)
    ids = [PropertySpec(n, n, id_check, MISSING, MISSING, False, None, _scopes.ScopeId) for n in cls._id_inputs]
    inputs = [*ids, *inputs]
    return Spec(
        cls_name=name,
        kind=cls._kind,
        event=cls._event,
        scope=_scopes.get_scope(cls._scope_name),
        properties=tuple(props),
        free_form=bool(cls.__dict__.get("_free_form", False)),
        by_name={p.name: p for p in props},
        scope_keys=scope_keys_of(cls),
        inputs=tuple(inputs),
        category=cls._category,
        group_field=cls._group_field,
    )
