"""``@tracks``: send one event each time a business function succeeds (or fails, with ``on_error``).

The event is a Track, or any other call declared as a class (Identify, Group, Page, Screen, Alias).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import MethodType
from typing import Any, ParamSpec, TypeVar, Union

import wrapt

from instrument._calls import Alias, Group, Page, Screen
from instrument._codegen import make_function
from instrument._errors import AnalyticsError, ConfigurationError, PropsError
from instrument._events import EventName
from instrument._fields import MISSING
from instrument._records import Identify, Track, _Record, adhoc_track, spec_of
from instrument._scopes import scopes
from instrument._state import current as _state

P = ParamSpec("P")
R = TypeVar("R")

# A runtime alias, so no `|` on 3.10.
EventOrTrack = Union[  # noqa: UP007
    type[Track], type[Identify], type[Group], type[Page], type[Screen], type[Alias], EventName, str
]


class Call:
    """What ``props(call)`` sees: the call's arguments by name, its result, or its exception."""

    __slots__ = ("_arguments", "_func", "args", "exception", "instance", "kwargs", "result")

    def __init__(self, func: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # ``func`` as declared: for a method (``instance`` given) its first parameter is self/cls,
        # which ``args`` does not hold. A bound method brings its own self.
        self._func = func
        self._arguments: dict[str, Any] | None = None
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None
        self.exception: BaseException | None = None

    @property
    def arguments(self) -> Mapping[str, Any]:
        """Every argument by parameter name, defaults applied (bound lazily, on first use)."""
        if self._arguments is None:
            func = self._func
            args = self.args
            if isinstance(func, MethodType):
                args = (func.__self__, *args)
                func = func.__func__
            elif self.instance is not None:
                args = (self.instance, *args)
            bound = inspect.signature(func).bind(*args, **self.kwargs)
            bound.apply_defaults()
            self._arguments = dict(bound.arguments)
        return self._arguments

    def __repr__(self) -> str:
        return f"Call(args={self.args!r}, kwargs={self.kwargs!r}, result={self.result!r}, exception={self.exception!r})"


PropsFunc = Callable[[Call], Mapping[str, Any]]


def _resolve(target: EventOrTrack, scope: str | None, role: str) -> type[_Record]:
    if isinstance(target, type) and issubclass(target, _Record):
        spec = spec_of(target)
        if scope is not None and scope != spec.scope.name:
            raise ConfigurationError(
                f"@tracks: scope={scope!r} conflicts with {target.__qualname__}'s scope {spec.scope.name!r}"
            )
        return target
    if isinstance(target, str):
        if scope is not None and (not isinstance(scope, str) or scope not in scopes()):
            raise ConfigurationError(f"@tracks: unknown scope {scope!r} (known: {sorted(scopes())})")
        return adhoc_track(target, scope or "user")
    raise ConfigurationError(
        f"@tracks: {role} must be a Track subclass (or another call's class) or an event name, got {target!r}"
    )


class _Plan:
    """Which parameters of the decorated function feed which fields, computed once."""

    def __init__(self, func: Callable[..., Any], names: frozenset[str]) -> None:
        # The function as declared, self/cls first for a method: the function of a classmethod,
        # staticmethod or bound method (wrapt calls a decorated bound method with its self as instance).
        raw = getattr(func, "__func__", func)
        self.func: Callable[..., Any] = raw
        params = list(inspect.signature(raw).parameters.values())
        self.entries: list[tuple[str, int | None, Any]] = []
        self.var_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
        for index, p in enumerate(params):
            if p.name not in names or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            position = index if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) else None
            default = MISSING if p.default is p.empty else p.default
            self.entries.append((p.name, position, default))
        self.extra = names - {e[0] for e in self.entries} if self.var_keyword else frozenset()

    def builder(self, cls: type[_Record]) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], _Record]:
        """A generated ``build(instance, args, kwargs) -> cls(...)`` for this plan.

        Calls without keyword arguments (the common case) pass each field straight from its position
        or default; others (and a function taking ``**kwargs``) go through ``extract``. Same result as
        ``cls(**self.extract(...))``.
        """
        ns: dict[str, Any] = {"_cls": cls, "_extract": self.extract, "_len": len}
        if self.extra:
            lines = ["def build(_instance, _args, _kwargs):", "    return _cls(**_extract(_instance, _args, _kwargs))"]
        elif not self.entries:  # no parameter feeds a field: nothing to look up
            lines = ["def build(_instance, _args, _kwargs):", "    return _cls()"]
        else:
            parts = []
            for i, (name, position, default) in enumerate(self.entries):
                ns[f"_d{i}"] = default
                if position is None:
                    parts.append(f"{name}=_d{i}")
                else:
                    lower = "_o <= " if position == 0 else ""
                    parts.append(f"{name}=(_args[{position} - _o] if {lower}{position} < _n else _d{i})")
            lines = [
                "def build(_instance, _args, _kwargs):",
                "    if _kwargs:",
                "        return _cls(**_extract(_instance, _args, _kwargs))",
                "    _o = 0 if _instance is None else 1",
                "    _n = _len(_args) + _o",
                f"    return _cls({', '.join(parts)})",
            ]
        func = self.func
        build: Callable[[Any, tuple[Any, ...], dict[str, Any]], _Record] = make_function(
            "build",
            "\n".join(lines) + "\n",
            ns,
            what=f"@tracks({cls.__qualname__}) builder",
            module=getattr(func, "__module__", None) or __name__,
            qualname=getattr(func, "__qualname__", None) or repr(func),
            doc=f"Build the {cls.__qualname__} sent by {getattr(func, '__qualname__', func)!r}.",
        )
        return build

    def extract(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        # wrapt gives an instance (or class) exactly when a method was called with its self/cls
        # left out of args, however it was reached (obj.m(), Cls.m(obj), classmethods, stacked wrappers).
        offset = 0 if instance is None else 1
        out: dict[str, Any] = {}
        for name, position, default in self.entries:
            if name in kwargs:
                out[name] = kwargs[name]
            elif position is not None and 0 <= position - offset < len(args):
                out[name] = args[position - offset]
            elif default is not MISSING:
                out[name] = default
        for name in self.extra:
            if name in kwargs:
                out[name] = kwargs[name]
        return out


def _building_failed(cls: type[_Record], error: Exception) -> AnalyticsError:
    """The AnalyticsError for a plain exception raised while building ``cls``: its type, never its text
    (an exception's message may quote a property value); the exception itself is the ``__cause__``."""
    wrapped = AnalyticsError(
        f"@tracks({cls.__qualname__}): building the event failed: {type(error).__name__}", track=cls.__qualname__
    )
    wrapped.__cause__ = error
    return wrapped


class _Emitter:
    """Builds and sends the success (or failure) track for one decorated function."""

    def __init__(
        self,
        func: Callable[..., Any],
        track_cls: type[_Record],
        failure_cls: type[_Record] | None,
        props: PropsFunc | None,
    ) -> None:
        self.track_cls = track_cls
        self.failure_cls = failure_cls
        self.props = props
        self.plan = _Plan(func, spec_of(track_cls).field_names)
        self.build = self.plan.builder(track_cls)
        if failure_cls is not None:
            failure_spec = spec_of(failure_cls)
            self.failure_plan = _Plan(func, failure_spec.field_names)
            self.failure_sets_error = "error" in failure_spec.by_name or failure_spec.free_form

    def success(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        client = _state.client
        try:
            if self.props is None:
                record = self.build(instance, args, kwargs)
            else:
                fields = self.plan.extract(instance, args, kwargs)
                call = Call(self.plan.func, instance, args, kwargs)
                call.result = result
                fields.update(self._props(call))
                record = self.track_cls(**fields)
            client._emit(record, self.track_cls)
        except AnalyticsError as error:
            if client.strict:
                raise
            client.dispatcher.drop(error)
        except Exception as error:
            # A default_factory or a hook (redact) failing: never let it replace the function's result.
            wrapped_error = _building_failed(self.track_cls, error)
            if client.strict:
                raise wrapped_error from error
            client.dispatcher.drop(wrapped_error)

    def failure(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException
    ) -> None:
        # The business exception is re-raised by the caller whatever happens here, so analytics
        # errors on this path are reported, never raised (not even in strict mode).
        failure_cls = self.failure_cls
        assert failure_cls is not None
        client = _state.client
        try:
            fields = self.failure_plan.extract(instance, args, kwargs)
            if self.failure_sets_error:
                fields["error"] = type(exc).__name__
            if self.props is not None:
                call = Call(self.plan.func, instance, args, kwargs)
                call.exception = exc
                fields.update(self._props(call))
            # In strict mode these raise; the except below reports them instead.
            client._emit(failure_cls(**fields), failure_cls)
        except AnalyticsError as error:
            client.dispatcher.drop(error)
        except Exception as error:  # never mask the business exception
            client.dispatcher.drop(_building_failed(failure_cls, error))

    def _props(self, call: Call) -> Mapping[str, Any]:
        try:
            extra = self.props(call)  # type: ignore[misc]
        except AnalyticsError:
            raise
        except Exception as error:
            raise PropsError(
                f"@tracks({self.track_cls.__qualname__}): props raised {type(error).__name__}",
                track=self.track_cls.__qualname__,
            ) from error
        if not isinstance(extra, Mapping):
            raise PropsError(
                f"@tracks({self.track_cls.__qualname__}): props must return a mapping, got {type(extra).__name__}",
                track=self.track_cls.__qualname__,
            )
        return extra


def tracks(
    event_or_track: EventOrTrack,
    scope: str | None = None,
    props: PropsFunc | None = None,
    on_error: EventOrTrack | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Send ``event_or_track`` each time the decorated function returns normally.

    ``event_or_track`` is a Track class, an event name, or the class of another call: ``@tracks(Membership)``
    sends that Group when a membership function succeeds, ``@tracks(Alias)`` an alias when a signup does.
    Fields are filled, later winning: the bound analytics_scope, the function's arguments whose names
    match a field, then ``props(call)``. With ``on_error=FailureTrack`` that track is sent when the
    function raises (``error`` = the exception's type name), and the exception is re-raised unchanged.
    Works on functions, methods, class/static methods, coroutines, generators and async generators
    (sent when exhausted). Analytics failures are reported and counted, and raise only in strict mode.
    Raises ConfigurationError (at decoration) for a bad target, scope or props, EventNameError for a bare
    event name that breaks the naming convention.
    """
    track_cls = _resolve(event_or_track, scope, "event_or_track")
    failure_cls = _resolve(on_error, scope, "on_error") if on_error is not None else None
    if props is not None and not callable(props):
        raise ConfigurationError(f"@tracks: props must be callable, got {props!r}")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        target = getattr(func, "__func__", func)
        if not callable(target):
            raise ConfigurationError(f"@tracks: cannot decorate {func!r}")
        emitter = _Emitter(func, track_cls, failure_cls, props)
        success, failure = emitter.success, emitter.failure
        catch = failure_cls is not None

        if inspect.isasyncgenfunction(target):

            @wrapt.decorator
            def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _agen(wrapped, instance, args, kwargs, success, failure if catch else None)

            return agen_wrapper(func)

        if inspect.iscoroutinefunction(target):

            @wrapt.decorator
            def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _acall(wrapped, instance, args, kwargs, success, failure if catch else None)

            return async_wrapper(func)

        if inspect.isgeneratorfunction(target):

            @wrapt.decorator
            def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                return _gen(wrapped, instance, args, kwargs, success, failure if catch else None)

            return gen_wrapper(func)

        if catch:

            @wrapt.decorator
            def guarded_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                try:
                    result = wrapped(*args, **kwargs)
                except Exception as exc:
                    failure(wrapped, instance, args, kwargs, exc)
                    raise
                success(wrapped, instance, args, kwargs, result)
                return result

            return guarded_wrapper(func)

        @wrapt.decorator
        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            result = wrapped(*args, **kwargs)
            success(wrapped, instance, args, kwargs, result)
            return result

        return wrapper(func)

    return decorate


_Success = Callable[[Any, Any, tuple[Any, ...], dict[str, Any], Any], None]
_Failure = Callable[[Any, Any, tuple[Any, ...], dict[str, Any], BaseException], None]


async def _acall(
    wrapped: Any, instance: Any, args: Any, kwargs: Any, success: _Success, failure: _Failure | None
) -> Any:
    try:
        result = await wrapped(*args, **kwargs)
    except Exception as exc:
        if failure is not None:
            failure(wrapped, instance, args, kwargs, exc)
        raise
    success(wrapped, instance, args, kwargs, result)
    return result


def _gen(
    wrapped: Any, instance: Any, args: Any, kwargs: Any, success: _Success, failure: _Failure | None
) -> Generator[Any, Any, Any]:
    try:
        result = yield from wrapped(*args, **kwargs)
    except Exception as exc:
        if failure is not None:
            failure(wrapped, instance, args, kwargs, exc)
        raise
    success(wrapped, instance, args, kwargs, result)
    return result


async def _agen(
    wrapped: Any, instance: Any, args: Any, kwargs: Any, success: _Success, failure: _Failure | None
) -> AsyncGenerator[Any, Any]:
    agen = wrapped(*args, **kwargs)
    try:
        try:
            item = await agen.__anext__()
        except StopAsyncIteration:
            item = _DONE
        while item is not _DONE:
            try:
                sent = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as thrown:  # forwarded into the wrapped generator, like yield from
                try:
                    item = await agen.athrow(thrown)
                except StopAsyncIteration:
                    item = _DONE
            else:
                try:
                    item = await agen.asend(sent)
                except StopAsyncIteration:
                    item = _DONE
    except Exception as exc:
        if failure is not None:
            failure(wrapped, instance, args, kwargs, exc)
        raise
    success(wrapped, instance, args, kwargs, None)


_DONE: Any = object()
