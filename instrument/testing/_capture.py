"""``capture_events()``: route every event to memory, in strict mode, and restore everything after."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from instrument import _client, _scopes, _state
from instrument._errors import AnalyticsError, ClosedError, DeliveryError, NotConfiguredError, QueueFullError
from instrument.testing._assertions import CapturedEvents
from instrument.testing._matching import AnalyticsAssertionError
from instrument.transports import MemoryTransport

R = TypeVar("R")

# Errors that describe the run, not the code: they never count as violations.
_RUNTIME_ERRORS = (NotConfiguredError, QueueFullError, ClosedError, DeliveryError)


class _CaptureClient(_client.Client):
    """The client a capture installs. ``shutdown()`` (an app's lifespan calls ``instrument.shutdown()``)
    delivers what is pending and keeps capturing: a capture ends when its block ends, not before, so
    later events are captured instead of being dropped with ClosedError."""

    def shutdown(self, timeout: float = 5.0) -> int:
        self.flush(timeout)
        return 0

    def end(self) -> None:
        """Really shut down (the capture is over)."""
        super().shutdown(0)


# The captures now active, innermost last (reset() ends them), and the threading.excepthook that was
# installed before the first of them.
_active: list[_Capture] = []
_hook_before: Any = None


class _Capture:
    """One ``capture_events()``: a context manager, and a decorator giving each call its own capture."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.active = False
        self._lock = threading.Lock()
        self._events: CapturedEvents | None = None
        self._client: _CaptureClient | None = None
        self._previous: _client.Client | None = None
        self._scope: dict[str, object] = {}
        self._scope_token: Any = None
        self._intruders: list[_client.Client] = []
        self._previous_interceptor: Callable[[Any], None] | None = None
        self._previous_hook: Any = None

    # -- context manager ----------------------------------------------------------------------------

    def __enter__(self) -> CapturedEvents:
        global _hook_before
        with self._lock:
            if self.active:
                raise RuntimeError("this capture_events() is already active; make a new one to nest captures")
            self.active = True
        previous = _client.get_client()
        transport = MemoryTransport(records=True)
        events = CapturedEvents(transport, previous.options)
        events.destinations = {d.name: d for d in previous.destinations}
        client = _CaptureClient(
            transport, previous.settings, strict=self.strict, on_error=events.errors.append, sync=True
        )
        self._events, self._client = events, client
        self._intruders = []
        self._scope = _scopes.get_bound()
        self._scope_token = _scopes.attach(self._scope, replace=True)
        with _state.lock:
            self._previous = _state.install(client)
            self._previous_interceptor, _state.current.interceptor = _state.current.interceptor, self.adopt
            self._previous_hook, threading.excepthook = threading.excepthook, self._thread_raised
            if not _active:
                _hook_before = self._previous_hook
            _active.append(self)
        return events

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        __tracebackhide__ = True
        client, events = self._client, self._events
        if client is None or events is None:  # ended by reset(), or misuse
            return
        try:
            self._restore()
            try:
                _scopes.detach(self._scope_token)
            except ValueError:  # left in another context than entered: restore the value instead
                _scopes.attach(self._scope, replace=True)
        finally:
            self._scope_token = None
        if exc_type is None and self.strict:
            violations = [e for e in events.errors if not isinstance(e, _RUNTIME_ERRORS)]
            if violations:
                raise AnalyticsAssertionError(
                    f"{len(violations)} analytics violation(s) were reported (not raised) while capturing in strict "
                    "mode, by @tracks(on_error=...) while the business exception propagated, or raised in a thread "
                    "that did not catch them:\n"
                    + "\n".join(f"  {type(e).__name__}: {e}" for e in violations)
                    + "\nFix them, capture with strict=False (the analytics_lenient marker under pytest), or "
                    "clear .errors after asserting on them."
                )

    def _restore(self) -> None:
        """Put back the client, capture hook and thread hook found on entry; shut down what we made."""
        client = self._client
        with _state.lock:
            _state.current.interceptor = self._previous_interceptor
            if self._previous is not None:
                _state.install(self._previous)
            if threading.excepthook == self._thread_raised:
                threading.excepthook = self._previous_hook
            if self in _active:
                _active.remove(self)
            self.active = False
            self._previous = self._client = None
        for intruder in self._intruders:
            intruder.shutdown(0)
        if client is not None:
            client.end()

    def _thread_raised(self, args: threading.ExceptHookArgs) -> None:
        """A thread died of an exception: a strict-mode violation goes to ``.errors`` (the capture then
        fails when it ends, even if nobody joined the thread); anything else goes to the previous hook."""
        events = self._events
        error = args.exc_value
        if (
            self.active
            and events is not None
            and isinstance(error, AnalyticsError)
            and not isinstance(error, _RUNTIME_ERRORS)
        ):
            events.errors.append(error)
            return
        hook = self._previous_hook or threading.__excepthook__
        hook(args)

    def adopt(self, intruder: _client.Client) -> None:
        """``configure()`` was called while capturing: keep capturing, with its encoding options."""
        self._intruders.append(intruder)
        client, events = self._client, self._events
        if client is not None and events is not None:
            client.settings = client.settings.replace(
                wire_keys=intruder.settings.wire_keys, redact=intruder.settings.redact
            )
            client.options = intruder.options
            events._options = intruder.options
            events.destinations = {d.name: d for d in intruder.destinations}

    # -- decorator ----------------------------------------------------------------------------------

    def __call__(self, func: Callable[..., R]) -> Callable[..., R]:
        strict = self.strict
        signature = _without_last_positional(func)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Capture(strict) as events:
                    return await func(*args, events, **kwargs)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Capture(strict) as events:
                    return func(*args, events, **kwargs)

            wrapper = sync_wrapper
        if signature is not None:
            # pytest resolves fixtures from the signature: hide the parameter the capture fills.
            wrapper.__signature__ = signature
        result: Callable[..., R] = wrapper
        return result


def _without_last_positional(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    positional = [i for i, p in enumerate(params) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        return None
    del params[positional[-1]]
    return signature.replace(parameters=params)


@overload
def capture_events(*, strict: bool = True) -> _Capture: ...


@overload
def capture_events(func: Callable[..., R], /, *, strict: bool = True) -> Callable[..., R]: ...


def capture_events(func: Callable[..., R] | None = None, /, *, strict: bool = True) -> _Capture | Callable[..., R]:
    """Capture every event emitted while active, in memory (nothing leaves the process), strict by default.

    As a context manager it yields a ``CapturedEvents``; as a decorator (``@capture_events`` or
    ``@capture_events(strict=False)``, on sync or async functions) each call runs in its own capture,
    passed as the last positional argument. Events from every thread and asyncio task are captured.
    The current client's encoding options (wire keys, redaction) apply, so captures are what would be
    sent. ``strict`` makes violations (missing scope field, bad property, encoding error) raise where
    they happen; with ``strict=False`` they are dropped and listed in ``.errors``. On exit the previous
    client, strict mode and bound scope are restored, also on exceptions; a ``configure()`` made while
    capturing is undone. In strict mode, leaving the block raises AnalyticsAssertionError if
    violations were reported instead of raised (by ``@tracks(on_error=...)``) and not cleared.
    """
    capture = _Capture(strict)
    if func is not None:
        return capture(func)
    return capture


def reset() -> None:
    """Restore what a fresh import gives, for test isolation: end every active capture (nothing is
    checked), put back the thread exception hook they replaced, install the default no-op client
    (strict when INSTRUMENT_STRICT says so; a configured client is shut down), and unbind the scope in
    the current context. Use it around tests instead of touching instrument's private modules."""
    global _hook_before
    with _state.lock:
        captures = list(_active)
        hook = _hook_before
        _active.clear()
        _hook_before = None
    for capture in reversed(captures):
        capture._restore()
    if captures:
        threading.excepthook = hook or threading.__excepthook__
    _client.reset()
