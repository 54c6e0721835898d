"""The client: configuration, ``track``/``identify``, flush and shutdown. The one place with global state.

Until ``configure`` is called the client is a no-op that still validates (like the OpenTelemetry API's
default): events are dropped with NotConfiguredError, warned about once, and never raise.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from instrument import _scopes
from instrument._dispatch import Dispatcher, EmitResult, Stats, SyncDispatcher
from instrument._errors import AnalyticsError, ConfigurationError, NotConfiguredError, PropertyError
from instrument._messages import EncodeOptions, to_message
from instrument._mode import mode
from instrument._records import Identify, Track
from instrument.transports import SegmentTransport, Transport
from instrument.transports._segment import reset_http_session_after_fork

logger = logging.getLogger("instrument")

ErrorHandler = Callable[[AnalyticsError], None]
Redactor = Callable[[str, dict[str, Any]], Mapping[str, Any]]

#: Seconds between two log lines about the same kind of dropped event (see Client._log_limited).
LOG_INTERVAL = 10.0

_TRUE = frozenset({"1", "true", "yes", "on"})


def strict_from_env() -> bool:
    """True when INSTRUMENT_STRICT is set to 1/true/yes/on."""
    return os.environ.get("INSTRUMENT_STRICT", "").strip().lower() in _TRUE


class Client:
    """One configured pipeline: validation, a dispatcher, a transport. Use the module functions.

    ``transport=None`` makes a client that validates but drops every event with NotConfiguredError.
    """

    def __init__(
        self,
        transport: Transport | None,
        *,
        strict: bool = False,
        on_error: ErrorHandler | None = None,
        options: EncodeOptions | None = None,
        sync: bool = False,
        max_queue_size: int = 10_000,
        drop_oldest: bool = False,
        flush_interval: float = 0.5,
        batch_size: int = 100,
        exit_timeout: float = 5.0,
    ) -> None:
        self.strict = strict
        self.on_error = on_error
        self.options = options or EncodeOptions()
        self.exit_timeout = exit_timeout
        self.configured = transport is not None
        self._warned_unconfigured = False
        self._log_lock = threading.Lock()
        self._log_state: dict[str, tuple[float, int]] = {}

        def encode(record: Any) -> dict[str, Any]:
            return to_message(record, self.options)

        kind = SyncDispatcher if sync else Dispatcher
        self.dispatcher = kind(
            transport if transport is not None else _Nowhere(),
            encode=encode,
            report_error=self._report,
            max_queue_size=max_queue_size,
            drop_oldest=drop_oldest,
            flush_interval=flush_interval,
            batch_size=batch_size,
        )

    # -- emitting ---------------------------------------------------------------------------

    def track(self, event: Track) -> EmitResult:
        """Record a track for delivery. See ``instrument.track``."""
        return self._emit(event, Track)

    def identify(self, traits: Identify) -> EmitResult:
        """Record an identify for delivery. See ``instrument.identify``."""
        return self._emit(traits, Identify)

    def _emit(self, record: Any, kind: type[Track] | type[Identify]) -> EmitResult:
        if not isinstance(record, kind):
            error = PropertyError(
                f"{kind.__name__.lower()}() takes a {kind.__name__} instance, got {type(record).__name__}",
                track=type(record).__name__,
                field="",
                value_type=type(record).__name__,
            )
            if mode.strict:
                raise error
            return self.dispatcher.drop(error)
        error_ = record._error
        if error_ is not None:
            if mode.strict:
                raise error_
            return self.dispatcher.drop(error_)
        if mode.strict:
            # Strict: every check, the encoder and the size limit run here, so errors raise at the call.
            item: Any = to_message(record, self.options)
        else:
            item = record
        if not self.configured:
            return self._not_configured()
        return self.dispatcher.put(item)

    def _not_configured(self) -> EmitResult:
        error = NotConfiguredError(
            "analytics event dropped: instrument is not configured (call instrument.configure() with a "
            "write key, or set SEGMENT_WRITE_KEY)"
        )
        # Warned once, not logged on every call (the seed's package logged each one at error level).
        first, self._warned_unconfigured = not self._warned_unconfigured, True
        return self.dispatcher.drop(error, report=first)

    def _report(self, error: AnalyticsError) -> None:
        handler = self.on_error
        if handler is not None:
            try:
                handler(error)
            except Exception:
                logger.exception("instrument: the on_error handler raised while reporting %s", type(error).__name__)
            return
        self._log_limited(error)

    def _log_limited(self, error: AnalyticsError) -> None:
        # A burst (a full queue, an endpoint down) must not become a burst of log lines: log the first
        # of each kind, then at most one summary line per kind every LOG_INTERVAL seconds.
        kind = type(error).__name__
        now = time.monotonic()
        with self._log_lock:
            last, suppressed = self._log_state.get(kind, (-LOG_INTERVAL, 0))
            if now - last < LOG_INTERVAL:
                self._log_state[kind] = (last, suppressed + 1)
                return
            self._log_state[kind] = (now, 0)
        more = f" ({suppressed} more {kind} since the last report)" if suppressed else ""
        logger.warning("analytics: %s: %s%s", kind, error, more)

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything recorded so far, waiting at most ``timeout`` seconds; False if time ran out."""
        return self.dispatcher.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> int:
        """Flush within ``timeout``, then stop; later events are dropped. Returns how many were lost."""
        lost = self.dispatcher.close(timeout)
        if lost:
            logger.warning("analytics: %d event(s) could not be delivered before shutdown", lost)
        return lost

    def stats(self) -> Stats:
        """Counters: recorded, sent, retried, pending, dropped by reason."""
        return self.dispatcher.stats()

    def after_fork(self) -> None:
        """In a forked child: start afresh, without the parent's queue, threads, sockets or counters."""
        # Another thread of the parent may have held this lock at the fork: it would never be released.
        self._log_lock = threading.Lock()
        self.dispatcher.after_fork()


class _Nowhere(Transport):
    def send(self, messages: list[dict[str, Any]]) -> None:  # pragma: no cover - never given messages
        raise NotConfiguredError("no transport")


_lock = threading.RLock()
# Set by instrument.testing while it captures: configure() hands the client it built to it instead of
# installing it, so code under test that configures delivery cannot send anything.
_interceptor: Callable[[Client], None] | None = None
# The no-op default still validates, and INSTRUMENT_STRICT applies to it too.
_client = Client(None, strict=strict_from_env())
mode.strict = _client.strict


def get_client() -> Client:
    """The client the module functions use."""
    return _client


def swap_client(client: Client) -> Client:
    """Install ``client`` as the global one and return the previous one (used by the testing kit)."""
    global _client
    with _lock:
        previous, _client = _client, client
        mode.strict = client.strict
        return previous


def configure(
    write_key: str | None = None,
    *,
    host: str | None = None,
    transport: Transport | None = None,
    strict: bool | None = None,
    on_error: ErrorHandler | None = None,
    wire_keys: Mapping[str, str] | None = None,
    redact: Redactor | None = None,
    max_queue_size: int = 10_000,
    queue_policy: str = "drop_newest",
    flush_interval: float = 0.5,
    batch_size: int = 100,
    exit_timeout: float = 5.0,
    timeout: float = 10.0,
    max_retries: int = 10,
    retry_window: float = 300.0,
    gzip: bool = False,
    sync: bool = False,
) -> Client:
    """Set up delivery, replacing (and shutting down) the previous client.

    The write key is ``write_key``, else SEGMENT_WRITE_KEY, else SEGMENT_CLIENT_KEY; with none and no
    ``transport``, events are validated and dropped with NotConfiguredError (warned once). ``host``
    points the Segment transport elsewhere (self-hosted, RudderStack, a local endpoint). ``strict``
    (default: INSTRUMENT_STRICT) makes programmer errors raise at the call. ``on_error`` receives every
    AnalyticsError instead of the ``instrument`` logger. ``wire_keys`` renames scope fields on the wire
    (``{"project_id": "proj_id"}``). ``redact(event, properties)`` returns the properties to send.
    ``queue_policy`` is "drop_newest" or "drop_oldest" when the queue is full. ``exit_timeout`` bounds
    delivery at interpreter exit. Raises ConfigurationError for a bad argument.
    """
    if queue_policy not in ("drop_newest", "drop_oldest"):
        raise ConfigurationError(
            f"configure: queue_policy must be 'drop_newest' or 'drop_oldest', not {queue_policy!r}"
        )
    for name, value in (
        ("max_queue_size", max_queue_size),
        ("flush_interval", flush_interval),
        ("batch_size", batch_size),
        ("timeout", timeout),
    ):
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigurationError(f"configure: {name} must be a positive number, not {value!r}")
    for name, value in (("exit_timeout", exit_timeout), ("retry_window", retry_window), ("max_retries", max_retries)):
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigurationError(f"configure: {name} must be >= 0, not {value!r}")
    if on_error is not None and not callable(on_error):
        raise ConfigurationError("configure: on_error must be callable")
    if redact is not None and not callable(redact):
        raise ConfigurationError("configure: redact must be callable")
    keys = dict(wire_keys or {})
    for field, key in keys.items():
        if field not in _scopes.known_fields() or field == _scopes.USER_ID:
            raise ConfigurationError(
                f"configure: wire_keys names {field!r}, which is not a scope property field "
                f"(known: {sorted(_scopes.known_fields() - {_scopes.USER_ID})})"
            )
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"configure: wire key for {field!r} must be a non-empty str")
    if transport is not None and write_key is not None:
        raise ConfigurationError("configure: give write_key or transport, not both")
    if transport is None:
        write_key = write_key or os.environ.get("SEGMENT_WRITE_KEY") or os.environ.get("SEGMENT_CLIENT_KEY")
        if write_key:
            transport = SegmentTransport(
                write_key,
                host=host,
                gzip=gzip,
                timeout=timeout,
                max_retries=int(max_retries),
                retry_window=retry_window,
                upload_interval=min(flush_interval, 0.5),
                upload_size=int(batch_size),
                max_queue_size=max(10_000, 2 * int(batch_size)),
            )
        else:
            logger.warning(
                "analytics: no Segment write key (configure(write_key=...), SEGMENT_WRITE_KEY or "
                "SEGMENT_CLIENT_KEY): events will be validated and dropped"
            )
    elif host is not None:
        raise ConfigurationError("configure: host applies to the Segment transport; set it on your transport")
    client = Client(
        transport,
        strict=strict_from_env() if strict is None else bool(strict),
        on_error=on_error,
        options=EncodeOptions(wire_keys=keys, redact=redact),
        sync=sync,
        max_queue_size=int(max_queue_size),
        drop_oldest=queue_policy == "drop_oldest",
        flush_interval=flush_interval,
        batch_size=int(batch_size),
        exit_timeout=exit_timeout,
    )
    interceptor = _interceptor
    if interceptor is not None:
        interceptor(client)
        return client
    previous = swap_client(client)
    previous.shutdown(previous.exit_timeout)
    return client


def track(event: Track) -> EmitResult:
    """Record ``event`` for delivery and return at once: one append, no I/O on this thread.

    Never raises for run-time failures: the result's ``.error`` says why it was not accepted
    (NotConfiguredError, QueueFullError, ClosedError, or the event's validation error). In strict mode
    programmer errors (PropertyError, ScopeError, EncodingError, OversizeError) raise here.
    """
    return _client._emit(event, Track)


def identify(traits: Identify) -> EmitResult:
    """Record an identify (traits for the bound or given user). Raises and returns as ``track`` does."""
    return _client._emit(traits, Identify)


def flush(timeout: float = 5.0) -> bool:
    """Deliver everything recorded so far, waiting at most ``timeout`` seconds; False if time ran out."""
    return _client.flush(timeout)


def shutdown(timeout: float = 5.0) -> int:
    """Flush within ``timeout`` and stop the client; returns how many events were lost. Idempotent."""
    return _client.shutdown(timeout)


async def aflush(timeout: float = 5.0) -> bool:
    """``flush`` in a worker thread, so the event loop is never blocked."""
    return await asyncio.to_thread(_client.flush, timeout)


async def ashutdown(timeout: float = 5.0) -> int:
    """``shutdown`` in a worker thread, so the event loop is never blocked."""
    return await asyncio.to_thread(_client.shutdown, timeout)


def stats() -> Stats:
    """Counters of the current client: recorded, sent, retried, pending, and dropped by reason."""
    return _client.stats()


def is_configured() -> bool:
    """True when events have somewhere to go (a write key or a transport was configured)."""
    return _client.configured


def _at_exit() -> None:
    client = _client
    try:
        client.shutdown(client.exit_timeout)
    except Exception:  # interpreter exit: report, never raise
        logger.exception("analytics: delivery at exit failed")


def _after_fork_in_child() -> None:
    reset_http_session_after_fork()
    _client.after_fork()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
