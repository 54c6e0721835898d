"""Scope that follows the work: snapshots, propagating executors, the thread switch, and carriers.

A ``ContextVar`` is seen by asyncio tasks and ``asyncio.to_thread``, but not by
``ThreadPoolExecutor.submit``, ``loop.run_in_executor`` or ``threading.Thread``: work handed there runs
with nothing bound. A snapshot captures the submitter's context and runs each piece of work in its own
copy of it (one ``Context`` cannot be entered by two threads at once). A carrier moves the scope across
a process boundary (a queue's headers, a service-to-service call, a process pool's task) as a small
versioned text value. A process pool's worker never runs a task under the scope it inherited when it
was forked: that is the pool creator's scope, not the task's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import threading
from collections.abc import Callable, Mapping, MutableMapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, cast

from instrument import _client, _forks, _hints, _scopes, _state
from instrument._errors import AnalyticsError, ConfigurationError, PropagationError

P = ParamSpec("P")
R = TypeVar("R")

#: The carrier key (also an HTTP header name: headers are case-insensitive).
SCOPE_HEADER = "instrument-scope"
#: The carrier format written by ``inject_scope``; ``extract_scope`` refuses any other.
CARRIER_VERSION = "1"
#: The largest carrier value accepted or written, in characters (ids are short; this bounds hostile input).
MAX_CARRIER_CHARS = 4096
# A bound id longer than this is not an id: refused in a carrier.
_MAX_VALUE_CHARS = 512


def report(error: AnalyticsError) -> None:
    """Raise ``error`` in strict mode; otherwise report it like a dropped event (on_error or the rate-limited log)."""
    if _state.current.strict:
        raise error
    _client.get_client()._report(error)


# -- snapshots ----------------------------------------------------------------------------------------


class ScopeSnapshot:
    """The context of the code that made it (bound scope included), to run work under elsewhere.

    Each ``run`` enters a fresh copy, so one snapshot can serve many threads at once and nothing a task
    binds leaks into another task or back into the snapshot.
    """

    __slots__ = ("_context",)

    def __init__(self, context: contextvars.Context | None = None) -> None:
        self._context = context if context is not None else contextvars.copy_context()

    @property
    def scope(self) -> Mapping[str, object]:
        """The scope fields bound when the snapshot was taken (read-only)."""
        bound = _scopes.bound_in(self._context)
        return MappingProxyType({k: v for k, v in bound.items() if isinstance(k, str) and v is not None})

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` in a fresh copy of the snapshot's context and return its result."""
        return self._context.copy().run(fn, *args, **kwargs)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """``fn`` made to run under this snapshot (a fresh copy per call), wherever it is called."""

        @functools.wraps(fn)
        def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
            return self._context.copy().run(fn, *args, **kwargs)

        return scoped

    def __repr__(self) -> str:
        return f"ScopeSnapshot({dict(self.scope)!r})"


def scope_snapshot() -> ScopeSnapshot:
    """Capture the current context (the bound scope with it) to run work under in another thread."""
    return ScopeSnapshot()


def _bind_snapshot(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], R]:
    context = contextvars.copy_context()
    return functools.partial(context.run, fn, *args, **kwargs)


class PropagatingExecutor(Executor):
    """Wraps any ``concurrent.futures.Executor``: each task runs under the scope of whoever submitted it.

    ``PropagatingExecutor(ThreadPoolExecutor(8))``; ``submit``, ``map`` and ``shutdown`` as usual, and a
    ``with`` block shuts the wrapped executor down. Every task gets its own copy of its submitter's
    context, taken at ``submit``: a pool thread's own context (whoever started it) never shows through.
    Over a ``ProcessPoolExecutor`` the scope travels with each task as a carrier (``ScopedCall``), since
    a context cannot be pickled: ``fn`` and its arguments must be picklable, as for the pool itself.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` under the caller's scope; returns the wrapped executor's Future."""
        if isinstance(self.executor, ProcessPoolExecutor):
            return self.executor.submit(ScopedCall(fn), *args, **kwargs)
        return self.executor.submit(_bind_snapshot(fn, args, kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped executor down."""
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)


class ScopedCall:
    """A picklable callable: ``fn`` run under the scope bound where the ``ScopedCall`` was made.

    The scope travels as a carrier value (ids only), so the call can cross into another process (a
    process pool's task). Each call binds exactly that scope, whatever the process had bound, and
    restores it after. A scope that cannot be carried (a value that is not an id) is reported when the
    call is made and the work runs unbound, never under another scope.
    """

    __slots__ = ("carrier", "fn")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.carrier = encode_scope(_scopes.get_bound())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fields: dict[str, object] = {}
        if self.carrier is not None:
            try:
                fields = decode_scope(self.carrier, where="a process pool task")
            except PropagationError as error:
                report(error)
        token = bind_exactly(fields)
        try:
            return self.fn(*args, **kwargs)
        finally:
            reset_quietly(token, "a process pool task")

    def __getstate__(self) -> tuple[Callable[..., Any], str | None]:
        return self.fn, self.carrier

    def __setstate__(self, state: tuple[Callable[..., Any], str | None]) -> None:
        self.fn, self.carrier = state

    def __repr__(self) -> str:
        return f"ScopedCall({self.fn!r})"


def _drop_inherited_scope() -> None:
    # In a pool worker (started by multiprocessing.Pool or ProcessPoolExecutor) the scope bound when the
    # worker was forked belongs to whoever created the pool, not to the tasks it will run: unless a task
    # carries its scope (ScopedCall), it runs unbound, and its events are reported, never sent as that user.
    if not _forks.is_pool_worker():
        return
    _hints.set_hint(_hints.POOL_WORKER)
    if _scopes.get_bound():
        bind_exactly({})


_forks.at_child_start(_drop_inherited_scope)


def run_in_executor(
    executor: Executor | None, fn: Callable[..., R], /, *args: Any, loop: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[R]:
    """``loop.run_in_executor(executor, fn, *args)`` with ``fn`` running under the caller's scope.

    ``executor=None`` uses the loop's default executor. Await the result. Raises RuntimeError when no
    loop is given and none is running.
    """
    loop = loop if loop is not None else asyncio.get_running_loop()
    return loop.run_in_executor(executor, _bind_snapshot(fn, args, {}))


# -- the global switch -----------------------------------------------------------------------------

_original_start = threading.Thread.start
_original_submit = ThreadPoolExecutor.submit
_switch_lock = threading.Lock()


def _start_with_scope(self: threading.Thread) -> None:
    context = contextvars.copy_context()
    run = self.run

    def run_in_context() -> None:
        try:
            context.run(run)
        finally:
            # The instance attribute refers back to the thread: drop it so the thread is freed promptly.
            self.__dict__.pop("run", None)

    self.run = run_in_context  # type: ignore[method-assign]
    _original_start(self)


def _submit_with_scope(self: ThreadPoolExecutor, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
    return _original_submit(self, _bind_snapshot(fn, args, kwargs))


def _process_submit_with_scope(
    self: ProcessPoolExecutor, fn: Callable[..., R], /, *args: Any, **kwargs: Any
) -> Future[R]:
    return _original_process_submit(self, ScopedCall(fn), *args, **kwargs)


_original_process_submit = ProcessPoolExecutor.submit
# multiprocessing.Pool's methods that take the work as their first argument (apply and the rest call them).
_POOL_METHODS = ("apply_async", "map", "map_async", "starmap", "starmap_async", "imap", "imap_unordered")
_original_pool_methods: dict[str, Callable[..., Any]] = {}


def _pool_method_with_scope(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def with_scope(self: Any, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return original(self, ScopedCall(func), *args, **kwargs)

    return with_scope


def _switch_pools(enabled: bool) -> None:
    from multiprocessing.pool import Pool

    if not _original_pool_methods:
        _original_pool_methods.update((name, getattr(Pool, name)) for name in _POOL_METHODS)
    for name, original in _original_pool_methods.items():
        setattr(Pool, name, _pool_method_with_scope(original) if enabled else original)
    ProcessPoolExecutor.submit = _process_submit_with_scope if enabled else _original_process_submit  # type: ignore[method-assign,assignment]


def propagate_scope(enabled: bool = True) -> bool:
    """Make threads, thread pools and process pools carry the caller's scope to the work they run.

    Patches ``threading.Thread.start``, ``ThreadPoolExecutor.submit`` (a copy of the caller's context),
    ``ProcessPoolExecutor.submit`` and ``multiprocessing.Pool``'s ``apply``/``map``/``starmap``/``imap``
    families (a carrier, see ``ScopedCall``). Off by default; ``propagate_scope(False)`` restores the
    originals. Process-wide, as sentry-sdk's ``propagate_scope`` is, so prefer ``PropagatingExecutor``
    or a snapshot where you can. Returns whether it was on before.
    """
    with _switch_lock:
        was_on = threading.Thread.start is not _original_start
        if enabled:
            threading.Thread.start = _start_with_scope  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _submit_with_scope  # type: ignore[assignment]
        else:
            threading.Thread.start = _original_start  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]
        if enabled or was_on:
            _switch_pools(enabled)
        return was_on


def is_propagating() -> bool:
    """True while ``propagate_scope()`` is on."""
    return threading.Thread.start is not _original_start


# -- carriers ------------------------------------------------------------------------------------------


def encode_scope(fields: Mapping[str, object]) -> str | None:
    """The carrier value for ``fields`` (``"1:" + compact JSON``), or None (reported) if it cannot be made."""
    payload: dict[str, object] = {}
    known = _scopes.known_fields()
    for name, value in fields.items():
        if not isinstance(name, str) or value is None:
            continue
        if name not in known or not _scopes.is_id(value):
            report(
                PropagationError(
                    f"inject_scope: scope field {name!r} holds a {type(value).__name__}, "
                    "not an int or non-empty str id; the scope is not carried",
                    source="carrier",
                    field=name,
                )
            )
            return None
        payload[name] = value
    text = f"{CARRIER_VERSION}:{json.dumps(payload, separators=(',', ':'), sort_keys=True)}"
    if len(text) > MAX_CARRIER_CHARS:
        report(
            PropagationError(
                f"inject_scope: the scope is {len(text)} characters, over the carrier limit of {MAX_CARRIER_CHARS}; "
                "it is not carried",
                source="carrier",
            )
        )
        return None
    return text


def inject_scope(carrier: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """Write the bound scope into ``carrier`` (headers, a message's dict) under ``SCOPE_HEADER``; return it.

    Nothing bound writes an empty scope. A value that cannot be carried is reported (raised in strict
    mode) and nothing is written.
    """
    target: MutableMapping[str, Any] = {} if carrier is None else carrier
    text = encode_scope(_scopes.get_bound())
    if text is not None:
        target[SCOPE_HEADER] = text
    return target


def _carrier_value(carrier: Mapping[str, Any]) -> object:
    value = carrier.get(SCOPE_HEADER)
    if value is None:
        # Header mappings differ in case ("Instrument-Scope"); WSGI spells it HTTP_INSTRUMENT_SCOPE.
        for key, candidate in carrier.items():
            if isinstance(key, str) and key.lower().replace("_", "-") in (SCOPE_HEADER, "http-" + SCOPE_HEADER):
                return candidate
    return value


def decode_scope(value: object, *, where: str = "extract_scope") -> dict[str, object]:
    """Parse a carrier value into scope fields. Raises PropagationError (naming the problem, never the value)."""

    def bad(reason: str, field: str | None = None) -> PropagationError:
        return PropagationError(f"{where}: {reason}; the work runs unbound", source="carrier", field=field)

    if isinstance(value, bytes):
        if len(value) > MAX_CARRIER_CHARS:
            raise bad(f"the carrier value is {len(value)} bytes, over the limit of {MAX_CARRIER_CHARS}")
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise bad("the carrier value is not ASCII") from None
    if not isinstance(value, str):
        raise bad(f"the carrier value is a {type(value).__name__}, not a str")
    if len(value) > MAX_CARRIER_CHARS:
        raise bad(f"the carrier value is {len(value)} characters, over the limit of {MAX_CARRIER_CHARS}")
    version, sep, body = value.partition(":")
    if not sep or version != CARRIER_VERSION:
        raise bad(f"unsupported carrier version {version[:8]!r} (this version reads {CARRIER_VERSION!r})")
    try:
        fields = json.loads(body)
    except ValueError:
        raise bad("the carrier value is not valid JSON") from None
    if not isinstance(fields, dict):
        raise bad(f"the carrier holds a JSON {type(fields).__name__}, not an object")
    known = _scopes.known_fields()
    for name, field_value in fields.items():
        if name not in known:
            raise bad(f"the carrier names a field no scope defines ({len(name)} characters)")
        if not _scopes.is_id(field_value):
            raise bad(f"scope field {name!r} holds a JSON {type(field_value).__name__}, not an id", name)
        if isinstance(field_value, str) and len(field_value) > _MAX_VALUE_CHARS:
            raise bad(f"scope field {name!r} is {len(field_value)} characters long", name)
    return fields


def extract_scope(carrier: Mapping[str, Any] | None, *, required: bool = False) -> _scopes.ScopeFields:
    """The scope fields a carrier holds, ready for ``analytics_scope(**fields)``.

    A missing value gives ``{}`` (reported when ``required``). A bad one (not text, too big, another
    version, not JSON, a field no scope defines, a value that is not an id) gives ``{}`` and is reported:
    in strict mode it raises PropagationError. Never raises anything else, whatever the carrier holds.
    """
    try:
        value = _carrier_value(carrier) if isinstance(carrier, Mapping) else None
        if value is None:
            if required:
                raise PropagationError(
                    "extract_scope: the carrier holds no scope; the work runs unbound", source="carrier"
                )
            return {}
        return cast("_scopes.ScopeFields", decode_scope(value))
    except PropagationError as error:
        report(error)
        return {}
    except Exception as error:  # a hostile mapping whose methods raise: still never the work's failure
        report(PropagationError(f"extract_scope: reading the carrier raised {type(error).__name__}", source="carrier"))
        return {}


# -- binding helpers for integrations --------------------------------------------------------------------


def bind_exactly(fields: Mapping[str, object]) -> _scopes.ScopeToken:
    """Bind exactly ``fields`` (replacing whatever is bound), for work that starts from a carrier."""
    return _scopes.attach(fields, replace=True)


def reset_quietly(token: _scopes.ScopeToken | None, where: str) -> None:
    """Undo ``bind_exactly``; a token of another context is reported (raised in strict mode), never fatal.

    After a failed reset nothing is left bound here: the next work on this thread must not see this scope.
    """
    if token is None:
        return
    try:
        _scopes.detach(token)
    except (ValueError, RuntimeError):
        _scopes.attach({}, replace=True)
        report(
            PropagationError(
                f"{where}: the scope was reset in a different context than it was bound in; it was cleared instead",
                source=where,
            )
        )


def resolve(resolvers: Mapping[str, Callable[..., object]], *args: Any, where: str) -> _scopes.ScopeFields | None:
    """Run user resolvers (field -> callable(*args)); None (reported, raised in strict mode) if one fails.

    A resolver returning None leaves its field unbound. A field no scope defines, or a value that is not
    an int or non-empty str id, is a failure too.
    """
    fields: dict[str, object] = {}
    for name, resolver in resolvers.items():
        try:
            value = resolver(*args)
        except Exception as error:
            report(
                PropagationError(
                    f"{where}: the resolver of {name!r} raised {type(error).__name__}; the request runs unbound",
                    source=where,
                    field=name,
                )
            )
            return None
        if value is None:
            continue
        if not _scopes.is_id(value):
            report(
                PropagationError(
                    f"{where}: the resolver of {name!r} returned a {type(value).__name__}, "
                    "not an int or non-empty str id; the request runs unbound",
                    source=where,
                    field=name,
                )
            )
            return None
        fields[name] = value
    return cast("_scopes.ScopeFields", fields)


def check_resolvers(resolvers: Mapping[str, Any], where: str) -> dict[str, Callable[..., object]]:
    """Validate resolver names and callables when an integration is set up. Raises ConfigurationError."""
    checked = dict(resolvers)
    unknown = sorted(set(checked) - _scopes.known_fields())
    if unknown:
        raise ConfigurationError(
            f"{where}: resolver for {unknown[0]!r}, which no scope defines (known: {sorted(_scopes.known_fields())})"
        )
    for name, resolver in checked.items():
        if not callable(resolver):
            raise ConfigurationError(f"{where}: the resolver of {name!r} is a {type(resolver).__name__}, not callable")
    return checked
