"""Delivery to Segment's batch API (or any Segment-compatible ``host``) with a sender of our own.

segment-analytics-python is the wire reference: the body (``{"batch": [...], "sentAt", "writeKey"}``),
Basic auth with the write key, ``User-Agent``, ``X-Retry-Count``, which statuses are retried, the
backoff (at once, then 0.5 s doubling to 60 s, with jitter), ``Retry-After`` (read as it reads it, by
``_retry``), gzip. Its Consumer and ``post()`` are replaced: the Consumer takes messages one by one from a
locked queue and JSON-dumps each to measure it, ``post()`` dumps the batch again and has no
whole-request deadline (a slow-drip response held it forever). Here the dispatcher's worker hands over
batches whose messages are already JSON bytes; the sender thread joins them into a body and posts it
with a deadline per attempt (``_http.Poster``).

Bounds: the batches waiting here are bounded by count (the worker waits, so the recording side sees
a full queue) and by bytes (a batch past ``max_queue_bytes`` is refused and counted as queue_full).
A batch is retried for at most ``retry_window`` seconds after its first failure; a batch that starts
while the endpoint has been failing for longer than the window gets one attempt, so a backlog behind
a dead endpoint is reported lost promptly instead of one window per batch.
"""

from __future__ import annotations

import base64
import collections
import gzip as _gzip
import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from instrument._encoding import MAX_BATCH_BYTES, dumps, format_timestamp
from instrument._errors import ConfigurationError
from instrument._settings import Settings
from instrument._version import __version__
from instrument.transports._base import EncodedBatch, Message, Spool, Transport
from instrument.transports._http import AttemptFailed, Poster, Response, Target
from instrument.transports._retry import parse_retry_after

_log = logging.getLogger("instrument")

#: Room kept in a body for the envelope around the messages: ``{"batch":[`` ... ``],"sentAt":"..."``
#: plus ``,"writeKey":...}`` (whose length is added per key).
_ENVELOPE_BYTES = 64

#: A batch whose first attempt failed and that is still not delivered after this many seconds is
#: reported (rate-limited, at WARNING) with its reason, while it is still being retried.
TROUBLE_GRACE = 2.0

#: The bound of encoded bytes waiting for the sender when ``Settings.max_queue_bytes`` is None.
DEFAULT_MAX_QUEUE_BYTES = 32 << 20

#: Seconds between two looks for segments of dead processes (children included) in the spool.
SPOOL_RESCAN_INTERVAL = 1.0

#: Longest wait a Retry-After can impose (Segment's client caps it the same way).
_MAX_BACKOFF = 60.0


def _retryable(status: int) -> bool:
    """Segment's client's rule: 408, 410, 429, 460 and 5xx except 501, 505, 511 are retried."""
    if 400 <= status < 500:
        return status in (408, 410, 429, 460)
    return 500 <= status < 600 and status not in (501, 505, 511)


def _backoff(attempt: int) -> float:
    """Segment's client's delays: the first retry at once, then 0.5 s doubling (+10% jitter), capped."""
    if attempt <= 1:
        return 0.0
    base = 0.5 * (2 ** (attempt - 2))
    return float(min(base + random.uniform(0, 0.1 * base), _MAX_BACKOFF))


class _Secret:
    """The write key and every form in which an endpoint could echo it, for scrubbing texts."""

    def __init__(self, key: str) -> None:
        forms = {
            key,
            json.dumps(key)[1:-1],
            json.dumps(key, ensure_ascii=False)[1:-1],
            base64.b64encode(f"{key}:".encode()).decode(),
            base64.b64encode(key.encode()).decode(),
            urllib.parse.quote(key, safe=""),
            urllib.parse.quote_plus(key),
        }
        # The base64 of "key:" without its padding, as it appears inside a longer base64 text.
        forms.add(base64.b64encode(f"{key}:".encode()).decode().rstrip("="))
        self.forms = sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, "***")
        return text


class _ScrubKey(logging.Filter):
    """Keeps write keys (in every form an echo could take) out of the ``segment`` logger, for code that
    uses Segment's client too. The sender's own texts are scrubbed where they are built.

    Holds the ``MAX_KEYS`` most recently used keys, so configuring again and again (tests, key
    rotation) does not grow it without bound; a process uses one or two keys at a time.
    """

    MAX_KEYS = 32

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, _Secret] = {}  # insertion-ordered: the oldest first
        self._lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys scrubbed, oldest first."""
        with self._lock:
            return tuple(self._secrets)

    def add(self, key: str) -> _Secret:
        """Scrub ``key`` from now on (forgetting the least recently added key beyond ``MAX_KEYS``)."""
        with self._lock:
            secret = self._secrets.pop(key, None) or _Secret(key)
            self._secrets[key] = secret
            while len(self._secrets) > self.MAX_KEYS:
                del self._secrets[next(iter(self._secrets))]
            return secret

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets.values())
        text = record.getMessage()
        scrubbed = text
        for secret in secrets:
            scrubbed = secret.scrub(scrubbed)
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        return True


_scrubber = _ScrubKey()
logging.getLogger("segment").addFilter(_scrubber)


class SegmentTransport(Transport):
    """Sends to Segment (or any Segment-compatible ``host``) from a sender thread of its own.

    Its options come from ``settings`` (keyword arguments are ``Settings`` fields applied over it):
    ``host``, ``gzip``, ``timeout`` bounds each HTTP attempt as a whole (connect, send, full response),
    ``max_retries`` and ``retry_window`` (seconds) bound how long a batch is retried (backoff, or
    ``Retry-After`` for 429) before it is dropped and reported, ``max_queue_bytes`` (default 32 MiB)
    bounds the encoded bytes waiting for the sender. ``spool`` (optional) keeps batches on disk
    until acknowledged.
    Raises ConfigurationError for an empty write key or a host that is not an http(s) URL without
    credentials. The key is never logged, shown in a repr or put in an error text.
    """

    accepts_bytes = True

    def __init__(
        self, write_key: str, settings: Settings | None = None, /, *, spool: Spool | None = None, **changes: Any
    ) -> None:
        super().__init__()
        if not isinstance(write_key, str) or not write_key:
            raise ConfigurationError("SegmentTransport: write_key must be a non-empty str")
        settings = settings or Settings()
        if changes:
            settings = settings.replace(**changes)
        self.settings = settings
        host = settings.host
        try:
            self._target = Target.parse(host or "https://api.segment.io", "/v1/batch")
        except ConfigurationError as error:
            raise ConfigurationError(f"SegmentTransport: {error}") from None
        self.host = host
        self.__write_key = write_key
        self.__secret = _scrubber.add(write_key)
        self.__headers = {
            "Content-Type": "application/json",
            "User-Agent": f"instrument/{__version__}",  # not the official client's: another sender
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        }
        if settings.gzip:
            self.__headers["Content-Encoding"] = "gzip"
        self.__key_json = dumps({"k": write_key})[5:-1]  # the key as a JSON string, as the body holds it
        self._gzip = settings.gzip
        self._timeout = settings.timeout
        self._retries = settings.max_retries
        self._window = settings.retry_window
        # What waits for the sender: room for two batches at least (the worker waits past it), and
        # encoded bytes (a batch past them is refused: counted queue_full).
        self._max_messages = max(10_000, 2 * settings.batch_size)
        self._max_bytes = settings.max_queue_bytes or DEFAULT_MAX_QUEUE_BYTES
        self._spool = spool
        #: Bytes the messages of one batch may take (joined by commas) so the body stays under 500 KB.
        self.batch_limit = MAX_BATCH_BYTES - _ENVELOPE_BYTES - len(self.__key_json)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[EncodedBatch] = collections.deque()  # head: being sent
        self._queued_messages = 0
        self._queued_bytes = 0
        self._consumer: threading.Thread | None = None
        self._poster: Poster | None = None
        self._closed = False
        self._stop_at: float | None = None  # set by close: no retry wait may end past it
        self._inline = False  # no thread could be started: flush sends on its own thread
        self._episode: float | None = None  # when the endpoint started failing (None: healthy)
        self._recovered = False  # the spool's recover() was called (first at start, by the sender)
        self._rescan_at = 0.0
        self._recovering = False  # recover() runs: flush waits for what it queues

    def __repr__(self) -> str:
        return f"SegmentTransport(host={self.host!r}, write_key='***')"

    # -- the worker's side ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread now (on the thread recording the first event)."""
        with self._cond:
            self._start_locked()

    def _start_locked(self) -> None:
        thread = self._consumer
        if thread is not None and thread.is_alive():
            return
        if self._poster is None:
            self._poster = Poster(self._target, self._timeout)
        self._poster.start()
        thread = threading.Thread(target=self._run, name="instrument-segment-sender", daemon=True)
        # Set before the thread runs, so a flush right after start waits for the recovered batches.
        self._recovering = self._spool is not None and not self._recovered
        try:
            thread.start()
        except RuntimeError:  # interpreter exit (Python 3.12+): flush sends on its own thread
            self._inline = True
            self._recovering = False
            return
        self._consumer = thread

    def send(self, messages: list[Message]) -> None:
        """Encode decoded messages (sync mode, direct use) and queue them as batches."""
        batch: list[bytes] = []
        ids: list[str] = []
        size = 0
        for message in messages:
            data = dumps(message)
            if batch and size + len(data) + 1 > self.batch_limit:
                self.send_batch(EncodedBatch(batch, ids))
                batch, ids, size = [], [], 0
            size += len(data) + (1 if batch else 0)
            batch.append(data)
            ids.append(str(message.get("messageId", "")))
        if batch:
            self.send_batch(EncodedBatch(batch, ids))

    def send_batch(self, batch: EncodedBatch) -> bool:
        """Queue an encoded batch for the sender; False (nothing queued) past ``max_queue_bytes``.

        Waits (the dispatcher's worker, never a caller) while the sender holds ``max_queue_size``
        messages, so a slow endpoint shows as a full queue at the recording side. Not with a spool:
        events waiting in the dispatcher's queue are not on disk yet, so the worker keeps writing
        batches to the spool (bounded by ``max_queue_bytes`` in memory and the spool's own bound).
        """
        with self._cond:
            self._start_locked()
            while (
                self._queued_messages + len(batch) > self._max_messages
                and self._spool is None
                and self._queue
                and not self._closed
                and not self._inline
            ):
                self._cond.wait(0.1)
            if self._closed:
                return False
            if self._queue and self._queued_bytes + batch.size > self._max_bytes:
                return False
        if self._spool is not None:
            batch.handle = self._spooled(self._spool.append, batch)  # before the first attempt; I/O outside the lock
        with self._cond:
            self._enqueue_locked(batch)
        return True

    def _enqueue_locked(self, batch: EncodedBatch) -> None:
        self._queue.append(batch)
        self._queued_messages += len(batch)
        self._queued_bytes += batch.size
        self._cond.notify_all()

    # -- the sender ---------------------------------------------------------------------------

    def _spooled(self, call: Callable[[Any], Any], arg: Any) -> Any:
        """Call the spool; its failure is reported and means "not spooled", never a lost batch."""
        try:
            return call(arg)
        except Exception as error:
            _log.warning("analytics: the spool failed (%s); delivery goes on without it", type(error).__name__)
            return None

    def _recover(self) -> None:
        """Queue the batches a spool kept from processes that are gone (on the sender thread), at start and
        again every ``SPOOL_RESCAN_INTERVAL`` (a child that exited meanwhile, a process killed)."""
        spool = self._spool
        busy = self._queued_bytes >= self._max_bytes // 2  # adopted batches wait in memory: keep them bounded
        if spool is None or (self._recovered and (busy or time.monotonic() < self._rescan_at)):
            return
        self._recovered = True
        self._rescan_at = time.monotonic() + SPOOL_RESCAN_INTERVAL
        batches = self._spooled(lambda _: list(spool.recover()), None) or []
        with self._cond:
            for batch in batches:
                batch.recovered = True
                self._enqueue_locked(batch)
            self._recovering = False
            self._cond.notify_all()

    def _run(self) -> None:
        cond = self._cond
        while True:
            self._recover()
            with cond:
                if not self._queue:
                    if self._closed:
                        return
                    cond.wait(SPOOL_RESCAN_INTERVAL if self._spool is not None else None)
                    continue
                if self._stop_at is not None and time.monotonic() >= self._stop_at:
                    return
                batch = self._queue[0]
            finished = self._deliver(batch)
            with cond:
                if not finished:  # close's deadline: leave it (and what follows) undelivered
                    return
                self._queue.popleft()
                self._queued_messages -= len(batch)
                self._queued_bytes -= batch.size
                cond.notify_all()

    def _wait(self, seconds: float) -> bool:
        """Sleep before a retry; False (do not retry) when close's deadline comes first."""
        end = time.monotonic() + seconds
        with self._cond:
            while True:
                stop_at = self._stop_at
                if stop_at is not None and end > stop_at:
                    return False
                left = end - time.monotonic()
                if left <= 0:
                    return True
                self._cond.wait(left)

    def _deliver(self, batch: EncodedBatch) -> bool:
        """Send one batch with retries; True when it is finished (sent or given up), False if stopped."""
        poster = self._poster
        if poster is None:  # pragma: no cover - start() made it
            poster = self._poster = Poster(self._target, self._timeout)
        joined = batch.joined
        count = len(batch)
        started = time.monotonic()
        first_failure = self._episode  # a batch starting in a long outage does not get a window of its own
        retry_count = 0
        backoffs = 0
        rate_limited_since: float | None = None
        reported = False
        while True:
            body = b'{"batch":[' + joined + b'],"sentAt":"' + format_timestamp(time.time()).encode()
            body += b'","writeKey":' + self.__key_json + b"}"
            headers = self.__headers
            if retry_count:
                headers = {**headers, "X-Retry-Count": str(retry_count)}
            if self._gzip:
                body = _gzip.compress(body, compresslevel=6)
            _log.debug("making request: %d message(s), %d bytes, retry %d", count, len(body), retry_count)
            try:
                response: Response | None = poster.post(body, headers)
            except AttemptFailed as error:
                response, reason = None, error.reason
            if response is not None:
                status = response.status
                if 200 <= status < 300:
                    self._episode = None
                    self._finished(batch, sent=True)
                    return True
                reason = self._describe(response)
                if not _retryable(status):
                    self._episode = None  # the endpoint answered: it is up, this batch is refused
                    self._finished(batch, reason=reason, drop_from_spool=True)
                    return True
                delay = parse_retry_after(response.headers.get("retry-after"))
                if delay:
                    # Rate limited: wait as asked and send again as a new upload (X-Retry-Count 0),
                    # bounded by the retry window counted from the first rate-limited answer.
                    now = time.monotonic()
                    rate_limited_since = rate_limited_since or now
                    if now + delay - rate_limited_since > self._window:
                        self._finished(batch, reason=f"{reason}; rate limited past the retry window")
                        return True
                    self._report.retried(count)
                    if not self._wait(delay):
                        return False
                    retry_count = 0
                    continue
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
            if self._episode is None:
                self._episode = first_failure
            if not reported and now - started >= TROUBLE_GRACE:
                reported = True
                self._trouble(count, now - started, reason)
            backoffs += 1
            delay = _backoff(backoffs)
            if backoffs > self._retries or now + delay - first_failure > self._window:
                self._finished(batch, reason=reason)
                return True
            self._report.retried(count)
            if not self._wait(delay):
                return False
            retry_count += 1

    def _finished(
        self, batch: EncodedBatch, *, sent: bool = False, reason: str = "", drop_from_spool: bool = False
    ) -> None:
        spool = self._spool
        if spool is not None and batch.handle is not None and (sent or drop_from_spool):
            self._spooled(spool.ack, batch.handle)
        report: Any = self._report
        if sent:
            if batch.recovered:
                recovered: Callable[[int], None] | None = getattr(report, "recovered", None)
                if recovered is not None:
                    recovered(len(batch))
            else:
                report.sent(len(batch))
        elif not batch.recovered:
            report.failed(len(batch), self.__secret.scrub(reason))

    def _trouble(self, count: int, seconds: float, reason: str) -> None:
        trouble: Callable[[int, str], None] | None = getattr(self._report, "trouble", None)
        text = self.__secret.scrub(
            f"{count} message(s) not delivered after {seconds:.1f} s, still retrying: {reason} ({self._target})"
        )
        if trouble is not None:
            trouble(count, text)
        else:
            _log.warning("analytics: delivery trouble: %s", text)

    def _describe(self, response: Response) -> str:
        """A refused request in words: the status, its phrase and a JSON ``code``; never the body text
        (an endpoint that quotes the request would put the key or personal data into logs)."""
        text = f"HTTP {response.status}"
        phrase = "".join(c for c in response.reason[:60] if c.isprintable())
        if phrase:
            text += f" {phrase}"
        try:
            code = json.loads(response.body).get("code")
        except Exception:
            code = None
        if isinstance(code, str) and 0 < len(code) <= 40 and code.replace("_", "").replace("-", "").isalnum():
            text += f" ({code})"
        return self.__secret.scrub(text)

    # -- flush, close, fork -----------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait until the sender has sent (or given up on) everything queued; False on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._inline:
            return self._drain_inline(deadline)
        with self._cond:
            while self._queue or self._recovering:
                remaining = deadline - time.monotonic()
                thread = self._consumer
                if remaining <= 0 or thread is None or not thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def _drain_inline(self, deadline: float) -> bool:
        saved = self._stop_at
        self._stop_at = deadline if saved is None else min(saved, deadline)
        try:
            while self._queue and time.monotonic() < deadline:
                batch = self._queue[0]
                if not self._deliver(batch):
                    break
                with self._cond:
                    self._queue.popleft()
                    self._queued_messages -= len(batch)
                    self._queued_bytes -= batch.size
        finally:
            self._stop_at = saved
        return not self._queue

    def close(self, timeout: float) -> int:
        """Flush within ``timeout``, stop the sender, and return how many messages were not sent.

        Bounded: a retry wait that would end after ``timeout`` stops the sender instead, and the
        request in flight is cut at ``timeout``.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._stop_at = deadline
            self._cond.notify_all()
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._consumer
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive() and self._poster is not None:
                self._poster.abort()
                thread.join(0.2)
        with self._cond:
            undelivered = self._queued_messages
        if self._poster is not None and not (thread is not None and thread.is_alive()):
            self._poster.reset()
        if self._spool is not None:
            self._spooled(lambda _: self._spool.close() if self._spool is not None else None, None)
        return undelivered

    def after_fork(self) -> None:
        # The parent's sender thread does not exist here, its lock may be held and its socket is the
        # parent's: start afresh, so the child sends its own events (never the parent's) on its own
        # connection.
        if self._spool is not None:
            self._spooled(lambda _: self._spool.after_fork() if self._spool is not None else None, None)
        self._reset_runtime()


def reset_http_session_after_fork() -> None:
    """Give the Segment client a new HTTP session in a forked child (for code that uses its client).

    Its module-level requests Session pools keep-alive sockets; in a child those are the parent's
    connections, and writing to them would interleave two processes' requests on one socket.
    """
    try:  # an optional dependency now: only for code that uses the official client next to instrument
        import requests
        from segment.analytics import request as _segment_request
    except ImportError:
        return
    _segment_request._session = requests.Session()
