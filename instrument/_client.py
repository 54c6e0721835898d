"""The client: ``configure``, the six calls (``track``, ``identify``, ``group``, ``page``, ``screen``, ``alias``),
flush and shutdown, and the client the module functions use.

Until ``configure`` is called the client is a no-op that still validates (like the OpenTelemetry API's
default): events are dropped with NotConfiguredError, warned about once, and never raise. Which client
is current lives in ``_state`` (the one place with global state); its options live in its ``Settings``.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from instrument import _consent, _context, _forks, _messages, _records, _reporting, _scopes, _state
from instrument._calls import Alias, Group, Page, Screen
from instrument._dispatch import Dispatcher, EmitResult, Prebuilt, Stats, SyncDispatcher
from instrument._errors import (
    AnalyticsError,
    ConfigurationError,
    DeliveryError,
    NotConfiguredError,
    PropertyError,
    SpoolError,
)
from instrument._messages import DEFAULT_OPTIONS, EncodeOptions, to_message, wire_batches
from instrument._records import Identify, Track
from instrument._reporting import Reporter
from instrument._settings import ErrorHandler, Redactor, Settings
from instrument._spool import DEFAULT_MAX_BYTES, Spool
from instrument.destinations._base import Destination
from instrument.destinations._fanout import FanoutTransport, record_users
from instrument.transports import SegmentTransport, Transport
from instrument.transports._segment import reset_http_session_after_fork

logger = logging.getLogger("instrument")

_TRUE = frozenset({"1", "true", "yes", "on"})


def strict_from_env() -> bool:
    """True when INSTRUMENT_STRICT is set to 1/true/yes/on."""
    return os.environ.get("INSTRUMENT_STRICT", "").strip().lower() in _TRUE


class Client:
    """One configured pipeline: validation, a dispatcher, a transport. Use the module functions.

    ``Client(transport, settings)`` or ``Client(transport, strict=True, sync=True)`` (keyword arguments
    are ``Settings`` fields applied over ``settings``). ``transport=None`` makes a client that validates
    but drops every event with NotConfiguredError. Its own ``settings.strict`` decides whether
    programmer errors raise in ``track``/``identify``. Raises ConfigurationError for a bad setting.
    """

    def __init__(self, transport: Transport | None, settings: Settings | None = None, /, **changes: Any) -> None:
        if transport is not None and not isinstance(transport, Transport):
            raise ConfigurationError(f"Client: transport must be a Transport or None, got {type(transport).__name__}")
        if settings is not None and not isinstance(settings, Settings):
            raise ConfigurationError(f"Client: settings must be a Settings, got {type(settings).__name__}")
        settings = settings or Settings()
        if changes:
            settings = settings.replace(**changes)
        self.settings = settings
        self.strict = settings.strict  # read on every emit: a plain attribute
        self.options = EncodeOptions(wire_keys=settings.wire_keys, redact=settings.redact)
        self.configured = transport is not None
        #: The durable spool ``configure(spool=...)`` made (its ``stats`` count what it kept), or None.
        self.spool: Spool | None = None
        self._warned_unconfigured = False
        #: The one channel every error of this client goes through (on_error, else the rate-limited log).
        self.reporter = Reporter(settings.on_error)

        def encode(record: Any) -> dict[str, Any]:
            return to_message(record, self.options)

        kind = SyncDispatcher if settings.sync else Dispatcher
        self.dispatcher = kind(
            transport if transport is not None else _Nowhere(),
            settings,
            encode=encode,
            # wire_batches' own default options when nothing is renamed or redacted (no partial per batch).
            batches=wire_batches
            if self.options == DEFAULT_OPTIONS
            else functools.partial(wire_batches, options=self.options),
            reporter=self.reporter,
        )
        # Packed tracks (``_messages.wire_batches``) go to a worker that encodes bytes with default options.
        self._packs = (
            not settings.sync and transport is not None and transport.accepts_bytes and self.options == DEFAULT_OPTIONS
        )

    @property
    def on_error(self) -> ErrorHandler | None:
        """The handler every AnalyticsError is reported to (None: the rate-limited ``instrument`` logger)."""
        return self.settings.on_error

    @property
    def exit_timeout(self) -> float:
        """How long delivery may take at interpreter exit."""
        return self.settings.exit_timeout

    def __repr__(self) -> str:
        return f"<instrument.Client configured={self.configured} strict={self.strict} sync={self.settings.sync}>"

    # -- emitting ---------------------------------------------------------------------------

    def track(self, event: Track) -> EmitResult:
        """Record a track for delivery. See ``instrument.track``."""
        return self._emit(event, Track)

    def identify(self, traits: Identify) -> EmitResult:
        """Record an identify for delivery. See ``instrument.identify``."""
        return self._emit(traits, Identify)

    def group(self, group: Group) -> EmitResult:
        """Record a group call for delivery. See ``instrument.group``."""
        return self._emit(group, Group)

    def page(self, page: Page) -> EmitResult:
        """Record a page call for delivery. See ``instrument.page``."""
        return self._emit(page, Page)

    def screen(self, screen: Screen) -> EmitResult:
        """Record a screen call for delivery. See ``instrument.screen``."""
        return self._emit(screen, Screen)

    def alias(self, alias: Alias) -> EmitResult:
        """Record an alias call for delivery. See ``instrument.alias``."""
        return self._emit(alias, Alias)

    def _emit(self, record: Any, kind: type[Any]) -> EmitResult:
        try:
            right_kind = isinstance(record, kind)
        except Exception:  # a hostile object whose __class__ raises
            right_kind = False
        if not right_kind:
            error = PropertyError(
                f"{kind.__name__.lower()}() takes a {kind.__name__} instance, got {type(record).__name__}",
                track=type(record).__name__,
                field="",
                value_type=type(record).__name__,
            )
            if self.strict:
                raise error
            return self.dispatcher.drop(error)
        error_ = record._error
        if error_ is not None:
            if self.strict:
                raise error_
            return self.dispatcher.drop(error_)
        if _context.providers:  # integrations' context (trace ids, the request), read on this thread
            record._context = _context.collect(self.reporter.error)
        consent = _consent.current()
        if consent is not None:  # its stamp, in Segment's and RudderStack's shapes: destinations read it
            record._context = {**(record._context or {}), **consent.stamp()}
        item: Any = record
        if self.strict:
            # Strict: every check, the encoder and the size limit run here, so errors raise at the call.
            message = to_message(record, self.options)
            # Destinations (and the testing kit) need the record's class beside its message.
            item = Prebuilt(record, message) if self.dispatcher.transport.accepts_records else message
        elif self._packs and record._context is None and record._pack is not None:
            # What is sent is what the record holds now, and the worker reads a tuple faster than
            # attributes: a track whose class the worker has compiled is queued as its values.
            item = record._pack(record)
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
        self.reporter.error(error)

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything recorded so far, waiting at most ``timeout`` seconds; False if time ran out."""
        return self.dispatcher.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> int:
        """Flush within ``timeout``, then stop; later events are dropped. Returns how many were lost.

        The summary of errors the log suppressed (rate limiting) is printed here, so none stays unsaid.
        """
        lost = self.dispatcher.close(timeout)
        fanout = self.dispatcher.transport
        if isinstance(fanout, FanoutTransport):  # what the destinations could not deliver in time
            lost += fanout.lost_at_close
        if lost:
            kept = " (kept in the spool for the next process)" if self.spool is not None else ""
            text = f"{lost} event(s) could not be delivered before shutdown{kept}: {self.stats().summary()}"
            if self.settings.on_error is not None:  # every loss reaches the handler, and the log
                self._report(DeliveryError(text, reason="shutdown", count=lost))
            logger.warning("analytics: %s", text)
        self.reporter.close()
        return lost

    def stats(self) -> Stats:
        """The ledger: recorded, accepted, sent, lost and refused by reason, pending; the spool's counters;
        with destinations, each destination's own ledger (``destinations``)."""
        stats = self.dispatcher.stats()
        if self.spool is not None:
            stats = dataclasses.replace(stats, spool=MappingProxyType(dataclasses.asdict(self.spool.stats)))
        fanout = self.dispatcher.transport
        if isinstance(fanout, FanoutTransport):
            stats = dataclasses.replace(stats, destinations=MappingProxyType(fanout.stats()))
        return stats

    def forget(self, user_id: str) -> int:
        """Remove every event of ``user_id`` (user or anonymous id) still queued, in the client's queue and
        each destination's; return how many copies were removed. See ``instrument.forget``."""
        if not isinstance(user_id, str) or not user_id:
            raise ConfigurationError("forget: user_id must be a non-empty str")
        removed = self.dispatcher.forget(lambda record: user_id in record_users(record))
        # The encoder's and the records' caches of recent scopes hold ids too: emptied, made again on use.
        _messages.forget_scopes()
        _records.forget_scopes()
        fanout = self.dispatcher.transport
        if isinstance(fanout, FanoutTransport):
            removed += fanout.forget(user_id)
        return removed

    @property
    def destinations(self) -> tuple[Destination, ...]:
        """The destinations ``configure(destinations=...)`` declared (empty without)."""
        fanout = self.dispatcher.transport
        return fanout.destinations if isinstance(fanout, FanoutTransport) else ()

    def ledger(self) -> str:
        """The ledger in one line (for exit and signal messages): accepted, delivered, lost, pending."""
        return self.stats().summary()

    def after_fork(self) -> None:
        """In a forked child: start afresh, without the parent's queue, threads, sockets or counters."""
        self.reporter.after_fork()
        self.dispatcher.after_fork()


class _Nowhere(Transport):
    def send(self, messages: list[dict[str, Any]]) -> None:  # pragma: no cover - never given messages
        raise NotConfiguredError("no transport")


def default_client() -> Client:
    """A fresh no-op client (validates, drops, warns once), strict when INSTRUMENT_STRICT says so."""
    return Client(None, Settings(strict=strict_from_env()))


# The no-op default still validates, and INSTRUMENT_STRICT applies to it too.
_state.install(default_client())
_current = _state.current


def get_client() -> Client:
    """The client the module functions use."""
    client: Client = _current.client
    return client


def reset() -> None:
    """Back to the state at import: the default no-op client (INSTRUMENT_STRICT honoured), no capture
    hook, nothing bound in the current context (scope or consent). The client it replaces is shut down at once."""
    with _state.lock:
        _current.interceptor = None
        previous: Client = _state.install(default_client())
    _scopes.attach({}, replace=True)
    _consent.clear()
    _reporting.reset_all()
    if previous.configured:
        previous.shutdown(0)


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
    max_queue_bytes: int | None = None,
    queue_policy: str = "drop_newest",
    flush_interval: float = 0.5,
    batch_size: int = 100,
    exit_timeout: float = 5.0,
    timeout: float = 10.0,
    max_retries: int = 10,
    retry_window: float = 300.0,
    gzip: bool = False,
    sync: bool = False,
    spool: str | os.PathLike[str] | Spool | None = None,
    spool_max_bytes: int = DEFAULT_MAX_BYTES,
    destinations: Sequence[Destination] | None = None,
) -> Client:
    """Set up delivery, replacing (and shutting down) the previous client.

    The write key is ``write_key``, else SEGMENT_WRITE_KEY, else SEGMENT_CLIENT_KEY; with none and no
    ``transport``, events are validated and dropped with NotConfiguredError (warned once). ``host``
    points the Segment transport elsewhere (an http(s) URL: self-hosted, RudderStack, a local endpoint;
    no credentials in it). ``strict`` (default: INSTRUMENT_STRICT) makes programmer errors raise at the
    call. ``on_error`` receives every AnalyticsError instead of the ``instrument`` logger (never while
    the library holds a lock; what its own analytics calls raise while it runs is logged). ``wire_keys``
    renames scope fields on the wire for this client (``{"project_id": "proj_id"}``; deprecated: declare
    them once with the catalog, ``EventName(..., wire_keys=...)``, which they must agree with).
    ``redact(event, properties)`` returns the properties to send (of a track, page or screen).
    ``max_queue_size`` (events) and
    ``max_queue_bytes`` (encoded bytes, optional) bound the queue; ``queue_policy`` is "drop_newest" or
    "drop_oldest" when it is full. ``flush_interval``, ``timeout``, ``exit_timeout`` (delivery at interpreter exit) and
    ``retry_window`` are finite seconds. Every argument is validated here (types, ranges, URL):
    raises ConfigurationError naming the argument, never showing a secret.

    ``spool`` (a directory, or an ``instrument.Spool``) keeps every accepted event on local disk until
    the endpoint acknowledged it; the next process configured with the same spool sends what a crash,
    kill -9 or SIGTERM left, with the original messageIds (README, "Durable spool", says when an event
    can still be lost). ``spool_max_bytes`` bounds it (all processes together).

    ``destinations`` (``instrument.destinations.Segment(...)``, ``PostHog(...)``, ...) sends every event
    to each of them, each delivered on its own (own queue, retries, spool under ``spool/<name>``, ledger
    in ``stats().destinations``); it replaces ``write_key``/``host``/``transport``.
    """
    if write_key is not None and (not isinstance(write_key, str) or not write_key):
        raise ConfigurationError(f"configure: write_key must be a non-empty str, got {type(write_key).__name__}")
    if transport is not None and not isinstance(transport, Transport):
        raise ConfigurationError(
            f"configure: transport must be a Transport (e.g. instrument.ConsoleTransport()), got "
            f"{type(transport).__name__}"
        )
    if transport is not None and write_key is not None:
        raise ConfigurationError("configure: give write_key or transport, not both")
    if transport is not None and host is not None:
        raise ConfigurationError("configure: host applies to the Segment transport; set it on your transport")
    settings = Settings(
        host=host,
        strict=strict_from_env() if strict is None else strict,
        on_error=on_error,
        wire_keys=wire_keys if wire_keys is not None else {},
        redact=redact,
        max_queue_size=max_queue_size,
        max_queue_bytes=max_queue_bytes,
        queue_policy=queue_policy,
        flush_interval=flush_interval,
        batch_size=batch_size,
        exit_timeout=exit_timeout,
        timeout=timeout,
        max_retries=max_retries,
        retry_window=retry_window,
        gzip=gzip,
        sync=sync,
    )
    if destinations is not None:
        transport = _fanout(destinations, write_key, host, transport, spool, spool_max_bytes, settings)
        spool = None
    elif spool is not None and transport is not None:
        raise ConfigurationError("configure: spool applies to the Segment transport; give it to your transport")
    spool_ = _make_spool(spool, spool_max_bytes)
    intercepted = _current.interceptor is not None
    if transport is None:
        write_key = write_key or os.environ.get("SEGMENT_WRITE_KEY") or os.environ.get("SEGMENT_CLIENT_KEY")
        if write_key:
            transport = SegmentTransport(write_key, settings, spool=spool_)
        elif not intercepted:  # while the testing kit captures, events are not dropped: no warning
            logger.warning(
                "analytics: no Segment write key (configure(write_key=...), SEGMENT_WRITE_KEY or "
                "SEGMENT_CLIENT_KEY): events will be validated and dropped"
            )
    client = Client(transport, settings)
    if spool_ is not None and isinstance(transport, SegmentTransport):
        client.spool = spool_
        spool_.report = client._report
    with _state.lock:
        interceptor = _current.interceptor
        if interceptor is None:
            previous: Client = _state.install(client)
    if interceptor is not None:
        interceptor(client)
        return client
    previous.shutdown(previous.exit_timeout)
    if client.spool is not None or (isinstance(transport, FanoutTransport) and transport.spool_dir is not None):
        client.dispatcher.start()  # deliver now what dead processes left in the spool, without waiting for an event
    return client


def _fanout(
    destinations: Sequence[Destination],
    write_key: str | None,
    host: str | None,
    transport: Transport | None,
    spool: str | os.PathLike[str] | Spool | None,
    spool_max_bytes: int,
    settings: Settings,
) -> FanoutTransport:
    """The transport of ``configure(destinations=...)``; ConfigurationError for a bad combination."""
    if write_key is not None or host is not None or transport is not None:
        raise ConfigurationError("configure: destinations replace write_key, host and transport; give one or the other")
    if not isinstance(destinations, (list, tuple)):
        raise ConfigurationError("configure: destinations must be a list of instrument.destinations.Destination")
    if not destinations or not all(isinstance(d, Destination) for d in destinations):
        raise ConfigurationError("configure: destinations must be a non-empty list of Destination objects")
    names = [d.name for d in destinations]
    if len(set(names)) != len(names):
        raise ConfigurationError("configure: two destinations have the same name (give name=...)")
    if spool is not None and not isinstance(spool, (str, os.PathLike)):
        raise ConfigurationError("configure: with destinations, spool must be a directory path")
    _make_spool(None, spool_max_bytes)  # the bound's checks
    return FanoutTransport(
        destinations, settings, spool=None if spool is None else Path(spool), spool_max_bytes=spool_max_bytes
    )


def _make_spool(spool: str | os.PathLike[str] | Spool | None, max_bytes: int) -> Spool | None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigurationError(f"configure: spool_max_bytes must be a positive int, got {type(max_bytes).__name__}")
    if spool is None or isinstance(spool, Spool):
        return spool
    if not isinstance(spool, (str, os.PathLike)):
        raise ConfigurationError(f"configure: spool must be a directory path or a Spool, got {type(spool).__name__}")
    try:
        return Spool(spool, max_bytes=max_bytes)
    except SpoolError as error:
        raise ConfigurationError(f"configure: spool: {error}") from None


def track(event: Track) -> EmitResult:
    """Record ``event`` for delivery and return at once: one append, no I/O on this thread.

    Never raises for run-time failures: the result's ``.error`` says why it was not accepted
    (NotConfiguredError, QueueFullError, ClosedError, or the event's validation error). In strict mode
    programmer errors (PropertyError, ScopeError, EncodingError, OversizeError) raise here.
    """
    return _current.client._emit(event, Track)  # type: ignore[no-any-return]


def identify(traits: Identify) -> EmitResult:
    """Record an identify (traits for the bound or given user). Raises and returns as ``track`` does."""
    return _current.client._emit(traits, Identify)  # type: ignore[no-any-return]


def group(group: Group) -> EmitResult:
    """Record a group call (traits of the group its groupId names). Raises and returns as ``track`` does."""
    return _current.client._emit(group, Group)  # type: ignore[no-any-return]


def page(page: Page) -> EmitResult:
    """Record a page call (its name, category and properties). Raises and returns as ``track`` does."""
    return _current.client._emit(page, Page)  # type: ignore[no-any-return]


def screen(screen: Screen) -> EmitResult:
    """Record a screen call (its name, category and properties). Raises and returns as ``track`` does."""
    return _current.client._emit(screen, Screen)  # type: ignore[no-any-return]


def alias(alias: Alias) -> EmitResult:
    """Record an alias call (the previous id becomes the user's). Raises and returns as ``track`` does."""
    return _current.client._emit(alias, Alias)  # type: ignore[no-any-return]


def forget(user_id: str) -> int:
    """Remove every event of ``user_id`` (as user id or anonymous id) that is still queued, in memory
    and in each destination's queue; return how many were removed (counted "forgotten" in the ledgers).

    Events already in a request, or already written to a spool, are not reached. Raises
    ConfigurationError for an empty or non-str id.
    """
    return get_client().forget(user_id)


def describe_destinations() -> list[dict[str, Any]]:
    """The current client's destinations as plain data: routing, renames, consent, personal policy, mapping."""
    return [d.describe() for d in get_client().destinations]


def flush(timeout: float = 5.0) -> bool:
    """Deliver everything recorded so far, waiting at most ``timeout`` seconds; False if time ran out."""
    return get_client().flush(timeout)


def shutdown(timeout: float = 5.0) -> int:
    """Flush within ``timeout`` and stop the client; returns how many events were lost. Idempotent."""
    return get_client().shutdown(timeout)


async def aflush(timeout: float = 5.0) -> bool:
    """``flush`` in a worker thread, so the event loop is never blocked."""
    return await asyncio.to_thread(get_client().flush, timeout)


async def ashutdown(timeout: float = 5.0) -> int:
    """``shutdown`` in a worker thread, so the event loop is never blocked."""
    return await asyncio.to_thread(get_client().shutdown, timeout)


def stats() -> Stats:
    """Counters of the current client: recorded, sent, retried, pending, and dropped by reason."""
    return get_client().stats()


def is_configured() -> bool:
    """True when events have somewhere to go (a write key or a transport was configured)."""
    return get_client().configured


def _at_exit() -> None:
    client = get_client()
    try:
        was_open = not client.dispatcher.closed  # shut down by the program already: it was said then
        lost_now = client.shutdown(client.exit_timeout)
        stats = client.stats()
        if was_open and stats.lost_total > lost_now:  # earlier losses too: the whole ledger, once, at exit
            logger.warning("analytics: at exit: %s", stats.summary())
    except Exception:  # interpreter exit: report, never raise
        logger.exception("analytics: delivery at exit failed")
    _reporting.close_all()  # the count of suppressed reports is never left unsaid


def _after_fork_in_child() -> None:
    reset_http_session_after_fork()
    _reporting.after_fork_all()
    get_client().after_fork()
    # A multiprocessing/billiard child ends through os._exit (no atexit): deliver from its finalizer.
    _forks.flush_at_child_exit(_at_exit)


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
