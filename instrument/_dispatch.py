"""The dispatcher: a bounded queue the caller appends to, one worker that encodes and exports batches,
and the ledger of what became of every event.

Modelled on OpenTelemetry's ``BatchProcessor``: one item type on the queue (a record: a track as its
packed values, or a record object, or strict mode's built message), one lock, one
worker thread that pops up to a batch, encodes it (each message serialised once, to JSON bytes, for a
transport that ships bytes) and hands it to the transport, which delivers it on the worker's thread
(as an httpx transport handles a request). While the transport retries, records wait in the queue and
a full queue refuses the caller (``QueueFullError``): nothing is dropped after ``track()`` said ok
while the endpoint is healthy. The queue is bounded by count (``max_queue_size``) and by bytes: its
count bound shrinks to ``max_queue_bytes`` divided by the encoded size the worker measures.

The caller's thread does one ``deque.append`` (no JSON, no uuid, no I/O, no lock); a track whose class
has its direct path is appended as a tuple of its values (what is sent is what it held at ``track()``).

The ledger: every accepted event (``track()`` returned ok) ends in exactly one state, delivered or lost
for a reason, and until then is pending: ``accepted == sent + lost + pending`` at every moment, and
``pending == 0`` once the client is shut down.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from instrument._encoding import dumps
from instrument._errors import (
    AnalyticsError,
    ClosedError,
    DeliveryError,
    EncodingError,
    NotConfiguredError,
    OversizeError,
    QueueFullError,
)
from instrument._reporting import Reporter
from instrument._settings import Settings
from instrument.transports import Message, Transport
from instrument.transports._base import DEFAULT_MAX_QUEUE_BYTES, EncodedBatch, batches_of

#: Why an event was dropped; the keys of ``Stats.dropped``. "internal_error": the pipeline itself
#: failed (a bug) with the event in hand; it was reported and the pipeline went on. With destinations
#: (a destination's own ledger): "consent_denied", its user's consent does not allow that destination;
#: "forgotten", removed from the queue by ``instrument.forget(user_id)``.
DROP_REASONS = (
    "invalid",
    "oversize",
    "queue_full",
    "not_configured",
    "closed",
    "delivery_failed",
    "shutdown",
    "internal_error",
    "consent_denied",
    "forgotten",
)


def _zeros() -> Mapping[str, int]:
    return MappingProxyType(dict.fromkeys(DROP_REASONS, 0))


@dataclass(frozen=True)
class Stats:
    """What became of the events since the client was configured (a consistent snapshot).

    ``recorded`` counts every event handed to track/identify/@tracks. ``refused`` (by reason) were
    turned down at the call (``ok`` was False); the rest were ``accepted``, and each accepted event
    is ``sent`` (delivered: the endpoint took it), ``lost`` (by reason, each loss reported to
    ``on_error``) or still ``pending``: ``accepted == sent + lost_total + pending`` always, and
    ``pending`` is 0 after shutdown. ``dropped`` is refused and lost together, by reason.
    ``retried`` counts messages sent again after a failure; ``recovered`` counts messages a durable
    spool kept from a process that is gone and this one delivered (never recorded here). ``spool``
    holds the spool's own counters (empty without one).
    """

    recorded: int = 0
    sent: int = 0
    retried: int = 0
    pending: int = 0
    dropped: Mapping[str, int] = field(default_factory=_zeros)
    recovered: int = 0
    accepted: int = 0
    refused: Mapping[str, int] = field(default_factory=_zeros)
    lost: Mapping[str, int] = field(default_factory=_zeros)
    spool: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: With ``configure(destinations=...)``: each destination's own ledger, by name (its ``sent`` is
    #: what that destination took; the client's own ``sent`` counts events handed to every destination).
    destinations: Mapping[str, Stats] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def delivered(self) -> int:
        """Accepted events the endpoint took (``sent``)."""
        return self.sent

    @property
    def dropped_total(self) -> int:
        """All dropped events, refused or lost, whatever the reason."""
        return sum(self.dropped.values())

    @property
    def lost_total(self) -> int:
        """Accepted events that were lost, whatever the reason."""
        return sum(self.lost.values())

    def summary(self) -> str:
        """The ledger in words: accepted, delivered, lost (by reason), pending."""
        text = f"{self.accepted} accepted: {self.sent} delivered, {self.lost_total} lost"
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.lost.items() if n)
        if reasons:
            text += f" ({reasons})"
        if self.pending:
            text += f", {self.pending} pending"
        refused = sum(self.refused.values())
        if refused:
            text += f"; {refused} refused at the call"
        for name, own in self.destinations.items():
            text += f"; {name}: {own.sent} delivered, {own.lost_total + sum(own.refused.values())} not"
            if own.pending:
                text += f", {own.pending} pending"
        return text

    def __repr__(self) -> str:
        # Plain dicts of the reasons that happened (the fields are read-only mappingproxies).
        dropped = {reason: n for reason, n in self.dropped.items() if n}
        return (
            f"Stats(recorded={self.recorded}, accepted={self.accepted}, sent={self.sent}, retried={self.retried}, "
            f"pending={self.pending}, dropped={dropped})"
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


class Prebuilt:
    """A record whose message was built on the caller's thread (strict mode), for a transport that takes
    (record, message) pairs (``accepts_records``): the message is not built again."""

    __slots__ = ("message", "record")

    def __init__(self, record: Any, message: Message) -> None:
        self.record = record
        self.message = message


class Ledger:
    """The counters of every outcome, under the dispatcher's one lock; the transport's DeliveryReport.

    Once ``settled`` (by ``Dispatcher.close``) every event still pending has been counted lost for
    "shutdown"; late reports from the pipeline (a request that completes after close gave up on it)
    are then ignored, so no event is ever counted twice.
    """

    def __init__(self, lock: threading.RLock, reporter: Reporter) -> None:
        self.lock = lock
        self.reporter = reporter
        self.delivered = 0
        self.retries = 0
        self.recoveries = 0
        self.refused = dict.fromkeys(DROP_REASONS, 0)
        self.lost = dict.fromkeys(DROP_REASONS, 0)
        self.settled = False

    def refuse(self, error: AnalyticsError, *, report: bool = True) -> EmitResult:
        """An event turned down at the call: count it and (unless ``report`` is False) report it."""
        with self.lock:
            self.refused[drop_reason(error)] += 1
        if report:
            self.reporter.error(error)
        return EmitResult(False, error)

    def deny(self, count: int) -> None:
        """``count`` events were not sent here because their user's consent does not allow it (not reported)."""
        with self.lock:
            self.refused["consent_denied"] += count

    def lose(self, reason: str, count: int, error: AnalyticsError) -> None:
        """``count`` accepted events are lost: count and report them (not once settled: counted already)."""
        with self.lock:
            if self.settled:
                return
            self.lost[reason] += count
        self.reporter.error(error)

    # -- DeliveryReport ------------------------------------------------------------------------

    def sent(self, count: int) -> None:
        with self.lock:
            if not self.settled:
                self.delivered += count

    def retried(self, count: int) -> None:
        with self.lock:
            if not self.settled:
                self.retries += count

    def failed(self, count: int, reason: str) -> None:
        text = f"{count} message(s) could not be delivered: {reason}"
        self.lose("delivery_failed", count, DeliveryError(text, reason=reason, count=count))

    def recovered(self, count: int) -> None:
        with self.lock:
            self.recoveries += count

    def trouble(self, count: int, text: str) -> None:
        self.reporter.trouble(text)

    def forgotten(self, count: int) -> None:
        with self.lock:
            if not self.settled:
                self.lost["forgotten"] += count


class Dispatcher:
    """Bounded queue plus one background worker in front of one transport."""

    def __init__(
        self,
        transport: Transport,
        settings: Settings,
        *,
        encode: Callable[[Any], Message],
        reporter: Reporter,
        wire: Callable[[Any], tuple[bytes, str]] | None = None,
        batches: Callable[[list[Any], int, Callable[[Any, Exception], None]], Iterator[EncodedBatch]] | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self._encode = encode
        self._wire_of = wire if wire is not None else self._wire_from_message
        # Records -> encoded batches: the client's own loop (records to bytes without a call per message
        # through ``wire``), else ``wire`` item by item.
        self._batches = batches if batches is not None else self._batches_by_item
        self._reporter = reporter
        self._max_count = settings.max_queue_size
        self._max_bytes = settings.max_queue_bytes or DEFAULT_MAX_QUEUE_BYTES
        self._drop_oldest = settings.drop_oldest
        self._interval = settings.flush_interval
        self._batch_size = settings.batch_size
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        # The one lock: the worker's pops, evictions, the ledger, progress. Re-entrant: the collector can
        # run a finalizer while this thread holds it, and a finalizer that records an event that is
        # refused (the ledger) must not wait for this thread forever (logging's locks are RLocks too).
        self._lock = threading.RLock()
        self.ledger = Ledger(self._lock, self._reporter)
        self.transport.bind(self.ledger)
        self._progress = threading.Condition(self._lock)
        self._q: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._cap = self._max_count  # the count bound; lowered to keep max_queue_bytes (_set_cap)
        self._head_size = 0  # bytes per message of the last batch encoded (the queue's head)
        self._tail_size = 0  # bytes per message sampled from the appends (the queue's tail)
        self._taken = 0  # records the worker has popped
        self._done = 0  # records the worker has finished with (handed to the transport or dropped)
        self._in_hand = 0  # records popped and not yet finished with (a failure loses exactly these)
        self._awaited: list[int] = []  # the _done each waiting flush waits for
        self._evicted = 0  # accepted records dropped to make room (drop-oldest policy)
        self._swept = 0  # accepted records close() found still queued
        self._spilled = 0  # accepted records a full queue sent to the overflow (to spill to disk)
        self._overflow: list[Any] = []  # those not spilled yet: written to disk a batch at a time
        self._worker: threading.Thread | None = None
        self._recovering = False  # the worker delivers a spool's leftovers first: flush waits for them
        self._closed = False
        self._stopped = False  # close() has emptied the queue for the last time
        self._stop = False
        self._lost_seen = 0  # ledger losses when the last flush returned

    @property
    def closed(self) -> bool:
        """True once ``close`` was called (events are refused from then on)."""
        return self._closed

    # -- the caller's side ------------------------------------------------------------------

    def put(self, item: Any) -> EmitResult:
        """Append a record (a packed track, or a message strict mode built) for the worker. Never blocks."""
        q = self._q
        if len(q) >= self._cap or self._closed:
            return self._refuse(item)
        q.append(item)
        if self._worker is None:  # not started yet, or closed (close() clears it)
            self._after_append()
        elif len(q) % self._batch_size == 0:  # wake once per batch, not on every append
            self._wake.set()
            self._sample_tail(item)
        return OK

    def _after_append(self) -> None:
        if self._closed:
            # close() ran between our check and our append. If it has already emptied the queue for
            # the last time nobody will take this record: it was accepted, and is lost at shutdown.
            if self._stopped:
                with self._lock:
                    left = self._sweep_locked()
                if left:
                    self.ledger.lose("closed", left, ClosedError(f"{left} event(s) recorded during shutdown lost"))
            return
        self.start()

    def _refuse(self, item: Any) -> EmitResult:
        if self._closed:
            return self.drop(ClosedError("event dropped: the analytics client is shut down", track=_name(item)))
        spilled = self._spill(item)
        if spilled is not None:
            return spilled
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
                error = QueueFullError(f"queue full ({self._cap}): dropped the oldest event", track=_name(oldest))
                self.ledger.lose("queue_full", 1, error)
            return OK
        return self.drop(QueueFullError(f"queue full ({self._cap}): event dropped", track=_name(item)))

    def _spill(self, item: Any) -> EmitResult | None:
        """The queue is full: with a transport that can spill to disk (a spool), accept the event into
        the overflow, written to disk a batch at a time (by the caller that fills a batch, on this
        overflow path only, or by the worker); None: nowhere to spill, refuse."""
        if not self.transport.spills:
            return None
        with self._lock:
            self._overflow.append(item)
            self._spilled += 1
            if len(self._overflow) < self._batch_size:
                return OK
            group, self._overflow = self._overflow, []
        self._spill_group(group)
        return OK

    def _take_overflow(self) -> None:
        """Spill what waits in the overflow now (the worker's loop, flush)."""
        with self._lock:
            group, self._overflow = self._overflow, []
        if group:
            self._spill_group(group)

    def _spill_group(self, group: list[Any]) -> None:
        """Encode accepted overflow records and have the transport write them to disk; what cannot be
        encoded, or does not fit in the spool, is lost (counted, reported with its count)."""

        def lost(item: Any, error: Exception) -> None:
            self.ledger.lose(drop_reason(error), 1, _as_analytics_error(item, error))

        for batch in self._batches(group, self.transport.batch_limit, lost):
            if not self.transport.spill(batch):
                n = len(batch)
                text = f"queue and spool full: {n} event(s) dropped"
                self.ledger.lose("queue_full", n, DeliveryError(text, reason="queue_full", count=n))

    def drop(self, error: AnalyticsError, *, report: bool = True) -> EmitResult:
        """Refuse an event at the call: count (and unless ``report`` is False, report) it; the result."""
        return self.ledger.refuse(error, report=report)

    def start(self) -> bool:
        """Start the transport and the worker (once); False if no thread can be started (interpreter exit)."""
        with self._lock:
            worker = self._worker
            if worker is not None and worker.is_alive():
                return True
            if self._stopped:  # closed for good: nothing to start
                return False
            try:
                # The transport's threads start here too, on the recording thread: Python 3.12+
                # refuses to start a thread at interpreter exit, when the atexit flush runs.
                self.transport.start()
                worker = threading.Thread(target=self._run, name="instrument-dispatch", daemon=True)
                self._recovering = True
                worker.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                self._recovering = False
                return False
            self._worker = worker
            return True

    # -- the worker's side ------------------------------------------------------------------

    def _run(self) -> None:
        self._guarded(self._deliver_leftovers)
        with self._progress:
            self._recovering = False
            self._progress.notify_all()
        while not (self._stop and not self._q):
            if len(self._q) < self._batch_size:
                self._wake.wait(self._interval)
                self._wake.clear()
            self._guarded(self._drain)
            if self._overflow:
                self._guarded(self._take_overflow)
            if not self._q and not self._stop:
                self._guarded(self.transport.poll)  # a spool's leftovers, re-scanned now and then

    def _deliver_leftovers(self) -> None:
        while not self._stop and self.transport.poll():
            pass

    def _guarded(self, step: Callable[[], Any]) -> None:
        """Run one step of the worker; an exception (a bug) is reported, the records in hand are counted
        lost, and the worker goes on: the pipeline never dies."""
        try:
            step()
        except Exception as error:
            with self._progress:
                lost, self._in_hand = self._in_hand, 0
                self._done += lost
                self._progress.notify_all()
            kind = type(error).__name__
            failure = DeliveryError(
                f"the delivery pipeline failed ({kind}); {lost} event(s) lost, delivery goes on",
                reason=kind,
                count=lost,
            )
            failure.__cause__ = error
            if lost:
                self.ledger.lose("internal_error", lost, failure)
            else:
                self._reporter.error(failure)

    def _drain(self) -> None:
        q = self._q
        while q:
            with self._lock:
                items = self._take_locked(min(len(q), self._batch_size))
                self._taken += len(items)
                self._in_hand = len(items)
            if self.transport.accepts_bytes:
                self._export_bytes(items)
            else:
                self._export_messages(items, with_records=self.transport.accepts_records)

    def _take_locked(self, count: int) -> list[Any]:
        """The ``count`` oldest queued items, taken out (the lock held).

        Only holders of the lock take from the queue's left, and put() appends on its right without
        the lock, so these are there, and an append racing this is neither taken nor lost: never
        ``len()`` then ``clear()``, nor iterating the queue while Python code runs.
        """
        pop = self._q.popleft
        return [pop() for _ in range(count)]

    def _sweep_locked(self) -> int:
        """Take out everything queued now (the lock held), counted swept: accepted, never delivered."""
        left = len(self._q)
        self._take_locked(left)
        self._swept += left
        return left

    def _finished(self, count: int) -> None:
        with self._progress:
            self._in_hand -= count
            self._done += count
            # Waiters are woken when the first of them is done, not at every batch: a flush waiting on a
            # long backlog would otherwise wake (and take the GIL from this thread) a thousand times.
            awaited = self._awaited
            if awaited and self._done >= min(awaited):
                self._progress.notify_all()

    def _failed(self, item: Any, error: Exception) -> None:
        """A popped event that cannot be encoded: lost, reported, finished with."""
        self.ledger.lose(drop_reason(error), 1, _as_analytics_error(item, error))
        self._finished(1)

    def _export_bytes(self, items: list[Any]) -> None:
        for batch in self._batches(items, self.transport.batch_limit, self._failed):
            self._bound_by_bytes(batch)
            self._export(batch, len(batch))

    def _export_messages(self, items: list[Any], *, with_records: bool = False) -> None:
        """Build each message once; hand the messages (or, ``with_records``, (record, message) pairs)."""
        batch: list[Any] = []
        for item in items:
            if item.__class__ is Prebuilt:
                batch.append((item.record, item.message) if with_records else item.message)
                continue
            try:
                message = item if item.__class__ is dict else self._encode(item)
            except Exception as error:
                self._failed(item, error)
                continue
            batch.append((item, message) if with_records else message)
        if batch:
            self._export(batch, len(batch), with_records=with_records)

    def _export(self, batch: list[Any] | EncodedBatch, count: int, *, with_records: bool = False) -> None:
        try:
            if isinstance(batch, EncodedBatch):
                self.transport.send_batch(batch)  # False: stopped at shutdown, counted by _settle
            elif with_records:
                self.transport.send_records(batch)
            else:
                self.transport.send(batch)
        except Exception as error:
            kind = type(error).__name__
            failure = DeliveryError(f"{count} message(s) failed in the transport: {kind}", reason=kind, count=count)
            failure.__cause__ = error
            self.ledger.lose("delivery_failed", count, failure)
        self._finished(count)

    def _bound_by_bytes(self, batch: EncodedBatch) -> None:
        """Keep the queue's bytes near ``max_queue_bytes``: its count bound follows the encoded size of
        the queue's head (this batch) and the sampled size of its tail, whichever is larger."""
        self._head_size = batch.size // max(1, len(batch)) + 1
        self._set_cap()

    def _sample_tail(self, item: Any) -> None:
        """Once per batch of appends, on the caller's thread: the size of what is arriving now. The worker
        only sees the head, and while it is stuck (an endpoint down) the head stays what came first: small
        events, then large ones, would fill the count bound with large ones. A smaller sample lowers the
        estimate a quarter at a time, so that one small event among large ones does not undo it."""
        size = _rough_size(item)
        self._tail_size = max(size, self._tail_size * 3 // 4)
        self._set_cap()

    def _set_cap(self) -> None:
        per_message = max(self._head_size, self._tail_size, 1)
        self._cap = max(self._batch_size, min(self._max_count, self._max_bytes // per_message))

    def _batches_by_item(
        self, items: list[Any], limit: int, failed: Callable[[Any, Exception], None]
    ) -> Iterator[EncodedBatch]:
        return batches_of(items, limit, self._wire_of, failed)

    def _wire_from_message(self, item: Any) -> tuple[bytes, str]:
        message = item if item.__class__ is dict else self._encode(item)  # a dict: built in strict mode
        return dumps(message), message["messageId"]

    # -- flush, close, fork -------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until everything recorded so far is delivered (or lost).

        True only if it all was *delivered*: False on timeout, and False when an accepted event was
        lost to delivery (given up on, evicted, a pipeline failure) since the last flush. Called on
        the worker's thread (from on_error) with events left, False at once.
        Events dropped for their own errors (invalid, oversize) were never deliverable: they are
        reported on their own and do not make flush False.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            target = self._taken + len(self._q)
        done = True
        self._take_overflow()
        if target > self._done or self._recovering:
            if threading.current_thread() is self._worker:
                # Called on the worker's own thread (an on_error handler): what is left waits for this very
                # thread, so waiting could only run the timeout out while delivery stands still.
                return False
            if not self.start():
                self._drain()  # no thread can be started (interpreter exit): deliver on this thread
            self._wake.set()
            with self._progress:
                self._awaited.append(target)
                try:
                    while self._done < target or self._recovering:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            done = False
                            break
                        self._progress.wait(remaining)
                finally:
                    self._awaited.remove(target)
        done = self.transport.flush(max(0.0, deadline - time.monotonic())) and done
        return self._nothing_lost() and done

    def _nothing_lost(self) -> bool:
        """True if no accepted event was lost to delivery since the last call (flush's "delivered" half)."""
        with self._lock:
            lost = sum(n for reason, n in self.ledger.lost.items() if reason not in _OWN_FAULT)
        seen, self._lost_seen = self._lost_seen, lost
        return lost == seen

    def close(self, timeout: float) -> int:
        """Refuse new events, deliver what is queued within ``timeout``, stop; return how many were lost.

        Bounded by ``timeout`` (plus a fraction of a second to stop the worker). Every accepted event
        not delivered by then is counted lost for "shutdown". Idempotent: a second call returns 0.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        self._closed = True
        self.flush(timeout)
        self._stop = True
        self.transport.stop_by(deadline)
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                self.transport.abort()  # the request in flight is cut
                worker.join(0.2)
        with self._lock:
            # From here a racing put() finds no worker and _stopped set, and counts its record itself
            # (set both before emptying the queue, so no append falls between).
            self._worker = None
            self._stopped = True
            self._sweep_locked()
        self.transport.close(max(0.0, deadline - time.monotonic()))
        return self._settle()

    def _settle(self) -> int:
        """Count what is still pending as lost at shutdown, and ignore the pipeline's late reports."""
        with self._lock:
            if self.ledger.settled:
                return 0
            lost = self._pending_locked()
            self.ledger.lost["shutdown"] += lost
            self.ledger.settled = True
        return lost

    def _accepted_locked(self) -> int:
        return self._taken + len(self._q) + self._evicted + self._swept + self._spilled

    def _pending_locked(self) -> int:
        ledger = self.ledger
        return max(0, self._accepted_locked() - ledger.delivered - sum(ledger.lost.values()))

    def forget(self, match: Callable[[Any], bool]) -> int:
        """Remove the queued events ``match`` selects (``instrument.forget``); counted lost as "forgotten".

        Events the worker has already taken (the batch in hand) are not reached.
        """
        with self._lock:
            # Taken out first, not iterated in place: other threads append while the matcher runs.
            queued = self._take_locked(len(self._q))
            kept = [item for item in queued if not _matches(match, item)]
            gone = len(queued) - len(kept)
            self._q.extendleft(reversed(kept))  # back in front of what was appended meanwhile, in order
            overflow = [item for item in self._overflow if not _matches(match, item)]
            gone_over = len(self._overflow) - len(overflow)
            self._overflow = overflow
            # The removed ones were accepted: they stay counted there (as swept), and end as forgotten.
            self._swept += gone
            self.ledger.lost["forgotten"] += gone + gone_over
        return gone + gone_over

    def after_fork(self) -> None:
        """In a forked child: forget the parent's queue, thread and counters; start afresh."""
        self.transport.after_fork()
        self._reset_runtime()

    def stats(self) -> Stats:
        """A consistent snapshot of the ledger."""
        with self._lock:
            ledger = self.ledger
            accepted = self._accepted_locked()
            pending = self._pending_locked()
            refused, lost = dict(ledger.refused), dict(ledger.lost)
            sent, retried, recovered = ledger.delivered, ledger.retries, ledger.recoveries
        dropped = {reason: refused[reason] + lost[reason] for reason in DROP_REASONS}
        return Stats(
            recorded=accepted + sum(refused.values()),
            sent=sent,
            retried=retried,
            pending=pending,
            dropped=MappingProxyType(dropped),
            recovered=recovered,
            accepted=accepted,
            refused=MappingProxyType(refused),
            lost=MappingProxyType(lost),
        )


#: Losses that are the event's own fault (it could never be delivered), or what the program asked for
#: (forget): they do not make flush False.
_OWN_FAULT = frozenset({"invalid", "oversize", "forgotten"})


#: A message's bytes beyond its own values (type, event, ids, timestamps, scope): what _rough_size adds.
_MESSAGE_HEAD = 256


def _rough_size(item: Any) -> int:
    """Roughly the bytes a queued item's message will take: its text, a few bytes per other value, and
    a message's head. Bounded work on any value (a sample for the byte bound, never an exact size)."""
    try:
        if item.__class__ is tuple:  # a packed track: (class, scope, time, *properties)
            values: Any = item[3:]
        elif item.__class__ is Prebuilt:
            values = item.message
        elif item.__class__ is dict:
            values = item
        else:
            values = item.properties
        return _MESSAGE_HEAD + _text_size(values, 4)
    except Exception:  # a value that cannot be measured: the sample says nothing
        return 0


def _text_size(value: Any, depth: int) -> int:
    kind = value.__class__
    if kind is str or kind is bytes:
        return len(value)
    if depth and (kind is dict or kind is list or kind is tuple):
        children = itertools.islice(value.values() if kind is dict else value, 64)
        return 8 * len(value) + sum(_text_size(child, depth - 1) for child in children)
    return 8


def _matches(match: Callable[[Any], bool], item: Any) -> bool:
    try:
        return bool(match(item))
    except Exception:  # an item the matcher cannot read is not the user's
        return False


def _as_analytics_error(item: Any, error: Exception) -> AnalyticsError:
    """``error`` if it is an AnalyticsError, else the EncodingError that reports it (a bug, a redact hook)."""
    return error if isinstance(error, AnalyticsError) else _encoding_failed(item, error)


def _encoding_failed(item: Any, error: Exception) -> EncodingError:
    """The error reported when encoding raised something that is not an AnalyticsError (a redact hook)."""
    name = _name(item)
    failure = EncodingError(f"{name}: encoding failed: {type(error).__name__}", track=name, field="")
    failure.__cause__ = error
    return failure


def _name(item: Any) -> str:
    """What to call a record in an error: its Track/Identify class, or the event of a message."""
    if item.__class__ is Prebuilt:
        item = item.record
    if item.__class__ is dict:
        return str(item.get("event") or item.get("type") or "message")
    if item.__class__ is tuple:  # a track packed by track(): its class first
        return str(item[0].__qualname__)
    return type(item).__qualname__


class SyncDispatcher(Dispatcher):
    """Encodes and delivers on the caller's thread, in call order (capture and sync mode).

    An event that cannot be encoded is refused (``ok`` False); an accepted event the transport fails
    to deliver is lost, and ``ok`` is False too (the caller waited for the answer).
    """

    def _reset_runtime(self) -> None:
        super()._reset_runtime()
        self._order = threading.Lock()  # one event at a time through the transport, in call order
        self._sending: int | None = None  # the thread inside a send (events it records meanwhile wait)

    def put(self, item: Any) -> EmitResult:
        if self._closed:
            return self._refuse(item)
        if item.__class__ is Prebuilt:
            item, message = item.record, item.message
        else:
            try:
                message = item if item.__class__ is dict else self._encode(item)
            except Exception as error:  # a user hook (redact) failing too: reported, never raised into the caller
                return self.drop(_as_analytics_error(item, error))
        me = threading.get_ident()
        if self._sending == me:
            # Recorded in the middle of this thread's own send (a finalizer the collector ran, a signal
            # handler): queued, and sent by that send's call right after it, not inside it.
            self._q.append(Prebuilt(item, message))
            return OK
        # Reports made under the one-at-a-time lock reach on_error after it is released: a handler that
        # records an event would otherwise wait for that lock on this thread forever.
        with self._reporter.deferred(), self._order:
            self._sending = me
            try:
                with self._lock:
                    self._taken += 1
                    self._in_hand = 1
                    lost_before = self.ledger.lost["delivery_failed"]
                self._send_one(item, message)
                with self._lock:
                    failed = self.ledger.lost["delivery_failed"] > lost_before
                self._send_recorded_meanwhile()
            finally:
                self._sending = None
        if failed:
            return EmitResult(False, DeliveryError("the transport failed", reason="transport", count=1))
        return OK

    def _send_one(self, record: Any, message: Message) -> None:
        records = self.transport.accepts_records
        self._export([(record, message)] if records else [message], 1, with_records=records)

    def _send_recorded_meanwhile(self) -> None:
        while True:
            with self._lock:
                if not self._q:
                    return
                later = self._q.popleft()
                self._taken += 1
                self._in_hand = 1
            self._send_one(later.record, later.message)

    def flush(self, timeout: float) -> bool:
        done = self.transport.flush(timeout)
        return self._nothing_lost() and done
