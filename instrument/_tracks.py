"""Track and Identify declarations: typed properties, scope filling, and the Segment message they make."""

from __future__ import annotations

import sys
import time
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any, ClassVar, Union

from instrument import _scopes
from instrument._checks import Check, UnsupportedAnnotation, compile_check
from instrument._encoding import (
    MAX_MESSAGE_BYTES,
    encode,
    encoded_size,
    format_timestamp,
    largest_fields,
)
from instrument._errors import (
    AnalyticsError,
    EncodingError,
    OversizeError,
    PropertyError,
    ScopeError,
    TrackDefinitionError,
)
from instrument._events import EventName, check_event_name
from instrument._mode import mode

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - exercised on 3.10 only
    from typing_extensions import dataclass_transform

#: What a scope id may be: sent as text in userId, as is in properties.
ScopeId = Union[int, str]  # noqa: UP007 - a runtime alias, so no `|` on 3.10


class _Missing:
    """The marker for "no default" (``describe(...).properties[i].default``) and "not given"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Truncatable:
    """Marker for ``Annotated[str, Truncatable]``: the field may be cut to make a message fit."""

    def __repr__(self) -> str:
        return "Truncatable"


Truncatable = _Truncatable()


@dataclass(frozen=True)
class _FieldInfo:
    default: Any = MISSING
    default_factory: Callable[[], Any] | Any = MISSING
    key: str | None = None
    truncatable: bool = False
    doc: str | None = None


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | Any = MISSING,
    key: str | None = None,
    truncatable: bool = False,
    doc: str | None = None,
) -> Any:
    """Declare a property with a default, a default factory, another wire ``key``, as truncatable, or a doc.

    A truncatable ``str`` property is cut (with a marker) when the message would exceed 32 KB. ``doc``
    describes the property for ``describe()`` and the tracking plan (as does a string literal right
    after the annotated assignment). Raises TrackDefinitionError (when the class is defined) for both a
    default and a factory.
    """
    if default is not MISSING and default_factory is not MISSING:
        raise TrackDefinitionError("field(): give default or default_factory, not both")
    if doc is not None and not isinstance(doc, str):
        raise TrackDefinitionError(f"field(): doc must be a str, got {type(doc).__name__}")
    return _FieldInfo(default, default_factory, key, truncatable, doc)


@dataclass(frozen=True)
class PropertySpec:
    """One declared property: its name, wire key, check, and default."""

    name: str
    key: str
    check: Check
    default: Any
    default_factory: Any
    truncatable: bool
    doc: str | None = None
    annotation: Any = None

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.default_factory is MISSING


@dataclass
class Spec:
    """Everything instrument knows about one Track/Identify class, built when it is first used."""

    cls_name: str
    kind: str  # "track" or "identify"
    event: str | None
    scope: _scopes.Scope
    properties: tuple[PropertySpec, ...] = ()
    free_form: bool = False
    by_name: dict[str, PropertySpec] = _dc_field(default_factory=dict)
    #: Each property field of the scope (user_id excluded) and the wire key it is sent under.
    scope_keys: dict[str, str] = _dc_field(default_factory=dict)

    @property
    def field_names(self) -> frozenset[str]:
        """Declared property names plus the scope's fields: what @tracks fills from arguments."""
        return frozenset(self.by_name) | frozenset(self.scope.fields)


@dataclass(frozen=True)
class EncodeOptions:
    """How records become messages: scope field wire keys and the redact hook."""

    wire_keys: Mapping[str, str] = _dc_field(default_factory=dict)
    redact: Callable[[str, dict[str, Any]], Mapping[str, Any]] | None = None


DEFAULT_OPTIONS = EncodeOptions()

_BASES = ("Track", "Identify")
_RESERVED = frozenset({"scope", "properties", "validation_error"})


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class _Record:
    """Shared machinery of Track and Identify (dataclass-like: keyword-only typed fields)."""

    __instrument_spec__: ClassVar[Spec | None] = None
    _kind: ClassVar[str] = "track"
    _event: ClassVar[str | None] = None
    _scope_name: ClassVar[str] = "user"
    # Scope field renames declared by the event's catalog (EventName(..., wire_keys=...)).
    _wire_keys: ClassVar[Mapping[str, str]] = {}

    # Set on every instance by the generated __init__.
    _ctx: dict[str, object]
    _over: dict[str, object]
    _ts: float
    _error: AnalyticsError | None = None

    def __init_subclass__(cls, *, event: str | None = None, scope: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.__instrument_spec__ = None
        if cls.__name__ in _BASES and cls.__module__ == __name__:
            return
        if event is not None:
            if cls._kind == "identify":
                raise TrackDefinitionError(f"{cls.__qualname__}: an Identify has no event", track=cls.__qualname__)
            if isinstance(event, EventName):
                cls._wire_keys = type(event).__wire_keys__
            else:
                check_event_name(event, catalog=cls.__qualname__)
            cls._event = str(event)
        if scope is not None:
            if cls._kind == "identify" and scope != "user":
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: an Identify is always user-scoped", track=cls.__qualname__
                )
            if scope not in _scopes.scopes():
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: unknown scope {scope!r} (known: {sorted(_scopes.scopes())}; "
                    "add one with define_scope)",
                    track=cls.__qualname__,
                )
            cls._scope_name = scope
        own = cls.__dict__.get("__annotations__", {})
        scope_fields = _scopes.known_fields()
        for name in own:
            if name in scope_fields:
                raise TrackDefinitionError(
                    f"{cls.__qualname__}.{name}: {name!r} is a scope field; it is filled from the bound "
                    "analytics_scope (or given as a keyword), not declared as a property",
                    track=cls.__qualname__,
                )
            if name in _RESERVED:
                raise TrackDefinitionError(
                    f"{cls.__qualname__}.{name}: {name!r} is reserved by Track (rename the property and "
                    f"send it under that key with field(key={name!r}))",
                    track=cls.__qualname__,
                )
            if name.startswith("_"):
                raise TrackDefinitionError(
                    f"{cls.__qualname__}.{name}: property names may not start with '_'", track=cls.__qualname__
                )
        if cls._event is not None or cls._kind == "identify":
            cls.__init__ = _lazy_init  # type: ignore[method-assign]
            try:
                _compile(cls)
            except NameError:
                pass  # a forward reference: compiled on first use instead

    if typing.TYPE_CHECKING:

        def __init__(self, **fields: Any) -> None: ...

    def __repr__(self) -> str:
        spec = _spec(type(self))
        parts = [f"{p.name}={getattr(self, p.name, MISSING)!r}" for p in spec.properties]
        parts += [f"{k}={v!r}" for k, v in self.scope.items()]
        return f"{type(self).__qualname__}({', '.join(parts)})"

    @property
    def scope(self) -> Mapping[str, object]:
        """The scope fields this record carries: the bound scope at construction, then overrides."""
        spec = _spec(type(self))
        merged = _merge_scope(self._ctx, self._over)
        return {f: merged[f] for f in spec.scope.fields if merged.get(f) is not None}

    @property
    def properties(self) -> dict[str, object]:
        """The declared property values by name (before encoding)."""
        spec = _spec(type(self))
        if spec.free_form:
            return {k: v for k, v in self._over.items() if k not in _scopes.known_fields()}
        return {p.name: getattr(self, p.name) for p in spec.properties}

    @property
    def validation_error(self) -> AnalyticsError | None:
        """The validation error found at construction (production mode), or None if it is valid."""
        return self._error


class _ScopeAttr:
    """``track.cluster_id``: the resolved scope value (override, else bound), or None."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: _Record | None, owner: type) -> object:
        if obj is None:
            return None
        value = obj._over.get(self.name)
        return value if value is not None else obj._ctx.get(self.name)


class Track(_Record):
    """Base of typed tracks: ``class X(Track, event=Events.X, scope="cluster"): infra_id: int``.

    Constructing one checks the declared properties, fills every field of its scope from the bound
    analytics_scope (keyword arguments override), and records the time. In strict mode errors raise
    (PropertyError, ScopeError); otherwise they are kept on ``.validation_error`` and reported by ``track()``.
    Declaring one wrongly raises TrackDefinitionError or EventNameError when the class is defined.
    """

    _kind = "track"

    # The built-in scope fields, declared so type checkers accept them as keyword overrides.
    user_id: ScopeId | None = None
    project_id: ScopeId | None = None
    cluster_id: ScopeId | None = None
    registry_id: ScopeId | None = None
    app_name: str | None = None
    app_namespace: str | None = None
    chart_name: str | None = None


class Identify(_Record):
    """Base of typed identify calls: ``class UserTraits(Identify): email: str``.

    Sent as a Segment identify for the bound (or given) user_id, with the fields as traits. Raises as
    Track does.
    """

    _kind = "identify"

    user_id: ScopeId | None = None


for _base in (Track, Identify):
    for _name in list(_base.__dict__.get("__annotations__", {})):
        if not _name.startswith("_"):
            setattr(_base, _name, _ScopeAttr(_name))


def _spec(cls: type[_Record]) -> Spec:
    spec = cls.__dict__.get("__instrument_spec__")
    if spec is None:
        spec = _compile(cls)
    return spec


def spec_of(cls: type[_Record]) -> Spec:
    """The compiled Spec of a Track/Identify class. Raises TrackDefinitionError for abstract bases."""
    if cls._event is None and cls._kind == "track":
        raise TrackDefinitionError(f"{cls.__qualname__} has no event= (an abstract base)", track=cls.__qualname__)
    return _spec(cls)


def scope_wire_key(target: object, field: str) -> str:
    """The wire key scope ``field`` is sent under by ``target`` (a Track class, a catalog member or a name)."""
    if isinstance(target, type) and issubclass(target, _Record):
        keys: Mapping[str, str] = target._wire_keys
    elif isinstance(target, EventName):
        keys = type(target).__wire_keys__
    else:
        keys = {}
    return keys.get(field) or _scopes.default_wire_key(field)


def _lazy_init(self: _Record, **kwargs: Any) -> None:
    cls = type(self)
    _compile(cls)
    cls.__init__(self, **kwargs)


def _user_annotations(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass in (Track, Identify, _Record, object) or not issubclass(klass, _Record):
            continue
        own = klass.__dict__.get("__annotations__", {})
        if not own:
            continue
        resolved = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            if not name.startswith("_"):
                hints[name] = resolved[name]
    return hints


def _compile(cls: type[_Record]) -> Spec:
    name = cls.__qualname__
    props: list[PropertySpec] = []
    for pname, annotation in _user_annotations(cls).items():
        info = _field_info(cls, pname)
        truncatable = info.truncatable
        if typing.get_origin(annotation) is typing.Annotated:
            truncatable = truncatable or any(isinstance(m, _Truncatable) for m in typing.get_args(annotation)[1:])
        try:
            check = compile_check(annotation)
        except UnsupportedAnnotation as exc:
            raise TrackDefinitionError(f"{name}.{pname}: {exc}", track=name) from None
        props.append(
            PropertySpec(
                pname, info.key or pname, check, info.default, info.default_factory, truncatable, info.doc, annotation
            )
        )
    keys = [p.key for p in props]
    if len(set(keys)) != len(keys):
        raise TrackDefinitionError(f"{name}: two properties share a wire key ({keys})", track=name)
    scope = _scopes.get_scope(cls._scope_name)
    all_keys = _scopes.check_wire_keys(cls._wire_keys, name)
    scope_keys = {f: all_keys[f] for f in scope.property_fields}
    for p in props:
        for f, key in scope_keys.items():
            if p.key == key:
                raise TrackDefinitionError(
                    f"{name}.{p.name}: wire key {key!r} is the wire key of scope field {f!r} "
                    "(choose another with field(key=...))",
                    track=name,
                )
    spec = Spec(
        cls_name=name,
        kind=cls._kind,
        event=cls._event,
        scope=scope,
        properties=tuple(props),
        free_form=bool(cls.__dict__.get("_free_form", False)),
        by_name={p.name: p for p in props},
        scope_keys=scope_keys,
    )
    cls.__init__ = _make_init(cls, spec)  # type: ignore[method-assign]
    cls.__instrument_spec__ = spec
    return spec


def _field_info(cls: type, name: str) -> _FieldInfo:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            value = klass.__dict__[name]
            if isinstance(value, _FieldInfo):
                return value
            return _FieldInfo(default=value)
    return _FieldInfo()


def _make_init(cls: type[_Record], spec: Spec) -> Callable[..., None]:
    """Generate a specialised __init__: assignments and one cheap test for the common valid case."""
    ns: dict[str, Any] = {
        "_M": MISSING,
        "_get": _scopes.get_bound,
        "_time": time.time,
        "_slow": _validate,
        "_mode": mode,
    }
    params: list[str] = []
    body: list[str] = []
    suspicious: list[str] = []
    for i, p in enumerate(spec.properties):
        var = p.name
        if p.default is not MISSING:
            ns[f"_d{i}"] = p.default
            params.append(f"{var}=_d{i}")
        else:
            params.append(f"{var}=_M")
            if p.default_factory is not MISSING:
                ns[f"_f{i}"] = p.default_factory
                body.append(f"    if {var} is _M: {var} = _f{i}()")
        body.append(f"    self.{var} = {var}")
        exact = p.check.exact
        if exact is None:
            ns[f"_k{i}"] = p.check.ok
            # A check such as Any's passes every value, the missing marker included.
            suspicious.append(f"{var} is _M or not _k{i}({var})" if p.required else f"not _k{i}({var})")
        elif len(exact) == 1:
            ns[f"_c{i}"] = exact[0]
            suspicious.append(f"{var}.__class__ is not _c{i}")
        else:
            ns[f"_c{i}"] = exact
            suspicious.append(f"{var}.__class__ not in _c{i}")
    suspicious.append("_over")
    suspicious += [f"_ctx.get({f!r}) is None" for f in spec.scope.fields]
    suspicious.append("_mode.strict")
    lines = [
        f"def __init__(self, {'*, ' if params else ''}{', '.join([*params, '**_over'])}):",
        "    _ctx = _get()",
        "    self._ctx = _ctx",
        "    self._over = _over",
        "    self._ts = _time()",
        *body,
        "    if " + " or ".join(suspicious) + ":",
        "        _slow(self)",
    ]
    if spec.free_form:
        lines = [
            "def __init__(self, **_over):",
            "    self._ctx = _get()",
            "    self._over = _over",
            "    self._ts = _time()",
            "    _slow(self)",
        ]
    exec("\n".join(lines), ns)
    init: Callable[..., None] = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _merge_scope(ctx: Mapping[str, object], over: Mapping[str, object]) -> Mapping[str, object]:
    if not over:
        return ctx
    merged = dict(ctx)
    for key, value in over.items():
        if value is not None:
            merged[key] = value
    return merged


def _validate(rec: _Record) -> None:
    """The full check, run when the fast test is not sure (or in strict mode)."""
    err = find_error(rec)
    if err is not None:
        if mode.strict:
            raise err
        rec._error = err


def _type_error(spec: Spec, p: PropertySpec, value: object) -> PropertyError:
    return PropertyError(
        f"{spec.cls_name}.{p.name}: expected {p.check.text}, got {type(value).__name__} {value!r:.80}",
        track=spec.cls_name,
        field=p.name,
        value_type=type(value).__name__,
    )


def find_error(rec: _Record) -> AnalyticsError | None:
    """Every check a record must pass, deep ones included; the first error found, or None."""
    cls = type(rec)
    spec = _spec(cls)
    name = spec.cls_name
    known = _scopes.known_fields()
    for p in spec.properties:
        value = getattr(rec, p.name)
        if value is MISSING:
            return PropertyError(
                f"{name}: required property {p.name!r} is missing ({p.check.text})", track=name, field=p.name
            )
        if not p.check.ok(value):
            return _type_error(spec, p, value)
    scope = spec.scope
    for key in rec._over:
        if key in scope.fields:
            continue
        if spec.free_form and key not in known:
            continue
        if key in known:
            return ScopeError(
                f"{name}: {key!r} is not a field of scope {scope.name!r} (its fields: {list(scope.fields)})",
                track=name,
                scope=scope.name,
                field=key,
            )
        return PropertyError(
            f"{name}: unknown property {key!r} (declared: {[p.name for p in spec.properties]}; "
            f"scope {scope.name!r} fields: {list(scope.fields)})",
            track=name,
            field=key,
            value_type=type(rec._over[key]).__name__,
        )
    merged = _merge_scope(rec._ctx, rec._over)
    for f in scope.fields:
        value = merged.get(f)
        if value is None:
            return ScopeError(
                f"{name}: scope {scope.name!r} needs {f!r}, which is neither bound by analytics_scope "
                "nor given as a keyword",
                track=name,
                scope=scope.name,
                field=f,
            )
        if f in _ID_FIELDS and (isinstance(value, bool) or not isinstance(value, (int, str))):
            return ScopeError(
                f"{name}: scope field {f!r} must be an int or str id, got {type(value).__name__} {value!r:.80}",
                track=name,
                scope=scope.name,
                field=f,
            )
    return None


_ID_FIELDS = frozenset({"user_id", "project_id", "cluster_id", "registry_id"})


def to_message(rec: _Record, options: EncodeOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """Build the exact Segment message for ``rec``: encoded, redacted, and checked for size.

    Raises the record's construction error, PropertyError/EncodingError for a value that fails its
    deep check or the encoder, and OversizeError past 32 KB (after cutting truncatable fields).
    """
    if rec._error is not None:
        raise rec._error
    spec = _spec(type(rec))
    name = spec.cls_name
    props: dict[str, Any] = {}
    if spec.free_form:
        for key, value in rec.properties.items():
            props[key] = encode(value, key, name)
    else:
        for p in spec.properties:
            value = getattr(rec, p.name)
            check = p.check
            if (check.shallow or check.exact is None or value.__class__ not in check.exact) and (
                value is MISSING or not check.ok(value)
            ):
                err = find_error(rec)
                raise err if err is not None else _type_error(spec, p, value)
            props[p.key] = encode(value, p.name, name)
    merged = _merge_scope(rec._ctx, rec._over)
    user_id = merged.get(_scopes.USER_ID)
    if user_id is None or isinstance(user_id, bool) or not isinstance(user_id, (int, str)):
        err = find_error(rec)
        raise (
            err
            if err is not None
            else ScopeError(f"{name}: user_id must be an int or str", track=name, scope="user", field="user_id")
        )
    wire_keys = options.wire_keys
    for f, scope_key in spec.scope_keys.items():
        key = wire_keys.get(f) or scope_key
        value = merged.get(f)
        if value is None or (f in _ID_FIELDS and (value.__class__ is bool or not isinstance(value, (int, str)))):
            # The construction's fast test only sees that the field is bound, not what it holds.
            err = find_error(rec)
            raise err if err is not None else ScopeError(f"{name}: bad scope field {f!r}", track=name, field=f)
        if key in props:
            raise PropertyError(
                f"{name}: property key {key!r} is sent by both a property and scope field {f!r}",
                track=name,
                field=f,
            )
        props[key] = encode(value, f, name)
    if spec.kind == "track":
        if options.redact is not None:
            try:
                props = dict(options.redact(spec.event or "", props))
            except Exception as error:  # a user hook: its failure is this event's, never the caller's
                raise EncodingError(
                    f"{name}: the redact hook raised {error!r}", track=name, field="", value_type=None
                ) from error
        message: dict[str, Any] = {
            "type": "track",
            "userId": str(user_id),
            "event": spec.event,
            "properties": props,
        }
        body_key = "properties"
    else:
        message = {"type": "identify", "userId": str(user_id), "traits": props}
        body_key = "traits"
    message["timestamp"] = format_timestamp(rec._ts)
    message["messageId"] = str(uuid.uuid4())
    size = encoded_size(message)
    if size > MAX_MESSAGE_BYTES:
        _shrink(message, body_key, spec, size)
    return message


_CUT_MARK = "...[truncated]"


def _shrink(message: dict[str, Any], body_key: str, spec: Spec, size: int) -> None:
    body: dict[str, Any] = message[body_key]
    cuttable = [p.key for p in spec.properties if p.truncatable and isinstance(body.get(p.key), str)]
    for key in sorted(cuttable, key=lambda k: len(body[k]), reverse=True):
        excess = size - MAX_MESSAGE_BYTES
        text: str = body[key]
        # Cut by encoded bytes: escapes and non-ASCII make a char cost more than one.
        encoded_len = encoded_size({"v": text}) - encoded_size({"v": ""})
        keep = max(0, len(text) - int((excess + len(_CUT_MARK) + 16) * len(text) / max(encoded_len, 1)) - 1)
        while True:
            body[key] = text[:keep] + _CUT_MARK
            size = encoded_size(message)
            if size <= MAX_MESSAGE_BYTES or keep == 0:
                break
            keep = max(0, keep - max(64, (size - MAX_MESSAGE_BYTES)))
        if size <= MAX_MESSAGE_BYTES:
            return
    largest = largest_fields(body)
    raise OversizeError(
        f"{spec.cls_name}: message is {size} bytes, over Segment's {MAX_MESSAGE_BYTES}-byte limit; "
        f"largest fields: {', '.join(f'{k} ({n} bytes)' for k, n in largest)}"
        + ("" if cuttable else " (mark a str field truncatable with field(truncatable=True) to cut it)"),
        track=spec.cls_name,
        size=size,
        limit=MAX_MESSAGE_BYTES,
        largest=largest,
    )


_adhoc: dict[tuple[str, str], type[Track]] = {}


def adhoc_track(event: str, scope: str = "user") -> type[Track]:
    """A Track class for a bare event name, taking any keyword as a property (used by @tracks)."""
    key = (str(event), scope)
    cls = _adhoc.get(key)
    if cls is None:
        if not isinstance(event, EventName):
            check_event_name(event)
        _scopes.get_scope(scope)
        cls = type(f"Event[{event}]", (Track,), {"_free_form": True}, event=event, scope=scope)
        _adhoc[key] = cls
    return cls
