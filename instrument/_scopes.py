"""Scopes: nested sets of id fields, bound once per request in a ContextVar and read by every track."""

from __future__ import annotations

import contextvars
import keyword
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, cast

import wrapt

from instrument._errors import ConfigurationError, ScopeError
from instrument._reporting import RateLimitedLog

USER_ID = "user_id"
#: The message key user_id is sent under (never a property).
USER_WIRE_KEY = "userId"
#: An anonymous visitor's id: bindable like a scope field, in no scope, sent as the message's
#: anonymousId. A message needs userId or anonymousId (Segment's rule), so it stands in for user_id.
ANONYMOUS_ID = "anonymous_id"
ANONYMOUS_WIRE_KEY = "anonymousId"

_F = TypeVar("_F", bound=Callable[..., Any])

# The bound fields. The dict is never mutated once set: binding makes a merged copy, so a track can
# keep a reference to it as its snapshot for free. This module is the one door to the variable: every
# other module binds through attach/detach (tests/test_layers.py enforces it).
_EMPTY: dict[str, object] = {}
_SCOPE: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("instrument_scope", default=_EMPTY)
get_bound = _get = _SCOPE.get
_set = _SCOPE.set
_reset = _SCOPE.reset

#: What ``attach`` returns and ``detach`` takes.
ScopeToken = contextvars.Token[dict[str, object]]


def attach(fields: Mapping[str, object], *, replace: bool = False) -> ScopeToken:
    """Bind ``fields`` over what is bound (exactly ``fields`` with ``replace``) until ``detach(token)``.

    The fields are not checked here: callers check them (``bind_scope``, ``decode_scope``, resolvers).
    """
    # A None value stays in the dict and means "not bound": readers test `.get(field) is None`, which
    # is cheaper than filtering on every bind.
    return _set(dict(fields) if replace else {**_get(), **fields})


def detach(token: ScopeToken) -> None:
    """Restore exactly what was bound before the ``attach`` that returned ``token``.

    Raises ValueError for a token made in another context, RuntimeError for one already used.
    """
    _reset(token)


def bound_in(context: contextvars.Context) -> Mapping[str, object]:
    """The fields bound in ``context`` (a copied context, e.g. a snapshot's)."""
    return context.get(_SCOPE, _EMPTY)


def is_id(value: object) -> bool:
    """The one id check: an int (not a bool) or a non-empty str (or a subclass of them)."""
    cls = type(value)  # never value.__class__, which may raise
    if issubclass(cls, bool):
        return False
    if issubclass(cls, str):
        return str.__len__(value) != 0  # type: ignore[arg-type]
    return issubclass(cls, int)


@dataclass(frozen=True)
class Scope:
    """A named scope: its parent, the fields it adds, all fields it needs (parents' first), and its ids.

    ``id_fields`` are the fields checked as ``int | str`` ids; the others (e.g. ``app_name``) take any
    value the encoder accepts.
    """

    name: str
    parent: str | None
    own_fields: tuple[str, ...]
    fields: tuple[str, ...]
    id_fields: frozenset[str] = frozenset()

    @property
    def property_fields(self) -> tuple[str, ...]:
        """The fields sent as properties (all but user_id, which goes to the message's userId)."""
        return tuple(f for f in self.fields if f != USER_ID)


_scopes: dict[str, Scope] = {}
# field name -> the wire key it is sent under (declared with its scope; a catalog may rename it).
_default_wire_keys: dict[str, str] = {}
_known_fields: frozenset[str] = frozenset()


def define_scope(
    name: str,
    *,
    parent: str | None = "user",
    fields: Iterable[str] | Mapping[str, str] = (),
    ids: Iterable[str] | None = None,
) -> Scope:
    """Add a scope nested in ``parent`` that adds ``fields`` (names, or a mapping name -> wire key).

    ``ids`` names the new fields that are ids, checked as ``int | str`` (default: all of them); the
    others take any encodable value. The wire key given in a mapping is the one every client, capture
    and console sends. Defining the same scope again with the same shape returns it. Raises
    ConfigurationError for an unknown parent, a bad field name or wire key (a bare str instead of a
    list, a key another field is sent under), or a name already defined differently.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigurationError(f"define_scope: scope name must be an identifier, got {name!r}")
    if parent is not None and (not isinstance(parent, str) or parent not in _scopes):
        raise ConfigurationError(f"define_scope({name!r}): unknown parent scope {parent!r} (known: {sorted(_scopes)})")
    if isinstance(fields, (str, bytes)):
        raise ConfigurationError(
            f"define_scope({name!r}): fields must be a list of names or a mapping name -> wire key, "
            f"not a bare {type(fields).__name__} (write fields=[{fields!r}])"
        )
    if isinstance(fields, Mapping):
        mapping = dict(fields)
    else:  # a list of names: each is sent under its own name
        mapping = {f: f for f in _names(fields, f"define_scope({name!r}): fields")}
    for field, key in mapping.items():
        if not isinstance(field, str) or not field.isidentifier() or keyword.iskeyword(field) or field[0] == "_":
            # A scope field is a keyword argument of every Track of the scope: a keyword (``class``) or a
            # private-looking name (``_self``) could not be one.
            raise ConfigurationError(
                f"define_scope({name!r}): field name must be an identifier, not a keyword and not starting "
                f"with '_', got {field!r}"
            )
        if field == ANONYMOUS_ID:
            raise ConfigurationError(
                f"define_scope({name!r}): {ANONYMOUS_ID!r} is reserved (bound like a scope field, sent as anonymousId)"
            )
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"define_scope({name!r}): wire key of {field!r} must be a non-empty str")
        known_key = _default_wire_keys.get(field)
        if known_key is not None and known_key != key:
            raise ConfigurationError(
                f"define_scope({name!r}): field {field!r} is already sent as {known_key!r}; rename it on the "
                f"wire with your catalog: class Events(EventName, wire_keys={{{field!r}: {key!r}}})"
            )
        owner = _field_with_key(key, exclude=field)
        if owner is not None:
            raise ConfigurationError(
                f"define_scope({name!r}): wire key {key!r} of {field!r} is already the wire key of "
                f"scope field {owner!r}"
            )
    id_names = frozenset(mapping) if ids is None else frozenset(_names(ids, f"define_scope({name!r}): ids"))
    if isinstance(ids, (str, bytes)) or not id_names <= mapping.keys():
        raise ConfigurationError(
            f"define_scope({name!r}): ids must be a list of the scope's own fields {list(mapping)}"
        )
    parent_scope = _scopes[parent] if parent is not None else None
    parent_fields = parent_scope.fields if parent_scope is not None else ()
    clash = set(parent_fields).intersection(mapping)
    if clash:
        raise ConfigurationError(f"define_scope({name!r}): fields {sorted(clash)} are already in parent {parent!r}")
    parent_ids = parent_scope.id_fields if parent_scope is not None else frozenset()
    scope = Scope(name, parent, tuple(mapping), parent_fields + tuple(mapping), parent_ids | id_names)
    existing = _scopes.get(name)
    if existing is not None:
        if existing == scope:
            return existing
        raise ConfigurationError(f"define_scope: scope {name!r} is already defined as {existing}")
    _scopes[name] = scope
    _default_wire_keys.update(mapping)
    global _known_fields
    _known_fields = frozenset(_default_wire_keys) | {ANONYMOUS_ID}
    return scope


def _names(values: object, what: str) -> list[str]:
    """``values`` as a list of str names. Raises ConfigurationError for anything else (``5``, ``[["x"]]``)."""
    try:
        names: list[object] = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigurationError(f"{what} must be a list of names, got {type(values).__name__}") from None
    bad = next((n for n in names if not isinstance(n, str)), None)
    if bad is not None:
        raise ConfigurationError(f"{what}: each name must be a str, got {type(bad).__name__}")
    return [str(n) for n in names]


def _field_with_key(key: str, *, exclude: str) -> str | None:
    # The scope field (other than ``exclude``) sent under ``key``, if any; user_id is sent as userId.
    for field, field_key in _default_wire_keys.items():
        if field != exclude and (field_key == key or (field == USER_ID and key == USER_WIRE_KEY)):
            return field
    return None


def check_wire_keys(renames: Mapping[str, str], where: str) -> dict[str, str]:
    """Validate ``renames`` (scope field -> wire key) and return every property field's resulting key.

    Raises ConfigurationError for an unknown field, user_id (always sent as userId), a key that is not
    a non-empty str, or two fields sent under one key.
    """
    if not isinstance(renames, Mapping):
        raise ConfigurationError(f"{where}: wire_keys must be a mapping scope field -> wire key")
    keys = {f: k for f, k in _default_wire_keys.items() if f != USER_ID}
    for field, key in renames.items():
        if field not in keys:
            raise ConfigurationError(
                f"{where}: wire_keys names {field!r}, which is not a scope property field (known: {sorted(keys)})"
            )
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"{where}: wire key for {field!r} must be a non-empty str")
        keys[field] = key
    seen: dict[str, str] = {USER_WIRE_KEY: USER_ID}
    for field, key in keys.items():
        if key in seen:
            raise ConfigurationError(f"{where}: scope fields {seen[key]!r} and {field!r} would both be sent as {key!r}")
        seen[key] = field
    return keys


def get_scope(name: str) -> Scope:
    """Return the scope called ``name``. Raises ScopeError naming the known scopes."""
    try:
        return _scopes[name]
    except KeyError:
        raise ScopeError(f"unknown scope {name!r} (known: {sorted(_scopes)})", field="", scope=name) from None


def scopes() -> Mapping[str, Scope]:
    """All defined scopes by name (read-only)."""
    return MappingProxyType(_scopes)


def known_fields() -> frozenset[str]:
    """Every field name some scope defines."""
    return _known_fields


def message_ids(merged: Mapping[str, object]) -> dict[str, str]:
    """The message's id keys for a record's scope: ``userId`` and/or ``anonymousId`` (text on the wire)."""
    ids: dict[str, str] = {}
    user_id = merged.get(USER_ID)
    if user_id is not None:
        ids[USER_WIRE_KEY] = str(user_id)
    anonymous_id = merged.get(ANONYMOUS_ID)
    if anonymous_id is not None:
        ids[ANONYMOUS_WIRE_KEY] = str(anonymous_id)
    return ids


def default_wire_key(field: str) -> str:
    """The wire key a field is sent under by default."""
    return _default_wire_keys.get(field, field)


define_scope("user", parent=None, fields=[USER_ID])
define_scope("project", parent="user", fields=["project_id"])
define_scope("cluster", parent="project", fields=["cluster_id"])
define_scope("registry", parent="project", fields=["registry_id"])
define_scope("application", parent="cluster", fields=["app_name", "app_namespace", "chart_name"], ids=())


def _unknown(fields: Mapping[str, object], where: str) -> ScopeError:
    bad = sorted(set(fields) - _known_fields)
    return ScopeError(
        f"{where}: unknown scope field {bad[0]!r} (known fields: {sorted(_known_fields)}; add one with define_scope)",
        field=bad[0],
    )


def bind_scope(**fields: object) -> ScopeToken:
    """Bind scope fields until ``reset_scope(token)``, for middleware that cannot use ``with``.

    Raises ScopeError for a field no scope defines.
    """
    if not _known_fields.issuperset(fields):
        raise _unknown(fields, "bind_scope")
    return attach(fields)


def reset_scope(token: ScopeToken) -> None:
    """Undo the ``bind_scope`` that returned ``token``, restoring exactly what was bound before.

    Raises ValueError if the token was made in another context or was already used.
    """
    detach(token)


def has_bound(bound: Mapping[str, object]) -> bool:
    """True when ``bound`` (a snapshot of the bound fields) holds at least one field."""
    return any(value is not None for key, value in bound.items() if key is not _TOKEN)


def current_scope() -> Mapping[str, object]:
    """The scope fields bound in the current context, as a read-only mapping."""
    return MappingProxyType({k: v for k, v in _get().items() if v is not None and k is not _TOKEN})


# Where a dict bound by an analytics_scope block keeps (token, block) of the binding: the dict the
# exiting context still sees bound says which token to reset, even when one scope object is entered by
# several threads or tasks at once. Not a str, so it never meets a field name; current_scope() hides it.
_TOKEN: Any = object()


class AnalyticsScope(tuple):  # type: ignore[type-arg]
    """What ``analytics_scope(...)`` returns: a context manager (sync and async) and a decorator.

    A tuple holding the fields, so making one costs no Python ``__init__`` (the binding is on the hot
    path of every request).
    """

    __slots__ = ()

    @property
    def _fields(self) -> dict[str, object]:
        fields: dict[str, object] = self[0]
        return fields

    # The default arguments make the module's functions locals: this pair runs on every request.
    def __enter__(self, _get: Any = _get, _set: Any = _set, _key: Any = _TOKEN) -> None:
        merged = {**_get(), **self[0]}
        merged[_key] = (_set(merged), self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        _get: Any = _get,
        _reset: Any = _reset,
        _key: Any = _TOKEN,
    ) -> None:
        try:
            token, owner = _get()[_key]
            if owner is self:
                _reset(token)
                return
        except (KeyError, ValueError, RuntimeError):  # nothing of ours bound, or a token of another context
            pass
        self._exit_unusual()

    def _exit_unusual(self) -> None:
        # What is bound now is not this block's dict: something bound inside the block was not reset (a
        # bind_scope without reset_scope), or the block is left in another context than it was entered
        # in (a generator resumed elsewhere). Walk back through the bindings of this context to this
        # block's own and reset that: exactly what was bound before the block comes back.
        value: object = _get()
        while isinstance(value, dict) and (entry := value.get(_TOKEN)) is not None:
            token, owner = entry
            if owner is self:
                try:
                    _reset(token)
                    return
                except (ValueError, RuntimeError):
                    break
            value = token.old_value
        # Not this context's to reset, and raising here would break the caller.
        _report_foreign_exit()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: _F) -> _F:
        fields = self._fields

        if _is_async(func):

            @wrapt.decorator
            async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                token = attach(fields)
                try:
                    return await wrapped(*args, **kwargs)
                finally:
                    detach(token)

            return cast("_F", async_wrapper(func))

        @wrapt.decorator
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            token = attach(fields)
            try:
                return wrapped(*args, **kwargs)
            finally:
                detach(token)

        return cast("_F", wrapper(func))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"analytics_scope({inner})"


#: Seconds between two log lines about analytics_scope blocks left in another context.
FOREIGN_EXIT_LOG_INTERVAL = 60.0
#: Where those lines go: rate-limited like every other report (the first at once, then a summary of
#: the count once per interval by a timer, and at shutdown and exit: the client flushes it).
foreign_exit_log = RateLimitedLog(FOREIGN_EXIT_LOG_INTERVAL)

_FOREIGN_EXIT = (
    "analytics_scope: a `with analytics_scope(...)` block was exited in another context (thread or task) "
    "than it was entered in, so the binding it made there could not be undone from here; the events "
    "inside the block were filled normally. This happens when __enter__ and __exit__ run in different "
    "threads/tasks (e.g. a sync generator dependency of a web framework); bind the scope where the work "
    "runs (the decorator form, or bind_scope/reset_scope in one context)"
)


def _report_foreign_exit() -> None:
    # One request per occurrence would be thousands of lines (a sync FastAPI dependency runs its
    # block in a worker thread).
    foreign_exit_log.report(ScopeError(_FOREIGN_EXIT, field=""))


_new_scope = tuple.__new__


def analytics_scope(**fields: object) -> AnalyticsScope:
    """Bind scope fields for a block, or for every call of a decorated function (sync or async).

    ``with analytics_scope(user_id=1, project_id=2):`` (also ``async with``, and ``@analytics_scope(...)``).
    Nested blocks merge and the inner value wins; leaving the block restores exactly what was bound
    before, also on exceptions. A value of None unbinds that field. ``current_scope()`` shows what is
    bound. Raises ScopeError for a field no scope defines.
    """
    if not _known_fields.issuperset(fields):
        raise _unknown(fields, "analytics_scope")
    return _new_scope(AnalyticsScope, (fields,))


def _is_async(func: object) -> bool:
    import inspect

    target = getattr(func, "__func__", func)
    return inspect.iscoroutinefunction(target)
