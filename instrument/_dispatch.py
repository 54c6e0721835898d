"""The dispatcher: a bounded queue the caller appends to, and a worker that encodes and sends.

The caller's thread does one ``deque.append`` (no JSON, no uuid, no I/O, no lock); the worker
turns records into messages (encoding, checks, size) and hands batches to the transport. For a
transport that ships bytes (``accepts_bytes``) each message is serialised once, to JSON bytes, here;
batches are cut from those bytes (count and Segment's 500 KB body) and only batches cross to the
transport's thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from instrument._encoding import MAX_BATCH_BYTES, dumps
from instrument._errors import (
    AnalyticsError,
    ClosedError,
    DeliveryError,
    EncodingError,
    NotConfiguredError,
    OversizeError,
    QueueFullError,
)
from instrument._settings import Settings
from instrument.transports import Message, Transport
from instrument.transports._base import EncodedBatch

logger = logging.getLogger("instrument")

#: Why an event was dropped; the keys of ``Stats.dropped``.
DROP_REASONS = ("invalid", "oversize", "queue_full", "not_configured", "closed", "delivery_failed", "shutdown")

#: Seconds between two log lines about delivery trouble (an endpoint failing, still being retried).
TROUBLE_INTERVAL = 10.0


@dataclass(frozen=True)
class Stats:
    """Counters since the client was configured.

    ``recorded`` counts every event handed to track/identify/@tracks; each ends up ``sent``, in
    ``dropped[reason]``, or still ``pending``. ``retried`` counts messages sent again after a failure.
    ``recovered`` counts messages a durable spool kept from a process that is gone and this one
    delivered (they were never recorded here).
    """

    recorded: int = 0
    sent: int = 0
    retried: int = 0
    pending: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(dict.fromkeys(DROP_REASONS, 0)))
    recovered: int = 0

    @property
    def dropped_total(self) -> int:
        """All dropped events, whatever the reason."""
        return sum(self.dropped.values())

    def __repr__(self) -> str:
        # A plain dict of the reasons that happened (the field is a read-only mappingproxy).
        dropped = {reason: n for reason, n in self.dropped.items() if n}
        return (
            f"Stats(recorded={self.recorded}, sent={self.sent}, retried={self.retried}, pending={self.pending}, "
            f"dropped={dropped})"
        )


@dataclass(frozen=True)
class EmitResult:
    """What ``track``/``identify`` did: ``ok`` is True when the event was accepted for delivery."""

    ok: bool
    error: AnalyticsError | None = None

    def __bool__(self) -> bool:
        return self.ok


OK = EmitResult(True)


def drop_reason(error: BaseException) -> str:
    """The Stats.dropped key for an error that made an event be dropped."""
    if isinstance(error, OversizeError):
        return "oversize"
    if isinstance(error, QueueFullError):
        return "queue_full"
    if isinstance(error, ClosedError):
        return "closed"
    if isinstance(error, DeliveryError):
        return "delivery_failed"
    if isinstance(error, NotConfiguredError):
        return "not_configured"
    return "invalid"


class Counters:
    """Counters shared by callers, the worker and the transport's thread (updates under a lock).

    Once ``settled`` (by ``Dispatcher.close``) every event still pending has been counted as dropped
    for "shutdown"; late reports from the pipeline (a request that completes after close gave up on
    it) are then ignored, so no event is ever counted twice. Callers' drops (``add_dropped``) still count.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.retried = 0
        self.recovered = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        #: Accepted events lost to delivery (failed, evicted or refused after acceptance, shutdown):
        #: what makes ``flush()`` return False.
        self.lost = 0
        self.settled = False

    def add_dropped(self, reason: str, count: int = 1, *, accepted: bool = False) -> None:
        """Count a drop decided on the caller's side; ``accepted`` when the event had been accepted."""
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            if accepted:
                self.lost += count

    def pipeline_dropped(self, reason: str, count: int = 1) -> bool:
        """Count a drop decided by the worker or the transport; False (not counted) once settled."""
        with self._lock:
            if self.settled:
                return False
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            if reason in _LOSSES:
                self.lost += count
            return True

    def add_sent(self, count: int) -> None:
        with self._lock:
            if not self.settled:
                self.sent += count

    def add_retried(self, count: int) -> None:
        with self._lock:
            if not self.settled:
                self.retried += count

    def add_recovered(self, count: int) -> None:
        with self._lock:
            self.recovered += count


#: Drop reasons of events that had been accepted for delivery and were then lost (not the event's fault).
_LOSSES = frozenset({"queue_full", "delivery_failed", "shutdown"})


class _Report:
    """The DeliveryReport the transport talks to: counts, and reports losses."""

    def __init__(self, counters: Counters, report_error: Callable[[AnalyticsError], None]) -> None:
        self._counters = counters
        self._report_error = report_error
        self._trouble_lock = threading.Lock()
        self._trouble_at = -TROUBLE_INTERVAL
        self._trouble_suppressed = 0

    def sent(self, count: int) -> None:
        self._counters.add_sent(count)

    def retried(self, count: int) -> None:
        self._counters.add_retried(count)

    def recovered(self, count: int) -> None:
        self._counters.add_recovered(count)

    def trouble(self, count: int, text: str) -> None:
        """Delivery is failing but not lost yet: log it at once, then at most once per TROUBLE_INTERVAL."""
        now = time.monotonic()
        with self._trouble_lock:
            if now - self._trouble_at < TROUBLE_INTERVAL:
                self._trouble_suppressed += 1
                return
            suppressed, self._trouble_suppressed, self._trouble_at = self._trouble_suppressed, 0, now
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        logger.warning("analytics: delivery trouble: %s%s", text, more)

    def close(self) -> None:
        """Say how many trouble reports were suppressed since the last one (at shutdown: none stays unsaid)."""
        with self._trouble_lock:
            suppressed, self._trouble_suppressed = self._trouble_suppressed, 0
        if suppressed:
            logger.warning("analytics: delivery trouble: %d more report(s) since the last one", suppressed)

    def failed(self, count: int, reason: str) -> None:
        if self._counters.pipeline_dropped("delivery_failed", count):
            self._report_error(
                DeliveryError(f"{count} message(s) could not be delivered: {reason}", reason=reason, count=count)
            )


class Dispatcher:
    """Bounded queue plus background worker in front of one transport."""

    def __init__(
        self,
        transport: Transport,
        settings: Settings,
        *,
        encode: Callable[[Any], Message],
        report_error: Callable[[AnalyticsError], None],
        wire: Callable[[Any], tuple[bytes, str]] | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self._encode = encode
        self._wire = wire if wire is not None else self._wire_from_message
        self._report_error = report_error
        self._cap = settings.max_queue_size
        self._drop_oldest = settings.drop_oldest
        self._interval = settings.flush_interval
        self._batch_size = settings.batch_size
        self.counters = Counters()
        self._delivery = _Report(self.counters, report_error)
        transport.bind(self._delivery)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._q: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()  # worker's pops, flush's snapshot, drop-oldest evictions
        self._progress = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._taken = 0  # records the worker has popped
        self._done = 0  # records the worker has finished with (sent to the transport or dropped)
        self._evicted = 0  # records dropped to make room (drop-oldest policy)
        self._refused = 0  # events dropped before reaching the queue
        self._worker: threading.Thread | None = None
        self._closed = False
        self._swept = False  # close() has emptied the queue for the last time
        self._stop = False
        self._lost_seen = 0  # counters.lost when the last flush returned

    # -- the caller's side ------------------------------------------------------------------

    def put(self, item: Any) -> EmitResult:
        """Append a record (or an already encoded message) for the worker. Never blocks."""
        q = self._q
        if len(q) >= self._cap or self._closed:
            return self._refuse(item)
        q.append(item)
        if self._worker is None:  # not started yet, or closed (close() clears it)
            self._after_append()
        elif len(q) % self._batch_size == 0:  # wake once per batch, not on every append
            self._wake.set()
        return OK

    def _after_append(self) -> None:
        if self._closed:
            # close() ran between our check and our append. If it has already emptied the queue for
            # the last time (or is doing so) nobody will take this record: count it as refused.
            if self._swept:
                with self._lock:
                    left = len(self._q)
                    self._q.clear()
                    self._refused += left
                if left:
                    self.counters.add_dropped("closed", left)
            return
        self._start()

    def _refuse(self, item: Any) -> EmitResult:
        if self._closed:
            return self.drop(ClosedError("event dropped: the analytics client is shut down", track=_name(item)))
        if self._drop_oldest:
            with self._lock:
                try:
                    oldest = self._q.popleft()
                except IndexError:
                    oldest = None
                else:
                    self._evicted += 1
                self._q.append(item)
            if oldest is not None:
                self.counters.add_dropped("queue_full", accepted=True)
                self._report_error(
                    QueueFullError(f"queue full ({self._cap}): dropped the oldest event", track=_name(oldest))
                )
            return OK
        return self.drop(QueueFullError(f"queue full ({self._cap}): event dropped", track=_name(item)))

    def drop(self, error: AnalyticsError, *, report: bool = True) -> EmitResult:
        """Count (and unless ``report`` is False, report) an event that will not be sent; return the result."""
        with self._lock:
            self._refused += 1
        self.counters.add_dropped(drop_reason(error))
        if report:
            self._report_error(error)
        return EmitResult(False, error)

    def _start(self) -> bool:
        """Start the transport and the worker (once); False if no thread can be started (interpreter exit)."""
        with self._lock:
            worker = self._worker
            if worker is not None and worker.is_alive():
                return True
            if self._swept:  # closed for good: nothing to start
                return False
            try:
                # The transport's threads start here too, on the recording thread: Python 3.12+
                # refuses to start a thread at interpreter exit, when the atexit flush runs.
                self.transport.start()
                worker = threading.Thread(target=self._run, name="instrument-dispatch", daemon=True)
                worker.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                return False
            self._worker = worker
            return True

    # -- the worker's side ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self._stop and not self._q:
                return

    def _drain(self) -> None:
        q = self._q
        as_bytes = self.transport.accepts_bytes
        limit = int(getattr(self.transport, "batch_limit", MAX_BATCH_BYTES - 1_000))
        while q:
            with self._lock:
                items: list[Any] = []
                while q and len(items) < self._batch_size:
                    items.append(q.popleft())
                self._taken += len(items)
            if as_bytes:
                self._encode_batches(items, limit)
            else:
                batch: list[Message] = []
                for item in items:
                    message = self._message(item)
                    if message is not None:
                        batch.append(message)
                if batch:
                    self._hand_over(batch)
            with self._progress:
                self._done += len(items)
                self._progress.notify_all()

    def _message(self, item: Any) -> Message | None:
        """The message of a record (or the message itself); None when it failed (counted, reported)."""
        try:
            return item if item.__class__ is dict else self._encode(item)
        except AnalyticsError as error:
            if self.counters.pipeline_dropped(drop_reason(error)):
                self._report_error(error)
        except Exception as error:  # a bug or a user hook (redact) failing: never kill the worker
            if self.counters.pipeline_dropped("invalid"):
                self._report_error(_encoding_failed(item, error))
        return None

    def _wire_from_message(self, item: Any) -> tuple[bytes, str]:
        message = self._encode(item)
        return dumps(message), message["messageId"]

    def _encode_batches(self, items: list[Any], limit: int) -> None:
        """Serialise each message once and hand over batches cut before ``limit`` bytes."""
        data: list[bytes] = []
        ids: list[str] = []
        size = -1  # n messages take their bytes plus n - 1 commas
        wire = self._wire
        for item in items:
            try:
                if item.__class__ is dict:  # encoded on the caller's thread (strict mode)
                    encoded, mid = dumps(item), item["messageId"]
                else:
                    encoded, mid = wire(item)
            except AnalyticsError as error:
                if self.counters.pipeline_dropped(drop_reason(error)):
                    self._report_error(error)
                continue
            except Exception as error:  # a bug or a user hook (redact) failing: never kill the worker
                if self.counters.pipeline_dropped("invalid"):
                    self._report_error(_encoding_failed(item, error))
                continue
            grown = size + len(encoded) + 1
            if data and grown > limit:
                self._hand_over(EncodedBatch(data, ids))
                data, ids, grown = [], [], len(encoded)
            data.append(encoded)
            ids.append(mid)
            size = grown
        if data:
            self._hand_over(EncodedBatch(data, ids))

    def _hand_over(self, batch: list[Message] | EncodedBatch) -> None:
        counters = self.counters
        try:
            if isinstance(batch, EncodedBatch):
                # Refused past the transport's byte bound, so memory stays bounded whatever the events.
                if not self.transport.send_batch(batch) and counters.pipeline_dropped("queue_full", len(batch)):
                    self._report_error(
                        QueueFullError(f"queue full (bytes waiting for delivery): {len(batch)} event(s) dropped")
                    )
            else:
                self.transport.send(batch)
        except Exception as error:
            if counters.pipeline_dropped("delivery_failed", len(batch)):
                self._report_error(
                    DeliveryError(
                        f"{len(batch)} message(s) failed in the transport: {type(error).__name__}",
                        reason=type(error).__name__,
                        count=len(batch),
                    )
                )

    # -- flush, close, fork -------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until everything recorded so far is handed over and delivered.

        True only if it all was *delivered*: False on timeout, and False when an accepted event was
        lost to delivery (given up on, refused after acceptance, evicted) since the last flush.
        Events dropped for their own errors (invalid, oversize) were never deliverable: they are
        reported on their own and do not make flush False.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            target = self._taken + len(self._q)
        done = True
        if target > self._done:
            if not self._start():
                self._drain()  # no thread can be started (interpreter exit): hand over on this thread
            self._wake.set()
            with self._progress:
                while self._done < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        done = False
                        break
                    self._progress.wait(remaining)
        done = done and self.transport.flush(max(0.0, deadline - time.monotonic()))
        return self._nothing_lost() and done

    def _nothing_lost(self) -> bool:
        """True if no accepted event was lost since the last call (flush's "delivered" half)."""
        c = self.counters
        with c._lock:
            lost = c.lost
        seen, self._lost_seen = self._lost_seen, lost
        return lost == seen

    def close(self, timeout: float) -> int:
        """Refuse new events, deliver what is queued within ``timeout``, stop; return how many were lost.

        Bounded by ``timeout`` (plus a fraction of a second to stop threads). Every event not delivered
        by then is counted in ``dropped["shutdown"]``. Idempotent: a second call returns 0.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        self._closed = True
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            # From here a racing put() finds no worker and _swept set, and counts its record as
            # refused itself (set both before emptying the queue, so no append falls between).
            self._worker = None
            self._swept = True
            left = len(self._q)
            self._q.clear()
            self._refused += left
        self.transport.close(max(0.0, deadline - time.monotonic()))
        self._delivery.close()
        return self._settle()

    def _settle(self) -> int:
        """Count what is still pending as lost at shutdown, and ignore the pipeline's late reports."""
        c = self.counters
        with self._lock, c._lock:
            if c.settled:
                return 0
            recorded = self._taken + len(self._q) + self._evicted + self._refused
            lost = max(0, recorded - c.sent - sum(c.dropped.values()))
            c.dropped["shutdown"] += lost
            c.settled = True
        return lost

    def after_fork(self) -> None:
        """In a forked child: forget the parent's queue, thread and counters; start afresh."""
        self.counters = Counters()
        self.transport.after_fork()
        self._delivery = _Report(self.counters, self._report_error)
        self.transport.bind(self._delivery)
        self._reset_runtime()

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        c = self.counters
        with c._lock:
            sent, retried, recovered, dropped = c.sent, c.retried, c.recovered, dict(c.dropped)
        with self._lock:
            recorded = self._taken + len(self._q) + self._evicted + self._refused
        # shutdown losses are counted in dropped and already in `recorded` through _refused/_taken.
        pending = max(0, recorded - sent - sum(dropped.values()))
        return Stats(recorded, sent, retried, pending, MappingProxyType(dropped), recovered)


def _encoding_failed(item: Any, error: Exception) -> EncodingError:
    """The error reported when encoding raised something that is not an AnalyticsError (a redact hook)."""
    name = _name(item)
    failure = EncodingError(f"{name}: encoding failed: {type(error).__name__}", track=name, field="")
    failure.__cause__ = error
    return failure


def _name(item: Any) -> str:
    """What to call a record in an error: its Track/Identify class, or the event of a message."""
    if item.__class__ is dict:
        return str(item.get("event") or item.get("type") or "message")
    return type(item).__qualname__


class SyncDispatcher(Dispatcher):
    """Encodes and delivers on the caller's thread, in call order (capture and sync mode)."""

    def put(self, item: Any) -> EmitResult:
        if self._closed:
            return self._refuse(item)
        with self._lock:
            self._taken += 1
            try:
                message = item if item.__class__ is dict else self._encode(item)
            except AnalyticsError as error:
                self._done += 1
                self.counters.pipeline_dropped(drop_reason(error))
                self._report_error(error)
                return EmitResult(False, error)
            except Exception as error:  # a user hook (redact) failing: report it, never raise into the caller
                self._done += 1
                invalid = _encoding_failed(item, error)
                self.counters.pipeline_dropped("invalid")
                self._report_error(invalid)
                return EmitResult(False, invalid)
            try:
                self.transport.send([message])
            except Exception as error:
                self.counters.pipeline_dropped("delivery_failed")
                kind = type(error).__name__
                failure = DeliveryError(f"the transport failed: {kind}", reason=kind, count=1)
                self._report_error(failure)
                return EmitResult(False, failure)
            finally:
                self._done += 1
        return OK

    def flush(self, timeout: float) -> bool:
        done = self.transport.flush(timeout)
        return self._nothing_lost() and done
