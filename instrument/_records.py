"""Track and Identify declarations: typed properties, scope filling, and their generated ``__init__``.

The other Segment calls (Group, Page, Screen, Alias) are declared in ``_calls`` on the same machinery.
"""

from __future__ import annotations

import inspect
import sys
import time
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, ParamSpec, cast

from instrument import _scopes
from instrument._codegen import make_function
from instrument._errors import AnalyticsError, ConfigurationError, ScopeError, TrackDefinitionError
from instrument._events import EventName, check_event_name
from instrument._fields import MISSING, FieldInfo, ScopeId, derived, field
from instrument._spec import Spec, UnresolvedAnnotation, build_spec, check_declaration
from instrument._validate import call_factory, merge_scope, strictness, validate

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - exercised on 3.10 only
    from typing_extensions import dataclass_transform

_P = ParamSpec("_P")


@dataclass_transform(kw_only_default=True, field_specifiers=(field, derived))
class _Record:
    """Shared machinery of Track and Identify (dataclass-like: keyword-only typed fields)."""

    __instrument_spec__: ClassVar[Spec | None] = None
    _kind: ClassVar[str] = "track"
    _event: ClassVar[str | None] = None
    _scope_name: ClassVar[str] = "user"
    # Scope field renames declared by the event's catalog (EventName(..., wire_keys=...)).
    _wire_keys: ClassVar[Mapping[str, str]] = {}
    # The catalog of the event (None for a bare-string event): what tracks_of(catalog) matches.
    _catalog: ClassVar[type | None] = None
    # A Page/Screen's category; the scope field a Group's groupId is (None: group_id is given).
    _category: ClassVar[str | None] = None
    _group_field: ClassVar[str | None] = None
    # Ids a call takes as required constructor inputs, never sent as properties (Alias: previous_id).
    _id_inputs: ClassVar[tuple[str, ...]] = ()
    # What track() queues for a record of this class: the plain tuple of its state this function makes
    # (``_messages._pack_source``; set when the worker compiles the class's direct path), else (None)
    # the record itself. Each class has its own, never a base's.
    _pack: ClassVar[Callable[[Any], Any] | None] = None

    # Set on every instance by the generated __init__.
    _ctx: dict[str, object]
    _over: dict[str, object]
    _ts: float
    _error: AnalyticsError | None = None
    # Set by track() when integrations' context providers or a consent gave something to send.
    _context: dict[str, Any] | None = None

    def __init_subclass__(
        cls, *, event: str | None = None, scope: str | None = None, defines_scope: str | None = None, **kw: Any
    ) -> None:
        try:
            super().__init_subclass__(**kw)
        except TypeError as error:
            if not kw:
                raise
            raise TrackDefinitionError(
                f"{cls.__qualname__}: unexpected class keyword(s) {sorted(kw)} "
                "(a Track takes event= and scope=, a scope base defines_scope=)",
                track=cls.__qualname__,
            ) from error
        cls.__instrument_spec__ = None
        cls._pack = None
        if cls.__dict__.get("_machinery", False):
            return
        if defines_scope is not None:
            _define_scope_base(cls, defines_scope, event=event, scope=scope)
            return
        if event is not None:
            if cls._kind != "track":
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: an {cls._kind} call has no event", track=cls.__qualname__
                )
            if isinstance(event, EventName):
                cls._wire_keys = type(event).__wire_keys__
                cls._catalog = type(event)
            else:
                check_event_name(event, catalog=cls.__qualname__)
            cls._event = str(event)
        if scope is not None:
            if cls._kind in ("identify", "alias", "group") and scope != cls._scope_name:
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: an {cls._kind} call takes no scope= (an Identify and an Alias are "
                    "user-scoped, a Group's scope is the one of its group_by field)",
                    track=cls.__qualname__,
                )
            if not isinstance(scope, str) or scope not in _scopes.scopes():
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: unknown scope {scope!r} (known: {sorted(_scopes.scopes())}; "
                    "add one with define_scope)",
                    track=cls.__qualname__,
                )
            inherited = _scopes.get_scope(cls._scope_name)
            if not set(inherited.fields) <= set(_scopes.get_scope(scope).fields):
                raise TrackDefinitionError(
                    f"{cls.__qualname__}: scope={scope!r} does not nest in {inherited.name!r}, the scope of its base",
                    track=cls.__qualname__,
                )
            cls._scope_name = scope
            for f in _scopes.get_scope(scope).fields:  # the string form: no scope base declares them
                if not hasattr(cls, f):
                    setattr(cls, f, _ScopeAttr(f))
        check_declaration(cls, _MACHINERY)
        if cls._event is not None or cls._kind != "track":
            cls.__init__ = _lazy_init  # type: ignore[method-assign]
            try:
                _compile(cls)
            except UnresolvedAnnotation:
                pass  # a forward reference: resolved on first use, or refused then

    if typing.TYPE_CHECKING:

        def __init__(self, **fields: Any) -> None: ...

    @classmethod
    def analytics_scope(cls: Callable[_P, object], /, *args: _P.args, **kwargs: _P.kwargs) -> _scopes.AnalyticsScope:
        """Bind this track's scope fields: ``with ClusterTrack.analytics_scope(user_id=1, cluster_id=3):``.

        ``analytics_scope`` with the fields type checkers know for this class (a scope you define
        included). Raises ScopeError for a name that is not a field of the class's scope.
        """
        klass = cast("type[_Record]", cls)
        allowed = (*_scopes.get_scope(klass._scope_name).fields, _scopes.ANONYMOUS_ID)
        unknown = sorted(set(kwargs) - set(allowed)) or (["<positional>"] if args else [])
        if unknown:
            raise ScopeError(
                f"{klass.__qualname__}.analytics_scope: {unknown[0]!r} is not a field of scope "
                f"{klass._scope_name!r} (its fields: {list(allowed)})",
                field=unknown[0],
                scope=klass._scope_name,
            )
        return _scopes.analytics_scope(**cast("_scopes.ScopeFields", kwargs))

    def __repr__(self) -> str:
        try:
            properties = _spec(type(self)).properties
        except TrackDefinitionError:  # annotations that never resolved: repr() must not raise anyway
            return f"{type(self).__qualname__}(<unresolved annotations>)"
        parts = [f"{p.name}={_safe_repr(getattr(self, p.name, MISSING))}" for p in properties]
        parts += [f"{k}={_safe_repr(v)}" for k, v in self.scope.items()]
        return f"{type(self).__qualname__}({', '.join(parts)})"

    @property
    def scope(self) -> Mapping[str, object]:
        """The scope fields this record carries: the bound scope at construction, then overrides."""
        merged = merge_scope(self._ctx, self._over)
        fields = _scopes.get_scope(type(self)._scope_name).fields  # needs no annotation resolved
        return {f: merged[f] for f in fields if merged.get(f) is not None}

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


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a value whose __repr__ raises: repr() of the record must not
        return f"<{type(value).__name__} (repr raised)>"


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
    """Base of typed user-scoped tracks: ``class X(Track, event=Events.X): plan: str``.

    Derive from a scope's base for another scope (``class X(ClusterTrack, event=Events.X)``): its
    constructor takes exactly that scope's fields, which type checkers see. Constructing one checks
    the declared properties, fills every field of its scope from the bound analytics_scope (keyword
    arguments override), and records the time. In strict mode errors raise (PropertyError,
    ScopeError); otherwise they are kept on ``.validation_error`` and reported by ``track()``.
    Declaring one wrongly raises TrackDefinitionError or EventNameError when the class is defined.
    """

    _kind = "track"
    _machinery = True

    # The user scope's fields, declared so type checkers accept them as keyword overrides.
    user_id: ScopeId | None = None
    anonymous_id: ScopeId | None = None


class Identify(_Record):
    """Base of typed identify calls: ``class UserTraits(Identify): email: str``.

    Sent as a Segment identify for the bound (or given) user_id, with the fields as traits. Raises as
    Track does.
    """

    _kind = "identify"
    _machinery = True

    user_id: ScopeId | None = None
    anonymous_id: ScopeId | None = None


_MACHINERY: tuple[type, ...] = (_Record, Track, Identify)


def register_machinery(*classes: type) -> None:
    """Add the bases of another call (``_calls``): their annotations declare no property."""
    global _MACHINERY
    _MACHINERY = (*_MACHINERY, *classes)


def _scope_attrs(cls: type) -> None:
    # Reading a scope field on a record gives its resolved value.
    for name in list(cls.__dict__.get("__annotations__", {})):
        if not name.startswith("_"):
            setattr(cls, name, _ScopeAttr(name))


def _define_scope_base(cls: type[_Record], name: str, *, event: object, scope: object) -> None:
    """``class StackTrack(ProjectTrack, defines_scope="stack"): stack_name: str | None = None``.

    The class's annotations are the new scope's fields, nested in its base's scope; each is ``T | None
    = None`` (``field(default=None, key=...)`` sends it under another key); ``ScopeId`` fields are ids.
    Raises TrackDefinitionError for an event or scope given too, or a field that is not so declared.
    """
    where = cls.__qualname__
    if event is not None or scope is not None or cls._kind != "track":
        raise TrackDefinitionError(
            f"{where}: a scope base (defines_scope=) is a Track base without event= or scope=", track=where
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception as error:
        raise TrackDefinitionError(
            f"{where}: cannot resolve a scope field's annotation ({error})", track=where
        ) from None
    keys: dict[str, str] = {}
    ids: list[str] = []
    types: dict[str, Any] = {}
    for fname in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(fname, MISSING)
        info = value if isinstance(value, FieldInfo) else FieldInfo(default=value)
        args = typing.get_args(hints[fname])
        if info.default is not None or type(None) not in args:
            raise TrackDefinitionError(
                f"{where}.{fname}: a scope field is declared `{fname}: T | None = None` (None: not given)",
                track=where,
            )
        rest = tuple(a for a in args if a is not type(None))
        keys[fname] = info.key or fname
        if set(rest) == {int, str}:
            ids.append(fname)
        else:
            types[fname] = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    try:
        _scopes.define_scope(name, parent=cls._scope_name, fields=keys, ids=ids, types=types)
    except ConfigurationError as error:
        raise TrackDefinitionError(str(error), track=where) from None
    cls._scope_name = name
    type.__setattr__(cls, "__instrument_scope_base__", True)
    _scope_attrs(cls)


class ProjectTrack(Track, defines_scope="project"):
    """Base of project-scoped tracks."""

    project_id: ScopeId | None = None


class ClusterTrack(ProjectTrack, defines_scope="cluster"):
    """Base of cluster-scoped tracks."""

    cluster_id: ScopeId | None = None


class RegistryTrack(ProjectTrack, defines_scope="registry"):
    """Base of registry-scoped tracks."""

    registry_id: ScopeId | None = None


class ApplicationTrack(ClusterTrack, defines_scope="application"):
    """Base of application-scoped tracks."""

    app_name: str | None = None
    app_namespace: str | None = None
    chart_name: str | None = None


for _base in (Track, Identify, ProjectTrack, ClusterTrack, RegistryTrack, ApplicationTrack):
    _scope_attrs(_base)


def _spec(cls: type[_Record]) -> Spec:
    spec = cls.__dict__.get("__instrument_spec__")
    if spec is None:
        spec = _compile(cls)
    return spec


def spec_of(cls: type[_Record]) -> Spec:
    """The compiled Spec of a Track/Identify class.

    Raises TrackDefinitionError for abstract bases and for annotations that cannot be resolved.
    """
    if (cls._event is None and cls._kind == "track") or "__instrument_scope_base__" in cls.__dict__:
        raise TrackDefinitionError(f"{cls.__qualname__} has no event= (an abstract base)", track=cls.__qualname__)
    return _spec(cls)


def _lazy_init(self: _Record, **kwargs: Any) -> None:
    # The class has a forward reference that did not resolve when it was defined: resolve it now.
    cls = type(self)
    try:
        _compile(cls)
    except TrackDefinitionError as error:
        if strictness.strict:
            raise
        self._ctx = _scopes.get_bound()
        self._over = kwargs
        self._ts = time.time()
        self._error = error
        return
    cls.__init__(self, **kwargs)


def compile_record(cls: type[_Record]) -> Spec:
    """Compile ``cls`` now: its Spec and generated ``__init__`` (a base usable as it is, such as Alias)."""
    return _compile(cls)


def _compile(cls: type[_Record]) -> Spec:
    spec = build_spec(cls, _MACHINERY)
    cls.__init__ = _make_init(cls, spec)  # type: ignore[method-assign]
    cls.__instrument_spec__ = spec
    return spec


class _FactoryDefault:
    """How a default_factory shows in ``inspect.signature``, as dataclasses shows it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _FactoryDefault()


def _signature(spec: Spec) -> inspect.Signature:
    """The honest signature: required properties without a default, scope fields as optional overrides."""
    params = [inspect.Parameter("_self", inspect.Parameter.POSITIONAL_ONLY)]
    keyword = inspect.Parameter.KEYWORD_ONLY
    if spec.free_form:
        params.append(inspect.Parameter("properties", inspect.Parameter.VAR_KEYWORD, annotation=Any))
    for p in (*spec.inputs, *spec.properties):
        if p.derive is not None:
            continue  # computed, not given
        default = p.default if p.default is not MISSING else _FACTORY if not p.required else inspect.Parameter.empty
        params.append(inspect.Parameter(p.name, keyword, default=default, annotation=p.annotation))
    if not spec.free_form:
        for f in spec.scope.fields:
            annotation = spec.scope.type_of(f) | None
            params.append(inspect.Parameter(f, keyword, default=None, annotation=annotation))
    return inspect.Signature(params, return_annotation=None)


#: What a record overrides when it overrides nothing: one dict for all (never mutated).
_NO_OVER: dict[str, object] = {}


def _make_init(cls: type[_Record], spec: Spec) -> Callable[..., None]:
    """Generate a specialised __init__: assignments, one cheap combined test, the validator when unsure.

    Every local name of the generated code starts with '_' (property names never do), so no property
    name (``self`` included) can clash with one.
    """
    ns: dict[str, Any] = {
        "_M": MISSING,
        "_NO_OVER": _NO_OVER,
        "_get": _scopes.get_bound,
        "_time": time.time,
        "_validate": validate,
        "_spec": spec,
        "_factory": call_factory,
        "_derive": _call_derive,
        # Builtins by '_' names: a property may be called ``int`` or ``str``.
        "_int": int,
        "_str": str,
    }
    params: list[str] = []
    body: list[str] = []
    sure: list[str] = []  # all true -> the record is valid, no validator needed
    derive: list[str] = []  # computed after every given field is assigned
    for i, p in enumerate((*spec.inputs, *spec.properties)):
        var = p.name
        if p.derive is not None:
            ns[f"_dv{i}"] = p.derive
            arguments = ", ".join(f"{a}={a}" for a in p.derive_args)
            derive.append(f"    {var} = _derive(_dv{i}, {arguments})\n    _self.{var} = {var}")
        elif p.default is not MISSING:
            ns[f"_d{i}"] = p.default
            params.append(f"{var}=_d{i}")
        else:
            params.append(f"{var}=_M")
            if p.default_factory is not MISSING:
                ns[f"_f{i}"] = p.default_factory
                body.append(f"    if {var} is _M:\n        {var} = _factory(_f{i})")
        if p.derive is None:
            body.append(f"    _self.{var} = {var}")
        exact = p.check.exact
        if exact is None or p.check.shallow:
            # A deep check (container items, Literal, Any); Any passes the missing marker too.
            ns[f"_k{i}"] = p.check.ok
            sure.append(f"{var} is not _M and _k{i}({var})" if p.required else f"_k{i}({var})")
        elif len(exact) == 1:
            ns[f"_c{i}"] = exact[0]
            sure.append(f"{var}.__class__ is _c{i}")
        else:
            ns[f"_c{i}"] = exact
            sure.append(f"{var}.__class__ in _c{i}")
    body += derive
    sure.append("not _over")
    scope_checks: list[str] = []
    deep = False
    for j, f in enumerate(spec.scope.fields):
        check = spec.scope.checks.get(f)
        if f in spec.scope.id_fields:
            scope_checks.append(f"((_v := _ctx.get({f!r})).__class__ is _int or (_v.__class__ is _str and _v != ''))")
        elif check is None or check.text in ("Any", "object"):
            scope_checks.append(f"_ctx.get({f!r}) is not None")
        elif check.exact is not None and not check.shallow and type(None) not in check.exact:
            ns[f"_s{j}"] = check.exact
            scope_checks.append(f"_ctx.get({f!r}).__class__ in _s{j}")
        else:
            ns[f"_s{j}"] = check.ok
            scope_checks.append(f"((_v := _ctx.get({f!r})) is not None and _s{j}(_v))")
            deep = True
    if scope_checks and not deep:
        # The scope dict that last passed this class's checks is remembered: a bound dict is never
        # mutated (_scopes) and these checks read only its values' classes, so the same dict passes
        # again; held here, its id is never another dict's. (A deep check, of a list's items say, is
        # run every time: a bound list can change.)
        remembered: list[object] = [None]
        ns["_ok"] = remembered
        _remembered_scopes.append(remembered)
        ns["_passed"] = _passed
        sure.append(f"(_ctx is _ok[0] or ({' and '.join(scope_checks)} and _passed(_ok, _ctx)))")
    else:
        sure += scope_checks
    head = [
        "    _ctx = _get()",
        "    _self._ctx = _ctx",
        # The shared empty dict (never mutated) when nothing is overridden: a queued record then keeps
        # one object the garbage collector tracks, not two (the collector's work grows with the queue).
        "    _self._over = _over or _NO_OVER",
        "    _self._ts = _time()",
    ]
    if spec.free_form:
        lines = ["def __init__(_self, **_over):", *head, "    _validate(_self, _spec)"]
    else:
        joined = "\n            and ".join(sure)
        lines = [
            f"def __init__(_self, {'*, ' if params else ''}{', '.join([*params, '**_over'])}):",
            *head,
            *body,
            "    try:",
            f"        if ({joined}):",
            "            return",
            "    except Exception:  # a value whose __eq__ or isinstance hook raises: the validator reports it",
            "        pass",
            "    _validate(_self, _spec)",
        ]
    init = make_function(
        "__init__",
        "\n".join(lines) + "\n",
        ns,
        what="__init__",
        module=cls.__module__,
        qualname=cls.__qualname__,
        doc=f"Make a {cls.__qualname__} record: check its properties and fill its scope (see Track).",
    )
    init.__signature__ = _signature(spec)  # type: ignore[attr-defined]
    return init


#: Each class's last scope dict that passed its checks: what ``forget_scopes`` empties.
_remembered_scopes: list[list[object]] = []


def forget_scopes() -> None:
    """Forget the scope dicts the classes remember (they hold ids): ``instrument.forget`` leaves none."""
    for remembered in _remembered_scopes:
        remembered[0] = None


def _passed(remembered: list[object], scope: object) -> bool:
    remembered[0] = scope
    return True


def _call_derive(compute: Callable[..., Any], **fields: Any) -> Any:
    # A derived property's function that raises is reported like a raising default_factory.
    return call_factory(lambda: compute(**fields))


_adhoc: dict[tuple[str, str, tuple[tuple[str, str], ...]], type[Track]] = {}
_NO_RENAMES: Mapping[str, str] = MappingProxyType({})


def adhoc_track(event: str, scope: str = "user") -> type[Track]:
    """A Track class for a bare event name, taking any keyword as a property (used by @tracks)."""
    renames = tuple(sorted(type(event).__wire_keys__.items())) if isinstance(event, EventName) else ()
    key = (str(event), scope, renames)
    cls = _adhoc.get(key)
    if cls is None:
        if not isinstance(event, EventName):
            check_event_name(event)
        _scopes.get_scope(scope)
        cls = type(f"Event[{event}]", (Track,), {"_free_form": True}, event=event, scope=scope)
        _adhoc[key] = cls
    return cls


def scope_wire_key(target: object, field: str, overrides: Mapping[str, str] = _NO_RENAMES) -> str:
    """The wire key scope ``field`` is sent under by ``target`` (a Track class, a catalog member or a name),
    ``overrides`` (a client's ``wire_keys``) first."""
    override = overrides.get(field)
    if override:
        return override
    if isinstance(target, type) and issubclass(target, _Record):
        keys: Mapping[str, str] = target._wire_keys
    elif isinstance(target, EventName):
        keys = type(target).__wire_keys__
    else:
        keys = {}
    return keys.get(field) or _scopes.default_wire_key(field)
