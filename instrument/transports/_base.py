"""The transport contract: what the dispatcher's worker hands messages (or encoded batches) to.

Two shapes cross from the worker to a transport:

- ``send(messages)``: decoded messages (dicts), for transports that look at them (memory, console,
  your own);
- ``send_batch(batch)``: an :class:`EncodedBatch`, each message already serialised to JSON bytes once,
  for transports that ship bytes (Segment). A transport says which it takes with ``accepts_bytes``.

A durable spool (:class:`Spool`) plugs in between the encoded batch and its first send attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from instrument._encoding import MAX_BATCH_BYTES

Message = dict[str, Any]

#: The bound of encoded bytes held in memory (the queue, a spool's sender) when ``max_queue_bytes`` is None.
DEFAULT_MAX_QUEUE_BYTES = 32 << 20


class EncodedBatch:
    """Messages serialised once to JSON bytes, each under 32 KB, whose body fits Segment's 500 KB.

    ``joined`` is the messages' JSON (UTF-8) joined by commas, as the body holds them; ``messages``
    gives them one by one (slices of ``joined``), ``ids[i]`` is the messageId of ``messages[i]``.
    ``size`` is ``len(joined)``. ``handle`` is what a spool's ``append`` returned (None: not
    spooled). ``recovered`` marks a batch read back from a spool that a dead process left behind:
    its events were never recorded by this process, so its delivery is counted in
    ``Stats.recovered``, not ``sent``.

    The messages are joined when the batch is made: the serialiser's own buffers (several KB each,
    whatever the message's size) are released at once, so what waits for the sender costs its size.
    """

    __slots__ = ("handle", "ids", "joined", "lengths", "recovered")

    def __init__(
        self, messages: list[bytes], ids: list[str], *, recovered: bool = False, lengths: list[int] | None = None
    ) -> None:
        self.joined = b",".join(messages)
        self.lengths = [len(m) for m in messages] if lengths is None else lengths
        self.ids = ids
        self.handle: object | None = None
        self.recovered = recovered

    @property
    def size(self) -> int:
        """Bytes of the joined messages."""
        return len(self.joined)

    @property
    def messages(self) -> list[bytes]:
        """Each message's JSON bytes, in order."""
        out = []
        at = 0
        joined = self.joined
        for n in self.lengths:
            out.append(joined[at : at + n])
            at += n + 1
        return out

    def __len__(self) -> int:
        return len(self.lengths)

    def __repr__(self) -> str:
        return f"EncodedBatch({len(self)} messages, {self.size} bytes, recovered={self.recovered})"


def batches_of(
    items: Iterable[Any],
    limit: int,
    wire: Callable[[Any], tuple[bytes, str]] | None = None,
    failed: Callable[[Any, Exception], None] | None = None,
) -> Iterator[EncodedBatch]:
    """Cut messages into batches whose joined messages stay under ``limit``.

    ``items`` are ``(message bytes, messageId)`` pairs, or, with ``wire``, what ``wire`` turns into such a
    pair; an item ``wire`` raises for goes to ``failed`` (without ``failed``, the error propagates). The
    items are encoded first, then cut: this runs once per delivered event, and the items (a batch's worth)
    almost always fit in one batch, which is then made without counting sizes one by one.
    """
    data: list[bytes] = []
    ids: list[str] = []
    if wire is None:
        for message, mid in items:
            data.append(message)
            ids.append(mid)
    else:
        for item in items:
            try:
                message, mid = wire(item)
            except Exception as error:
                if failed is None:
                    raise
                failed(item, error)
                continue
            data.append(message)
            ids.append(mid)
    yield from cut(data, ids, limit)


def cut(data: list[bytes], ids: list[str], limit: int) -> Iterator[EncodedBatch]:
    """Messages (JSON bytes, their ids beside them) as batches whose joined messages stay under ``limit``,
    in order, as few as cutting in order allows (a message over ``limit`` alone is a batch of its own)."""
    if not data:
        return
    lengths = list(map(len, data))
    if sum(lengths) + len(lengths) - 1 <= limit:  # n messages take their bytes plus n - 1 commas
        yield EncodedBatch(data, ids, lengths=lengths)
        return
    first, size = 0, -1
    for i, n in enumerate(lengths):
        grown = size + n + 1
        if i > first and grown > limit:
            yield EncodedBatch(data[first:i], ids[first:i], lengths=lengths[first:i])
            first, grown = i, n
        size = grown
    yield EncodedBatch(data[first:], ids[first:], lengths=lengths[first:])


class Spool(Protocol):
    """A durable store for encoded batches (see SPOOL-HOOK.md): written before the first send attempt,
    removed once the endpoint acknowledged the batch, replayed by the next process after a crash.

    Every method is called from the pipeline's background threads (never a caller's) and must not raise
    for I/O trouble: it reports it (``on_error``) and degrades to not spooling.
    """

    def append(self, batch: EncodedBatch) -> object | None:
        """Persist ``batch`` (messages and ids) durably; return a handle for ``ack``, or None if not kept."""

    def ack(self, handle: object) -> None:
        """The batch of ``handle`` is finished for good (delivered, or refused by a non-retryable status)."""

    def write(self, batch: Sequence[tuple[str, bytes]]) -> object:
        """``append`` for ``(messageId, bytes)`` pairs, raising (SpoolFullError, SpoolError) instead of
        reporting: for a batch that has nowhere else to go (spilled from a full queue)."""

    def read(self, handle: object) -> EncodedBatch | None:
        """The batch of ``handle`` read back from disk (spilled there, not kept in memory); None if gone."""

    def recover(self) -> Iterable[EncodedBatch]:
        """Batches left by processes that are gone (each with its ``handle`` set and ``recovered`` True)."""

    def after_fork(self) -> None:
        """In a forked child: forget the parent's open files and locks."""

    def close(self) -> None:
        """Release files and locks; batches not acked stay for the next process."""


class DeliveryReport(Protocol):
    """Where a transport says what became of the messages it was given (called from any thread).

    Every message a transport is handed ends in ``sent`` or ``failed`` (or stays undelivered when the
    dispatcher stops it at shutdown, which the dispatcher counts itself).
    """

    def sent(self, count: int) -> None:
        """``count`` messages were accepted by the endpoint."""

    def retried(self, count: int) -> None:
        """``count`` messages are being sent again after a failed attempt."""

    def failed(self, count: int, reason: str) -> None:
        """``count`` messages are lost for good, because of ``reason``."""

    def recovered(self, count: int) -> None:
        """``count`` messages a spool kept from a process that is gone were delivered by this one."""

    def trouble(self, count: int, text: str) -> None:
        """Delivery of ``count`` messages is failing but still retried; ``text`` says why (rate-limited)."""

    def forgotten(self, count: int) -> None:
        """``count`` messages were removed before sending (``instrument.forget``): not delivered, not lost."""


class _NullReport:
    def sent(self, count: int) -> None:
        pass

    def retried(self, count: int) -> None:
        pass

    def failed(self, count: int, reason: str) -> None:
        pass

    def recovered(self, count: int) -> None:
        pass

    def trouble(self, count: int, text: str) -> None:
        pass

    def forgotten(self, count: int) -> None:
        pass


class Transport:
    """Base of transports, called by the dispatcher's one worker thread (never a caller's).

    ``send`` (or ``send_batch`` when ``accepts_bytes``) gets messages that each fit Segment's 32 KB
    limit; it handles them to their end and tells the bound ``DeliveryReport`` what became of each
    (``sent`` or ``failed``), like an httpx transport handles a request. It may block (bounded by its
    own timeouts, and by ``stop_by`` at shutdown) and may raise: the worker counts the batch as failed.
    """

    #: True when the transport takes EncodedBatch objects (``send_batch``) instead of dicts (``send``).
    accepts_bytes = False
    #: True when the transport takes (record, message) pairs (``send_records``): it needs the record's
    #: class beside the message built once (destinations: routing, personal properties).
    accepts_records = False
    #: True when ``spill`` can keep what does not fit in the dispatcher's queue on disk (a spool).
    spills = False
    #: Bytes the joined messages of one EncodedBatch may take (room left for the body's envelope).
    batch_limit = MAX_BATCH_BYTES - 1_000

    def __init__(self) -> None:
        self._report: DeliveryReport = _NullReport()

    def bind(self, report: DeliveryReport) -> None:
        """Attach the report the transport tells about deliveries (done by the client)."""
        self._report = report

    def start(self) -> None:
        """Start whatever the transport needs (threads), on the thread that records the first event.

        Called by the dispatcher when it starts its worker, so no thread is ever first started at
        interpreter exit (Python 3.12+ refuses that). May be called again; must be idempotent.
        """

    def send(self, messages: list[Message]) -> None:
        """Deliver ``messages`` and report each one ``sent`` or ``failed``."""
        raise NotImplementedError

    def send_records(self, pairs: list[tuple[Any, Message]]) -> None:
        """Deliver (record, message) pairs and report each one; only called when ``accepts_records``."""
        raise NotImplementedError

    def send_batch(self, batch: EncodedBatch) -> bool:
        """Deliver an encoded batch and report it; False if ``stop_by``'s deadline left it undelivered.

        Only called when ``accepts_bytes`` is True.
        """
        raise NotImplementedError

    def spill(self, batch: EncodedBatch) -> bool:
        """When the queue is full (``spills`` True): keep ``batch`` on disk only (a spool), to be
        delivered and reported later; False when it does not fit (the spool is full)."""
        return False

    def poll(self) -> bool:
        """Called by the worker when it is idle: deliver one batch of work of the transport's own
        (a spool's leftovers); True if there was one."""
        return False

    def stop_by(self, deadline: float) -> None:
        """From another thread (shutdown): give up waiting to retry past ``deadline`` (monotonic)."""

    def abort(self) -> None:
        """From another thread (shutdown gave up waiting): cut the request in flight, if any."""

    def flush(self, timeout: float) -> bool:
        """Wait until everything given to ``send`` is delivered or failed; False on timeout."""
        return True

    def close(self, timeout: float) -> int:
        """Flush within ``timeout`` and release resources; return how many messages were not delivered."""
        return 0 if self.flush(timeout) else -1

    def after_fork(self) -> None:
        """Called in a forked child: drop whatever belongs to the parent (threads, queues, sockets)."""
