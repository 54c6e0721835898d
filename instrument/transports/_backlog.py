"""With a spool: the batches already on disk, and the thread of their own that sends them.

Without a spool the dispatcher's worker sends each batch itself. With one, every batch is written to
disk before its first attempt, and an outage must not stop that: the worker hands written batches to
this sender and goes on writing. What waits here is bounded in memory by bytes; what callers spill
when the queue is full waits as spool handles only, read back from disk when its turn comes.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator

from instrument.transports._base import EncodedBatch, Spool


class _Spilled:
    """A batch kept on disk only (spilled by a caller when the queue was full): its spool handle."""

    __slots__ = ("count", "handle")

    def __init__(self, handle: object, count: int) -> None:
        self.handle = handle
        self.count = count


class SpoolSender:
    """With a spool: batches already on disk, waiting for a sender thread of their own.

    Bounded in memory by bytes: the worker waits past ``max_bytes`` (the dispatcher's queue then
    fills). What callers spill when the queue is full waits here as spool handles only (no bytes in
    memory), bounded by the spool's ``max_bytes``; the sender reads those back, many per request.
    """

    def __init__(
        self,
        spool: Spool,
        max_bytes: int,
        limit: int,
        send: Callable[[EncodedBatch], bool],
        lost: Callable[[int, str], None],
    ) -> None:
        self.spool = spool
        self._max_bytes = max_bytes
        self._limit = limit
        self._send = send  # sends and reports one batch; False: stopped by the shutdown deadline
        self._lost = lost  # reports messages lost here (a batch that cannot be read back, a bug)
        self._unsent = 0  # messages of the entries in flight not reported yet
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[EncodedBatch | _Spilled] = collections.deque()
        self._bytes = 0  # of the in-memory batches queued
        self._in_flight = 0  # entries taken off the queue and being sent
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            thread = self._thread
            if (thread is not None and thread.is_alive()) or self._stopped:
                return
            thread = threading.Thread(target=self._run, name="instrument-spool-sender", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter exit: put() sends on the worker's thread instead
                return
            self._thread = thread

    def _running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopped

    def put(self, batch: EncodedBatch) -> bool:
        """Queue ``batch`` for the sender, waiting while the bytes are at the bound; no sender: send here."""
        with self._cond:
            inline = not self._running()
            if not inline:
                while self._queue and self._bytes + batch.size > self._max_bytes and not self._stopped:
                    self._cond.wait(0.1)
                self._queue.append(batch)
                self._bytes += batch.size
                self._cond.notify_all()
        return self._send(batch) if inline else True

    def put_spilled(self, handle: object, count: int) -> bool:
        """Queue a batch that is on disk only (never waits); False when no sender runs."""
        with self._cond:
            if not self._running():
                return False
            self._queue.append(_Spilled(handle, count))
            self._cond.notify_all()
            return True

    def _take(self) -> list[EncodedBatch | _Spilled] | None:
        """The next entries to send (one in-memory batch, or a run of spilled ones); None: stop."""
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if not self._queue:
                return None
            taken: list[EncodedBatch | _Spilled] = [self._queue.popleft()]
            if isinstance(taken[0], _Spilled):
                count = taken[0].count
                while self._queue and isinstance(self._queue[0], _Spilled) and count + self._queue[0].count <= 100:
                    count += self._queue[0].count
                    taken.append(self._queue.popleft())
            self._in_flight = len(taken)
            return taken

    def _batches(self, taken: list[EncodedBatch | _Spilled]) -> Iterator[EncodedBatch]:
        """The batches to send for ``taken``: spilled ones read back and joined up to the body's limit."""
        group: list[EncodedBatch] = []
        size = 0
        for entry in taken:
            if isinstance(entry, EncodedBatch):
                yield entry
                continue
            read = self.spool.read(entry.handle)
            if read is None:  # released (closed, forked) or unreadable: reported lost
                self._unsent -= entry.count
                self._lost(entry.count, "a batch spilled to the spool could not be read back")
                continue
            if group and size + read.size + 1 > self._limit:
                yield _joined(group)
                group, size = [], 0
            group.append(read)
            size += read.size + 1
        if group:
            yield _joined(group)

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            finished = True
            self._unsent = sum(len(e) if isinstance(e, EncodedBatch) else e.count for e in taken if not _recovered(e))
            try:
                for batch in self._batches(taken):
                    if not self._send(batch):
                        finished = False  # stop_by's deadline: what is left stays in the spool
                        break
                    self._unsent -= 0 if batch.recovered else len(batch)
            except Exception as error:  # a bug: reported with what it cost (kept in the spool), the sender goes on
                if self._unsent:
                    self._lost(self._unsent, f"the spool's sender failed ({type(error).__name__}); kept in the spool")
            with self._cond:
                self._in_flight = 0
                self._bytes -= sum(e.size for e in taken if isinstance(e, EncodedBatch))
                if not finished:
                    self._stopped = True
                self._cond.notify_all()
                if not finished:
                    return

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                thread = self._thread
                if remaining <= 0 or thread is None or not thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def stop(self) -> None:
        """No new batch is taken once the queue is empty (the sender still finishes what it has)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for the sender to end; True if it did."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))
            return not thread.is_alive()
        return True


def _recovered(entry: EncodedBatch | _Spilled) -> bool:
    """A batch a process that is gone left: its outcome is not this process's to count as lost."""
    return isinstance(entry, EncodedBatch) and entry.recovered


def _joined(batches: list[EncodedBatch]) -> EncodedBatch:
    """Spilled batches read back, as one batch whose handle lists theirs (each is acked)."""
    if len(batches) == 1:
        return batches[0]
    joined = EncodedBatch([m for b in batches for m in b.messages], [i for b in batches for i in b.ids])
    joined.handle = [b.handle for b in batches]
    return joined
