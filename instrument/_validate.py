"""The one validation path of a record: every check a Track/Identify must pass, run by its ``__init__``.

The generated ``__init__`` (see ``_records``) runs one cheap combined test; when that test is not sure, it
calls ``validate``, which finds the error (or none), raises it in strict mode, and else keeps it on the
record. A record without an error passed every check, so building its message needs none again.
Error texts name the track, the field, the expected type and the value's type and size, never its content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from instrument import _hints, _scopes
from instrument._encoding import key_label
from instrument._errors import AnalyticsError, PropertyError, ScopeError
from instrument._fields import MISSING
from instrument._spec import PropertySpec, Spec
from instrument._state import State, current

#: Where strictness is read: ``strictness.strict`` says whether programmer errors raise. It is the
#: installed client's own ``strict`` setting (``_state.current``, kept in step with the client by
#: ``_state.install``), read as a plain attribute because every Track construction does it.
strictness: State = current


class FactoryFailed:
    """What a property holds when its ``default_factory`` raised: ``validate`` reports it."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def call_factory(factory: Any) -> Any:
    """``factory()``, or a FactoryFailed holding what it raised (a default never breaks construction)."""
    try:
        return factory()
    except Exception as error:
        return FactoryFailed(error)


def value_summary(value: object) -> str:
    """The type of ``value`` and, for text and containers, its size: never its content."""
    # type(), not isinstance(): isinstance consults a value's own __class__, which may raise.
    cls = type(value)
    name = cls.__name__
    if issubclass(cls, (str, bytes, bytearray, list, tuple, dict, set, frozenset, Mapping)):
        try:
            size = len(value)  # type: ignore[arg-type]
        except Exception:  # a container whose __len__ raises: the type alone
            return name
        unit = "char" if issubclass(cls, str) else "byte" if issubclass(cls, (bytes, bytearray)) else "item"
        return f"{name} ({size} {unit}{'' if size == 1 else 's'})"
    return name


def merge_scope(ctx: Mapping[str, object], over: Mapping[str, object]) -> Mapping[str, object]:
    """The scope a record carries: the bound snapshot, then its keyword overrides (None overrides nothing)."""
    if not over:
        return ctx
    merged = dict(ctx)
    for key, value in over.items():
        if value is not None:
            merged[key] = value
    return merged


def validate(rec: Any, spec: Spec) -> None:
    """Run every check on ``rec``: raise the error in strict mode, else keep it on ``rec._error``."""
    try:
        error = find_error(rec, spec)
    except Exception as raised:  # a hostile value in a path no check foresaw: still only an AnalyticsError
        error = AnalyticsError(
            f"{spec.cls_name}: checking the record raised {type(raised).__name__}", track=spec.cls_name
        )
        error.__cause__ = raised
    if error is not None:
        if strictness.strict:
            raise error
        rec._error = error


def _property_error(spec: Spec, p: PropertySpec, value: object) -> PropertyError | None:
    name = spec.cls_name
    if value is MISSING:
        kind = "input" if p in spec.inputs else "property"
        return PropertyError(
            f"{name}: required {kind} {p.name!r} is missing ({p.check.text})", track=name, field=p.name
        )
    if type(value) is FactoryFailed:
        error = PropertyError(
            f"{name}.{p.name}: its {'derived() function' if p.derive else 'default_factory'} raised "
            f"{type(value.error).__name__}",
            track=name,
            field=p.name,
        )
        error.__cause__ = value.error
        return error
    try:
        ok = p.check.ok(value)
    except Exception as raised:  # a value whose __eq__ (Literal), __len__ or isinstance hook raises
        error = PropertyError(
            f"{name}.{p.name}: expected {p.check.text}; checking the {value_summary(value)} value raised "
            f"{type(raised).__name__}",
            track=name,
            field=p.name,
            value_type=type(value).__name__,
        )
        error.__cause__ = raised
        return error
    if ok:
        return None
    return PropertyError(
        f"{name}.{p.name}: expected {p.check.text}, got {value_summary(value)}",
        track=name,
        field=p.name,
        value_type=type(value).__name__,
    )


def find_error(rec: Any, spec: Spec) -> AnalyticsError | None:
    """Every check ``rec`` must pass; the first error found (all missing scope fields at once), or None."""
    # Inputs first: a derived property computed from a missing or wrong input says less.
    for p in (*spec.inputs, *spec.properties):
        error = _property_error(spec, p, getattr(rec, p.name))
        if error is not None:
            return error
    over: Mapping[str, object] = rec._over
    keyword_error = _keyword_error(spec, over)
    if keyword_error is not None:
        return keyword_error
    scope = spec.scope
    merged = merge_scope(rec._ctx, over)
    # Segment needs userId or anonymousId: an anonymous visitor's id stands in for user_id (not in an
    # alias, whose userId is the user the previous id becomes).
    anonymous_id = merged.get(_scopes.ANONYMOUS_ID) if spec.kind != "alias" else None
    missing = [f for f in scope.fields if merged.get(f) is None and (f != _scopes.USER_ID or anonymous_id is None)]
    if missing:
        return _missing_error(spec, missing, nothing_bound=not _scopes.has_bound(rec._ctx))
    for f in (_scopes.ANONYMOUS_ID, *scope.fields):
        value = merged.get(f)
        if value is None:  # no anonymous id, or user_id with an anonymous id standing in
            continue
        check = scope.checks.get(f)
        if check is None and not _scopes.is_id(value):
            expected = "an int or a non-empty str id"
        elif check is not None and not check.ok(value):
            expected = check.text
        else:
            continue
        label = repr(f) if f == _scopes.ANONYMOUS_ID else f"scope field {f!r}"
        return _scope_error(spec, f, f"{label} must be {expected}, got {value_summary(value)}")
    return None


def _keyword_error(spec: Spec, over: Mapping[str, object]) -> AnalyticsError | None:
    # A keyword that is neither a property nor a field of the track's scope.
    scope = spec.scope
    known = _scopes.known_fields()
    for key in over:
        if key in scope.fields or key == _scopes.ANONYMOUS_ID or (spec.free_form and key not in known):
            continue
        if key in known:
            return _scope_error(
                spec, key, f"{key!r} is not a field of scope {scope.name!r} (its fields: {list(scope.fields)})"
            )
        derived = spec.by_name.get(key)
        if derived is not None and derived.derive is not None:
            return PropertyError(
                f"{spec.cls_name}: {key!r} is derived from {list(derived.derive_args)}; give those instead",
                track=spec.cls_name,
                field=key,
            )
        wired = _wire_key_field(spec, key)
        if wired is not None:
            return _scope_error(
                spec, wired, f"{key_label(key)} is the wire key of scope field {wired!r}; give it as {wired}=..."
            )
        return PropertyError(
            f"{spec.cls_name}: unknown property {key_label(key)} (declared: {[p.name for p in spec.properties]}; "
            f"scope {scope.name!r} fields: {list(scope.fields)})",
            track=spec.cls_name,
            field=key,
            value_type=type(over[key]).__name__,
        )
    return None


def _scope_error(spec: Spec, field: str, text: str) -> ScopeError:
    return ScopeError(f"{spec.cls_name}: {text}", track=spec.cls_name, scope=spec.scope.name, field=field)


def _wire_key_field(spec: Spec, key: str) -> str | None:
    # ``cc_id=`` for a field sent as "cc_id": the scope field it is the wire key of.
    if key == _scopes.USER_WIRE_KEY:
        return _scopes.USER_ID
    if key == _scopes.ANONYMOUS_WIRE_KEY:
        return _scopes.ANONYMOUS_ID
    for field, wire_key in spec.scope_keys.items():
        if wire_key == key:
            return field
    for field in _scopes.known_fields():
        if _scopes.default_wire_key(field) == key and field != key:
            return field
    return None


def _missing_error(spec: Spec, missing: list[str], *, nothing_bound: bool) -> ScopeError:
    name, scope = spec.cls_name, spec.scope.name
    fields = ", ".join(repr(f) for f in missing)
    text = f"{name}: scope {scope!r} needs {fields}, neither bound by analytics_scope nor given as keywords"
    if nothing_bound:
        text += (
            "; nothing at all is bound in this context: if this runs in a thread, an executor or a task "
            "started outside the `with analytics_scope(...)` block, it did not receive the scope (submit it through "
            "instrument.PropagatingExecutor, instrument.run_in_executor or scope_snapshot().wrap, or switch on "
            "instrument.propagate_scope())"
        )
    hint = _hints.current()  # the fix of the framework running this work
    if hint is not None:
        text += "; " + hint
    return ScopeError(text, track=name, scope=scope, field=missing[0])
