"""The fan-out: one message built once, encoded once per wire, queued for each destination on its own.

``FanoutTransport`` is the client's transport with ``configure(destinations=...)``. The dispatcher's
worker builds each message once and hands it here with its record; for each destination it decides
routing and consent, applies that destination's renames and personal policy, encodes the vendor's JSON
once per distinct encoding (Segment and RudderStack share one) and appends it to that destination's
lane: a ``Dispatcher`` of its own (bounded queue, worker thread, transport with retries, backoff,
deadlines, spool and ledger). Nothing here waits for a destination: a destination that is down, slow
or refusing fills its own queue (and spool) while the others go on.

The client's ledger counts an event ``sent`` once it was handed to every destination it goes to; each
destination's ledger (``stats().destinations[name]``) says what that destination took, lost (by reason:
``consent_denied`` among them) or still holds.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from instrument import _consent
from instrument._dispatch import Dispatcher, Prebuilt, Stats
from instrument._encoding import dumps
from instrument._errors import AnalyticsError, ConfigurationError, SpoolError
from instrument._reporting import Reporter
from instrument._scopes import message_ids
from instrument._settings import Settings
from instrument._spool import Spool
from instrument._validate import merge_scope
from instrument.destinations._base import Destination, hashed, personal_keys
from instrument.transports._base import DeliveryReport, Message, Transport
from instrument.transports._segment import SegmentTransport

_log = logging.getLogger("instrument")


class Routed:
    """One destination's copy of an event in its lane: the vendor's JSON bytes, the messageId, the user."""

    __slots__ = ("data", "error", "mid", "user")

    def __init__(self, data: bytes | None, mid: str, user: tuple[str, ...], error: Exception | None = None) -> None:
        self.data = data
        self.mid = mid
        self.user = user
        self.error = error


def _wire_of(item: Routed) -> tuple[bytes, str]:
    if item.error is not None:  # the destination's encoding failed: this destination loses the event
        raise item.error
    assert item.data is not None
    return item.data, item.mid


def _never(item: Any) -> Message:  # pragma: no cover - lanes take encoded bytes only
    raise TypeError("a lane takes Routed items")


class _DestinationReporter(Reporter):
    """The client's one error channel (its ``on_error``, its rate-limited log), each report naming the
    destination: the error's ``destination`` attribute and its text."""

    def __init__(self, client: Reporter, name: str) -> None:
        self.handler = client.handler
        self.log = client.log
        self._thread = client._thread  # the same handler: whether it runs, or reports wait, per thread
        self.name = name

    def error(self, error: AnalyticsError) -> None:
        named = copy.copy(error)  # one encoding's error may reach several destinations
        named.message = f"destination {self.name!r}: {error.message}"
        named.destination = self.name  # type: ignore[attr-defined]
        super().error(named)

    def trouble(self, text: str) -> None:
        super().trouble(f"destination {self.name!r}: {text}")


class Lane:
    """One destination's own pipeline: a dispatcher (queue, worker, ledger) in front of its transport."""

    def __init__(self, destination: Destination, settings: Settings, reporter: Reporter, spool: Spool | None) -> None:
        self.destination = destination
        transport = destination.transport(settings, spool=spool)
        named = _DestinationReporter(reporter, destination.name)
        self.dispatcher = Dispatcher(transport, settings, encode=_never, reporter=named, wire=_wire_of)


class FanoutTransport(Transport):
    """The transport of a client with destinations (see the module docstring). ``spool`` (a directory):
    each destination keeps its own spool under it (``<spool>/<name>``), its own cursor."""

    accepts_records = True

    def __init__(
        self,
        destinations: Sequence[Destination],
        settings: Settings,
        *,
        spool: Path | None = None,
        spool_max_bytes: int | None = None,
    ) -> None:
        super().__init__()
        self.destinations = tuple(destinations)
        self.settings = settings
        self.spool_dir = spool
        self.lanes: tuple[Lane, ...] = ()
        #: Copies of events the destinations still held when they were closed (each destination counts its own).
        self.lost_at_close = 0
        self._spool_max = spool_max_bytes
        #: SHA-256 of every id ``forget()`` was given (with a spool: also those in ``<spool>/forgotten``).
        self._forgotten: set[str] = set()

    def bind(self, report: DeliveryReport) -> None:
        """Attach the client's ledger; the lanes are made once, on the client's error channel."""
        super().bind(report)
        if not self.lanes:
            reporter = getattr(report, "reporter", None) or Reporter(self.settings.on_error)
            self.lanes = tuple(Lane(d, self.settings, reporter, self._spool_of(d)) for d in self.destinations)
            self._forgotten |= self._read_forgotten()
            if self._forgotten:
                self._install_filters()

    def _spool_of(self, destination: Destination) -> Spool | None:
        if self.spool_dir is None:
            return None
        try:
            if self._spool_max is None:
                return Spool(self.spool_dir / destination.name)
            return Spool(self.spool_dir / destination.name, max_bytes=self._spool_max)
        except SpoolError as error:
            raise ConfigurationError(f"configure: spool of destination {destination.name!r}: {error}") from None

    # -- the fan-out worker's side ----------------------------------------------------------------

    def send_records(self, pairs: list[tuple[Any, Message]]) -> None:
        """Route, gate, transform and encode each message for each destination; queue it on its lane."""
        lanes = self.lanes
        for record, message in pairs:
            cls = type(record)
            personal = personal_keys(cls) if cls is not dict else frozenset()
            granted = _consent.granted_in(message)
            kind = message.get("type")
            user = (str(message.get("userId") or ""), str(message.get("anonymousId") or ""))
            ts = getattr(record, "_ts", None) or _epoch(message.get("timestamp"))
            encoded: dict[tuple[Any, ...], Routed] = {}
            for lane in lanes:
                destination = lane.destination
                if destination.calls is not None and kind not in destination.calls:
                    continue  # a call this wire does not map (a page to Amplitude)
                if cls is not dict and not destination.routes(cls):
                    continue
                if not destination.consent <= granted:  # Destination.accepts, with the stamp read once
                    lane.dispatcher.ledger.deny(1)
                    continue
                key = destination.encoding
                routed = encoded.get(key)
                if routed is None:
                    routed = encoded[key] = _encode(destination, message, personal, ts, user)
                lane.dispatcher.put(Routed(routed.data, routed.mid, user, routed.error))
        self._report.sent(len(pairs))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every destination's worker (on the recording thread)."""
        for lane in self.lanes:
            lane.dispatcher.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every destination delivered what it was given; False on timeout or a loss."""
        deadline = time.monotonic() + max(0.0, timeout)
        done = True
        for lane in self.lanes:
            done = lane.dispatcher.flush(max(0.0, deadline - time.monotonic())) and done
        return done

    def abort(self) -> None:
        """Cut every destination's request in flight."""
        for lane in self.lanes:
            lane.dispatcher.transport.abort()

    def close(self, timeout: float) -> int:
        """Close every destination at once (one stuck destination does not use the others' time)."""
        lost = [0] * len(self.lanes)

        def close(i: int, lane: Lane) -> None:
            lost[i] = lane.dispatcher.close(timeout)

        _each(self.lanes, close, timeout)
        self.lost_at_close = sum(lost)
        return self.lost_at_close

    def after_fork(self) -> None:
        """In a forked child: every destination starts afresh."""
        for lane in self.lanes:
            lane.dispatcher.after_fork()

    # -- the client's side ------------------------------------------------------------------------

    def stats(self) -> dict[str, Stats]:
        """Each destination's ledger, by name."""
        return {lane.destination.name: lane.dispatcher.stats() for lane in self.lanes}

    def forget(self, user_id: str) -> int:
        """Remove ``user_id``'s events from every destination's queue; how many were removed. From now on
        (and, with a spool, in every later process using it) each destination also leaves that user's
        messages out of every batch it sends: those already handed to its sender, spilled to or kept
        in the spool (counted "forgotten" in its ledger)."""
        digest = hashed(user_id)
        if digest not in self._forgotten:
            self._forgotten.add(digest)
            self._write_forgotten(digest)
            self._install_filters()
        return sum(lane.dispatcher.forget(lambda r: user_id in r.user) for lane in self.lanes)

    def _install_filters(self) -> None:
        for lane in self.lanes:
            transport = lane.dispatcher.transport
            if isinstance(transport, SegmentTransport):
                transport.forget_filter = self._filter_for(lane.destination)

    def _filter_for(self, destination: Destination) -> Callable[[bytes], bool]:
        forgotten = self._forgotten

        def is_forgotten(message: bytes) -> bool:
            try:
                item = json.loads(message)
                users = destination.users_in(item) if isinstance(item, dict) else ()
            except Exception:  # not this wire's JSON: not a forgotten user's, as far as we can tell
                return False
            return any(isinstance(u, str) and u and hashed(u) in forgotten for u in users)

        return is_forgotten

    def _forgotten_file(self) -> Path | None:
        return None if self.spool_dir is None else self.spool_dir / "forgotten"

    def _read_forgotten(self) -> set[str]:
        path = self._forgotten_file()
        try:
            text = path.read_text("ascii") if path is not None else ""
        except (OSError, UnicodeDecodeError):
            return set()
        return {line for line in text.split() if len(line) == 64}

    def _write_forgotten(self, digest: str) -> None:
        """Keep the digest (never the id) beside the spools, so a later process leaves those events out too."""
        path = self._forgotten_file()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                os.write(fd, digest.encode() + b"\n")
            finally:
                os.close(fd)
        except OSError:
            _log.warning("analytics: could not record a forgotten user beside the spool; it holds for this process")


def _encode(
    destination: Destination, message: Message, personal: frozenset[str], ts: float, user: tuple[str, ...]
) -> Routed:
    mid = str(message.get("messageId", ""))
    try:
        data = dumps(destination.encode(destination.transform(message, personal), ts))
    except Exception as error:
        return Routed(None, mid, user, error)
    return Routed(data, mid, user)


def _epoch(timestamp: object) -> float:
    """A message's ``timestamp`` text as epoch seconds (a message handed in already built); now if unreadable."""
    try:
        return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def record_users(record: Any) -> tuple[str, ...]:
    """The user id and anonymous id of a queued record (a packed track, or a message), as text."""
    if record.__class__ is Prebuilt:
        record = record.message
    if record.__class__ is dict:
        return (str(record.get("userId") or ""), str(record.get("anonymousId") or ""))
    # A track packed by track() holds its scope second and overrides nothing.
    ids = message_ids(record[1] if record.__class__ is tuple else merge_scope(record._ctx, record._over))
    return (str(ids.get("userId") or ""), str(ids.get("anonymousId") or ""))


def _each(lanes: Sequence[Lane], step: Callable[[int, Lane], None], timeout: float) -> None:
    """Run ``step`` for every lane at once, each on a thread; wait at most ``timeout`` (plus a little)."""
    started = []
    for i, lane in enumerate(lanes):
        thread = threading.Thread(target=step, args=(i, lane), name="instrument-close", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter exit: no thread, close on this one
            step(i, lane)
        else:
            started.append(thread)
    deadline = time.monotonic() + max(0.0, timeout) + 0.5
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
