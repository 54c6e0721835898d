"""Delivery through segment-analytics-python: its Consumer thread batches, retries and posts.

The Segment client's front half (``Client.track``) is what loses events in ordinary deployments: it
JSON-encodes on the caller's thread, raises RuntimeError for a large message, drops UUIDs, stops its
thread at exit without flushing, and is dead after ``os.fork()``. Its back half, the ``Consumer``, is
sound: batching under the size limits, retries with backoff, ``Retry-After``, Basic auth. So this
transport feeds a Consumer directly with messages the worker has already encoded and size-checked,
and owns what the Client got wrong: bounded flush, close, and a fresh consumer after fork.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from segment.analytics import request as _segment_request
from segment.analytics.consumer import Consumer
from segment.analytics.request import DatetimeSerializer

from instrument._encoding import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from instrument._errors import ConfigurationError
from instrument._settings import Settings
from instrument.transports._base import DeliveryReport, Message, Transport

_log = logging.getLogger("instrument")

#: Room kept in a batch body for what the Segment client adds around the messages:
#: ``{"batch": [...], "sentAt": "...", "writeKey": "..."}``.
_ENVELOPE_BYTES = 1_000


class _CountingConsumer(Consumer):  # type: ignore[misc]
    """The Segment Consumer, telling the report what it sent, retried and lost.

    Its ``next`` is replaced: Segment's stops a batch only once it has gone *past* 475,000 bytes, so a
    batch of large messages can reach ~507 KB and be refused by Segment's 500 KB limit; it also drops a
    message it cannot measure without ``task_done`` (a flush then waits forever). Here a batch is cut
    *before* the message that would take it past the limit, and that message opens the next batch.
    ``deadline`` (set by close) makes a retry wait that would end past it stop the consumer instead,
    so shutdown is bounded by its timeout.
    """

    def __init__(
        self, q: queue.Queue[Message], write_key: str, report: DeliveryReport, *, batch_limit: int, **kw: Any
    ) -> None:
        super().__init__(q, write_key, on_error=self._on_error, **kw)
        self._report = report
        self._batch_len = 0
        self._batch_limit = batch_limit
        self._carry: tuple[Message, int] | None = None  # taken from the queue, opens the next batch
        self.deadline: float | None = None

    def _on_error(self, error: Exception, batch: list[Message]) -> None:
        self._report.failed(len(batch), str(error))

    def next(self) -> list[Message]:
        q = self.queue
        items: list[Message] = []
        total = 0
        if self._carry is not None:
            carried, total = self._carry
            self._carry = None
            items.append(carried)
        start = time.monotonic()
        while len(items) < self.upload_size:
            elapsed = time.monotonic() - start
            if elapsed >= self.upload_interval:
                break
            try:
                item = q.get(block=True, timeout=self.upload_interval - elapsed)
            except queue.Empty:
                break
            try:
                size = len(json.dumps(item, cls=DatetimeSerializer).encode())
            except Exception as error:  # not JSON: the worker never sends one, but never hang flush
                q.task_done()
                self._report.failed(1, f"message is not JSON-serialisable: {error!r}")
                continue
            if size > MAX_MESSAGE_BYTES:
                q.task_done()
                self._report.failed(1, f"message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
                continue
            size += 2  # the ", " between two messages of the batch
            if items and total + size > self._batch_limit:
                self._carry = (item, size)
                break
            items.append(item)
            total += size
        if items:
            self._batch_len = len(items)
        return items

    @property
    def carried(self) -> int:
        """1 if a message taken from the queue waits for the next batch."""
        return 0 if self._carry is None else 1

    def request(self, batch: list[Message]) -> Any:
        response = super().request(batch)
        self._report.sent(len(batch))
        return response

    def _wait(self, seconds: float) -> bool:
        deadline = self.deadline
        if deadline is not None and time.monotonic() + seconds > deadline:
            # Closing, and the wait would outlast the close: stop now, leaving the batch queued.
            self.running = False
            return False
        # The Consumer waits before every retry (backoff or Retry-After): count each as a retry.
        self._report.retried(self._batch_len)
        return bool(super()._wait(seconds))


class _ScrubKey(logging.Filter):
    """Keeps the write key out of the ``segment`` logger (its debug lines print request bodies).

    Holds the ``MAX_KEYS`` most recently used keys, so configuring again and again (tests, key
    rotation) does not grow it without bound; a process uses one or two keys at a time.
    """

    MAX_KEYS = 32

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, None] = {}  # insertion-ordered: the oldest first
        self._lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys scrubbed, oldest first."""
        return tuple(self._keys)

    def add(self, key: str) -> None:
        """Scrub ``key`` from now on (forgetting the least recently added key beyond ``MAX_KEYS``)."""
        with self._lock:
            self._keys.pop(key, None)
            self._keys[key] = None
            while len(self._keys) > self.MAX_KEYS:
                del self._keys[next(iter(self._keys))]

    def filter(self, record: logging.LogRecord) -> bool:
        keys = self.keys
        text = record.getMessage()
        if any(key in text for key in keys):
            for key in keys:
                text = text.replace(key, "***")
            record.msg, record.args = text, None
        return True


_scrubber = _ScrubKey()
logging.getLogger("segment").addFilter(_scrubber)


class SegmentTransport(Transport):
    """Sends to Segment (or any Segment-compatible ``host``) with the Segment client's Consumer.

    Its options come from ``settings`` (keyword arguments are ``Settings`` fields applied over it):
    ``host``, ``gzip``, ``timeout`` bounds each HTTP request, ``max_retries`` and ``retry_window``
    (seconds) bound how long a batch is retried (backoff, or ``Retry-After`` for 429) before it is
    dropped and reported, ``batch_size`` messages per request, uploads at least every
    ``flush_interval`` (0.5 s at most). Raises ConfigurationError for an empty write key or a bad
    setting. The key is never logged or shown in a repr.
    """

    def __init__(self, write_key: str, settings: Settings | None = None, /, **changes: Any) -> None:
        super().__init__()
        if not isinstance(write_key, str) or not write_key:
            raise ConfigurationError("SegmentTransport: write_key must be a non-empty str")
        settings = settings or Settings()
        if changes:
            settings = settings.replace(**changes)
        self.settings = settings
        host = settings.host
        upload_size = settings.batch_size
        # The Consumer's own queue: room for two batches at least, so a put-back batch always fits.
        max_queue_size = max(10_000, 2 * upload_size)
        self.__write_key = write_key
        _scrubber.add(write_key)
        self.host = host
        self._consumer_args: dict[str, Any] = {
            "host": host,
            "gzip": settings.gzip,
            "timeout": settings.timeout,
            "retries": settings.max_retries,
            "upload_interval": min(settings.flush_interval, 0.5),
            "upload_size": upload_size,
            "max_total_backoff_duration": settings.retry_window,
            "max_rate_limit_duration": settings.retry_window,
        }
        self._max_queue = max_queue_size
        # Cut batches so the whole request body stays under Segment's 500 KB.
        self._batch_limit = MAX_BATCH_BYTES - _ENVELOPE_BYTES - len(json.dumps(write_key))
        # Keep room for one batch: the Consumer puts a rate-limited batch back with put(block=False),
        # and a full queue would drop it.
        self._fill_limit = max_queue_size - upload_size
        self._lock = threading.Lock()
        self._queue: queue.Queue[Message] | None = None
        self._consumer: _CountingConsumer | None = None
        self._closed = False
        self._inline = False  # no consumer thread could be started: flush uploads on its own thread

    def __repr__(self) -> str:
        return f"SegmentTransport(host={self.host!r}, write_key='***')"

    def start(self) -> None:
        """Start the Segment Consumer thread now (on the thread recording the first event)."""
        self._ensure()

    def _ensure(self) -> queue.Queue[Message]:
        with self._lock:
            if self._queue is None or self._consumer is None:
                q: queue.Queue[Message] = queue.Queue(self._max_queue)
                consumer = _CountingConsumer(
                    q, self.__write_key, self._report, batch_limit=self._batch_limit, **self._consumer_args
                )
                consumer.name = "instrument-segment-consumer"
                try:
                    consumer.start()
                except RuntimeError:  # interpreter exit (Python 3.12+): flush uploads on its own thread
                    self._inline = True
                self._queue, self._consumer = q, consumer
            return self._queue

    def send(self, messages: list[Message]) -> None:
        """Queue messages for the Consumer, waiting (while it drains) when its queue is near full."""
        q = self._ensure()
        for message in messages:
            # Bounded by the consumer's progress; the dispatcher's own queue absorbs the wait and
            # drops (counted) at the caller when it fills, so business code never blocks.
            while q.qsize() >= self._fill_limit and not self._closed and not self._inline:
                time.sleep(0.005)
            try:
                q.put_nowait(message)
            except queue.Full:  # closed meanwhile: the rest is counted as lost by the close
                return

    def flush(self, timeout: float) -> bool:
        """Wait until the Consumer has sent (or given up on) everything queued; False on timeout."""
        q, consumer = self._queue, self._consumer
        if q is None or consumer is None:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        if self._inline:
            consumer.deadline = deadline
            consumer.running = True  # a previous flush may have stopped it at its deadline
            while q.unfinished_tasks and consumer.running and time.monotonic() < deadline:
                consumer.upload()
            return not q.unfinished_tasks
        with q.all_tasks_done:
            while q.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not consumer.is_alive():
                    return False
                q.all_tasks_done.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float) -> int:
        """Flush within ``timeout``, stop the Consumer, and return how many messages were not sent.

        Bounded: a retry wait that would end after ``timeout`` stops the Consumer instead, and a
        request in flight is not waited for past ``timeout`` (its thread is a daemon).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        consumer, q = self._consumer, self._queue
        if consumer is None or q is None:
            self._closed = True
            return 0
        consumer.deadline = deadline
        self.flush(timeout)
        self._closed = True
        consumer.pause()
        if consumer.is_alive() and consumer is not threading.current_thread():
            consumer.join(max(0.0, deadline - time.monotonic()) + 0.05)
        undelivered = q.unfinished_tasks if consumer.is_alive() else q.qsize() + consumer.carried
        self._consumer = None
        self._queue = None
        return int(undelivered)

    def after_fork(self) -> None:
        # The parent's consumer thread does not exist here and its queue's lock may be held: start
        # afresh, so the child sends its own events and never the parent's.
        self._lock = threading.Lock()
        self._queue = None
        self._consumer = None
        self._closed = False
        self._inline = False


def reset_http_session_after_fork() -> None:
    """Give the Segment client a new HTTP session in a forked child.

    Its module-level requests Session pools keep-alive sockets; in a child those are the parent's
    connections, and writing to them would interleave two processes' requests on one socket.
    """
    import requests

    _segment_request._session = requests.Session()
