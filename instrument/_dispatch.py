"""The dispatcher: a bounded queue the caller appends to, and a worker that encodes and sends.

The caller's thread does one ``deque.append`` (no JSON, no uuid, no I/O, no lock); the worker
turns records into messages (encoding, checks, size) and hands batches to the transport.
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

from instrument._errors import (
    AnalyticsError,
    ClosedError,
    DeliveryError,
    EncodingError,
    OversizeError,
    QueueFullError,
)
from instrument.transports import Message, Transport

logger = logging.getLogger("instrument")

#: Why an event was dropped; the keys of ``Stats.dropped``.
DROP_REASONS = ("invalid", "oversize", "queue_full", "not_configured", "closed", "delivery_failed", "shutdown")


@dataclass(frozen=True)
class Stats:
    """Counters since the client was configured.

    ``recorded`` counts every event handed to track/identify/@tracks; each ends up ``sent``, in
    ``dropped[reason]``, or still ``pending``. ``retried`` counts messages sent again after a failure.
    """

    recorded: int = 0
    sent: int = 0
    retried: int = 0
    pending: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(dict.fromkeys(DROP_REASONS, 0)))

    @property
    def dropped_total(self) -> int:
        """All dropped events, whatever the reason."""
        return sum(self.dropped.values())


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
    return "invalid"


class Counters:
    """Counters shared by callers, the worker and the transport's thread (updates under a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.retried = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def add_dropped(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def add_sent(self, count: int) -> None:
        with self._lock:
            self.sent += count

    def add_retried(self, count: int) -> None:
        with self._lock:
            self.retried += count


class _Report:
    """The DeliveryReport the transport talks to: counts, and reports losses."""

    def __init__(self, counters: Counters, report_error: Callable[[AnalyticsError], None]) -> None:
        self._counters = counters
        self._report_error = report_error

    def sent(self, count: int) -> None:
        self._counters.add_sent(count)

    def retried(self, count: int) -> None:
        self._counters.add_retried(count)

    def failed(self, count: int, reason: str) -> None:
        self._counters.add_dropped("delivery_failed", count)
        self._report_error(
            DeliveryError(f"{count} message(s) could not be delivered: {reason}", reason=reason, count=count)
        )


class Dispatcher:
    """Bounded queue plus background worker in front of one transport."""

    def __init__(
        self,
        transport: Transport,
        *,
        encode: Callable[[Any], Message],
        report_error: Callable[[AnalyticsError], None],
        max_queue_size: int = 10_000,
        drop_oldest: bool = False,
        flush_interval: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self.transport = transport
        self._encode = encode
        self._report_error = report_error
        self._cap = max_queue_size
        self._drop_oldest = drop_oldest
        self._interval = flush_interval
        self._batch_size = batch_size
        self.counters = Counters()
        transport.bind(_Report(self.counters, report_error))
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
        self._stop = False

    # -- the caller's side ------------------------------------------------------------------

    def put(self, item: Any) -> EmitResult:
        """Append a record (or an already encoded message) for the worker. Never blocks."""
        q = self._q
        if len(q) >= self._cap or self._closed:
            return self._refuse(item)
        q.append(item)
        if self._worker is None:
            self._start()
        elif len(q) >= self._batch_size:
            self._wake.set()
        return OK

    def _refuse(self, item: Any) -> EmitResult:
        if self._closed:
            return self.drop(ClosedError("event dropped: the analytics client is shut down"))
        if self._drop_oldest:
            with self._lock:
                try:
                    self._q.popleft()
                except IndexError:
                    pass
                else:
                    self._evicted += 1
            self._q.append(item)
            self.drop(QueueFullError(f"queue full ({self._cap}): dropped the oldest event"), counted=False)
            self.counters.add_dropped("queue_full")
            return OK
        return self.drop(QueueFullError(f"queue full ({self._cap}): event dropped"))

    def drop(self, error: AnalyticsError, *, counted: bool = True, reason: str | None = None) -> EmitResult:
        """Count and report an event that will not be sent; return the failed result."""
        if counted:
            with self._lock:
                self._refused += 1
            self.counters.add_dropped(reason or drop_reason(error))
        self._report_error(error)
        return EmitResult(False, error)

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                worker = threading.Thread(target=self._run, name="instrument-dispatch", daemon=True)
                self._worker = worker
                worker.start()

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
        while q:
            with self._lock:
                items: list[Any] = []
                while q and len(items) < self._batch_size:
                    items.append(q.popleft())
                self._taken += len(items)
            batch: list[Message] = []
            for item in items:
                try:
                    batch.append(item if item.__class__ is dict else self._encode(item))
                except AnalyticsError as error:
                    self.counters.add_dropped(drop_reason(error))
                    self._report_error(error)
                except Exception as error:  # a bug or a user hook (redact) failing: never kill the worker
                    wrapped = EncodingError(
                        f"{type(item).__name__}: encoding failed: {error!r}", track=type(item).__name__, field=""
                    )
                    self.counters.add_dropped("invalid")
                    self._report_error(wrapped)
            if batch:
                try:
                    self.transport.send(batch)
                except Exception as error:
                    self.counters.add_dropped("delivery_failed", len(batch))
                    self._report_error(
                        DeliveryError(
                            f"{len(batch)} message(s) failed in the transport: {error!r}",
                            reason=repr(error),
                            count=len(batch),
                        )
                    )
            with self._progress:
                self._done += len(items)
                self._progress.notify_all()

    # -- flush, close, fork -------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until everything recorded so far is handed over and delivered; False on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            target = self._taken + len(self._q)
        if target > self._done:
            if self._worker is None or not self._worker.is_alive():
                self._worker = None
                self._start()
            self._wake.set()
            with self._progress:
                while self._done < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._progress.wait(remaining)
        return self.transport.flush(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float) -> int:
        """Refuse new events, deliver what is queued within ``timeout``, stop; return how many were lost."""
        deadline = time.monotonic() + max(0.0, timeout)
        self._closed = True
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = len(self._q)
            self._q.clear()
            self._refused += left
        undelivered = self.transport.close(max(0.0, deadline - time.monotonic()))
        lost = left + max(0, undelivered)
        if lost:
            self.counters.add_dropped("shutdown", lost)
        return lost

    def after_fork(self) -> None:
        """In a forked child: forget the parent's queue, thread and counters; start afresh."""
        self.counters = Counters()
        self.transport.after_fork()
        self.transport.bind(_Report(self.counters, self._report_error))
        self._reset_runtime()

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        c = self.counters
        with c._lock:
            sent, retried, dropped = c.sent, c.retried, dict(c.dropped)
        with self._lock:
            recorded = self._taken + len(self._q) + self._evicted + self._refused
        # shutdown losses are counted in dropped and already in `recorded` through _refused/_taken.
        pending = max(0, recorded - sent - sum(dropped.values()))
        return Stats(recorded, sent, retried, pending, MappingProxyType(dropped))


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
                self.counters.add_dropped(drop_reason(error))
                self._report_error(error)
                return EmitResult(False, error)
            try:
                self.transport.send([message])
            except Exception as error:
                self.counters.add_dropped("delivery_failed")
                failure = DeliveryError(f"the transport failed: {error!r}", reason=repr(error), count=1)
                self._report_error(failure)
                return EmitResult(False, failure)
            finally:
                self._done += 1
        return OK

    def flush(self, timeout: float) -> bool:
        return self.transport.flush(timeout)
