"""Delivery to Segment's batch API (or any Segment-compatible ``host``) with a sender of our own.

segment-analytics-python is the wire reference: the body (``{"batch": [...], "sentAt", "writeKey"}``),
Basic auth with the write key, ``User-Agent``, ``X-Retry-Count``, which statuses are retried, the
backoff (at once, then 0.5 s doubling to 60 s, with jitter), ``Retry-After``, gzip. Its Consumer and
``post()`` are replaced: the Consumer takes messages one by one from a locked queue and JSON-dumps
each to measure it, ``post()`` dumps the batch again and has no whole-request deadline (a slow-drip
response held it forever). Here the dispatcher's worker hands over batches whose messages are already
JSON bytes and the transport posts each one, with retries, on the worker's thread, with a deadline per
attempt (``_http.Poster``): one thread encodes and sends, so nothing waits between two stages and the
bytes in memory are the batch in hand.

A batch is retried for at most ``retry_window`` seconds after its first failure; a batch that starts
while the endpoint has been failing for longer than the window gets one attempt, so a backlog behind
a dead endpoint is reported lost promptly instead of one window per batch.
"""

from __future__ import annotations

import base64
import gzip as _gzip
import json
import logging
import random
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from instrument._encoding import MAX_BATCH_BYTES, dumps, timestamp_bytes
from instrument._errors import ConfigurationError
from instrument._settings import Settings
from instrument._version import __version__
from instrument.transports._backlog import SpoolSender
from instrument.transports._base import DEFAULT_MAX_QUEUE_BYTES, EncodedBatch, Message, Spool, Transport, batches_of
from instrument.transports._http import AttemptFailed, Poster, Response, Target
from instrument.transports._retry import parse_retry_after

_log = logging.getLogger("instrument")

#: Room kept in a body for the envelope around the messages: ``{"batch":[`` ... ``],"sentAt":"..."``
#: plus ``,"writeKey":...}`` (whose length is added per key).
_ENVELOPE_BYTES = 64

#: A batch whose first attempt failed and that is still not delivered after this many seconds is
#: reported (rate-limited, at WARNING) with its reason, while it is still being retried.
TROUBLE_GRACE = 2.0

#: Seconds between two scans of the spool for batches that processes which are gone left behind.
_RESCAN_INTERVAL = 1.5

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
    """Sends encoded batches to Segment (or any Segment-compatible ``host``), on the thread that calls it.

    Like an httpx transport, ``send_batch`` handles one batch to its end (sent, or given up on and
    reported) and returns; the dispatcher's worker is the only thread that calls it, so there is no
    queue, lock or thread here besides the poster's deadline watchdog.

    Its options come from ``settings`` (keyword arguments are ``Settings`` fields applied over it):
    ``host``, ``gzip``, ``timeout`` bounds each HTTP attempt as a whole (connect, send, full response),
    ``max_retries`` and ``retry_window`` (seconds) bound how long a batch is retried (backoff, or
    ``Retry-After`` for 429) before it is dropped and reported. ``spool`` (optional) keeps batches on
    disk until acknowledged; batches that processes which are gone left in it are delivered too.
    Raises ConfigurationError for an empty write key or a host that is not an http(s) URL without
    credentials. The key is never logged, shown in a repr or put in an error text.
    """

    accepts_bytes = True
    #: Where batches go when ``host`` is None, and the API path appended to the host.
    default_host = "https://api.segment.io"
    api_path = "/v1/batch"

    def __init__(
        self, write_key: str, settings: Settings | None = None, /, *, spool: Spool | None = None, **changes: Any
    ) -> None:
        super().__init__()
        if not isinstance(write_key, str) or not write_key:
            raise ConfigurationError(f"{type(self).__name__}: write_key must be a non-empty str")
        settings = settings or Settings()
        if changes:
            settings = settings.replace(**changes)
        self.settings = settings
        host = settings.host
        try:
            self._target = Target.parse(host or self.default_host, self.api_path)
        except ConfigurationError as error:
            raise ConfigurationError(f"{type(self).__name__}: {error}") from None
        self.host = host
        self.__write_key = write_key
        self.__secret = _scrubber.add(write_key)
        self.__headers = {
            "Content-Type": "application/json",
            "User-Agent": f"instrument/{__version__}",  # not the official client's: another sender
            **self._auth_headers(write_key),
        }
        if settings.gzip:
            self.__headers["Content-Encoding"] = "gzip"
        self._key_json = dumps({"k": write_key})[5:-1]  # the key as a JSON string, as the body holds it
        self._gzip = settings.gzip
        self._timeout = settings.timeout
        self._retries = settings.max_retries
        self._window = settings.retry_window
        self.spool = spool
        #: Set by the destinations' fan-out once ``forget()`` was called: the messages of a batch to
        #: leave out (forgotten users), checked just before each send, spooled and recovered ones too.
        self.forget_filter: Callable[[bytes], bool] | None = None
        self._max_bytes = settings.max_queue_bytes or DEFAULT_MAX_QUEUE_BYTES
        #: Bytes the messages of one batch may take (joined by commas) so the body stays under 500 KB.
        self.batch_limit = MAX_BATCH_BYTES - _ENVELOPE_BYTES - len(self._key_json)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._poster = Poster(self._target, self._timeout)
        self._stop_at: float | None = None  # set by stop_by: no retry wait may end past it
        self._stopping = threading.Event()  # wakes a retry wait when stop_by moves the deadline
        self._episode: float | None = None  # when the endpoint started failing (None: healthy)
        self._leftovers: Iterator[EncodedBatch] | None = None  # batches of gone processes being delivered
        self._scanned_at = -_RESCAN_INTERVAL
        # With a spool, batches are written to disk at once and sent by a thread of their own, so an
        # outage never leaves accepted events off disk while the worker waits for the endpoint.
        self.spills = self.spool is not None
        self._backlog = (
            None
            if self.spool is None
            else SpoolSender(self.spool, self._max_bytes, self.batch_limit, self._send_now, self._lost)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, write_key='***')"

    def _auth_headers(self, write_key: str) -> dict[str, str]:
        """The headers that carry the key (Segment: Basic auth with the write key as the user)."""
        return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}

    # -- the worker's side ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the poster's deadline watchdog and the spool's sender (on the thread recording the
        first event)."""
        self._poster.start()
        if self._backlog is not None:
            self._backlog.start()

    def flush(self, timeout: float) -> bool:
        """Wait until the spool's sender has finished what it was handed; False on timeout."""
        return self._backlog is None or self._backlog.flush(timeout)

    def send(self, messages: list[Message]) -> None:
        """Encode decoded messages (sync mode, direct use) and deliver them in batches."""
        for batch in batches_of(((dumps(m), str(m.get("messageId", ""))) for m in messages), self.batch_limit):
            self.send_batch(batch)

    def send_batch(self, batch: EncodedBatch) -> bool:
        """Deliver one batch (with a spool: write it there first and hand it to the spool's sender).

        True when it is finished (sent, or given up on and reported through ``failed``) or handed to
        the spool's sender; False when ``stop_by``'s deadline came first.
        """
        backlog = self._backlog
        if backlog is None:
            return self._send_now(batch)
        if batch.handle is None and not batch.recovered:
            batch.handle = self._spooled(backlog.spool.append, batch)  # before the first attempt
        return backlog.put(batch)  # one thread posts on the connection: the spool's sender

    def _send_now(self, batch: EncodedBatch) -> bool:
        """Send one batch with retries, report it, ack it in the spool; False if stopped first."""
        if self.forget_filter is not None:
            batch = self._without_forgotten(batch, self.forget_filter)
            if not len(batch):
                self._ack(batch)
                return True
        outcome = self._deliver(batch)
        if outcome is None:
            return False
        sent, reason, final = outcome
        if sent or final:
            self._ack(batch)
        report = self._report
        if batch.recovered:
            if sent:
                report.recovered(len(batch))
        elif sent:
            report.sent(len(batch))
        else:
            report.failed(len(batch), reason)
        return True

    def _ack(self, batch: EncodedBatch) -> None:
        spool = self.spool
        if spool is not None and batch.handle is not None:
            for handle in batch.handle if isinstance(batch.handle, list) else [batch.handle]:
                self._spooled(spool.ack, handle)

    def _without_forgotten(self, batch: EncodedBatch, forgotten: Callable[[bytes], bool]) -> EncodedBatch:
        """``batch`` without the messages ``forgotten`` selects (counted as forgotten, not lost)."""
        messages = batch.messages
        keep = [i for i, message in enumerate(messages) if not forgotten(message)]
        if len(keep) == len(messages):
            return batch
        kept = EncodedBatch([messages[i] for i in keep], [batch.ids[i] for i in keep], recovered=batch.recovered)
        kept.handle = batch.handle  # acked as the whole: the forgotten messages leave the spool with it
        if not batch.recovered:  # a recovered batch was never counted here
            self._report.forgotten(len(messages) - len(keep))
        return kept

    def spill(self, batch: EncodedBatch) -> bool:
        """With a spool, the dispatcher's queue full: write ``batch`` there and leave it to the spool's
        sender, which reads it back; False if the spool is full or unusable."""
        backlog = self._backlog
        if backlog is None:
            return False
        try:  # not append: a spool too full to take it means refused, not "sent without being kept"
            handle = backlog.spool.write(list(zip(batch.ids, batch.messages, strict=True)))
        except Exception:
            return False
        if not backlog.put_spilled(handle, len(batch)):
            self._spooled(backlog.spool.ack, handle)  # no sender (interpreter exit): not kept
            return False
        return True

    def poll(self) -> bool:
        """Deliver one batch a process that is gone left in the spool; True if there was one.

        The spool is re-scanned for such batches (dead owners, exited children) every couple of seconds.
        """
        spool = self.spool
        if spool is None:
            return False
        if self._leftovers is None:
            now = time.monotonic()
            if now - self._scanned_at < _RESCAN_INTERVAL:
                return False
            self._scanned_at = now
            self._leftovers = self._spooled(_leftovers_of, spool) or iter(())
        batch = self._spooled(next, self._leftovers)  # reads the spool: never raises
        if batch is None:
            self._leftovers = None
            return False
        self.send_batch(batch)
        return True

    def _lost(self, count: int, reason: str) -> None:
        self._report.failed(count, reason)

    def _spooled(self, call: Callable[..., Any], arg: Any) -> Any:
        """Call the spool; its failure is reported and means "not spooled", never a lost batch."""
        try:
            return call(arg)
        except StopIteration:
            return None
        except Exception as error:
            _log.warning("analytics: the spool failed (%s); delivery goes on without it", type(error).__name__)
            return None

    # -- one batch, with retries --------------------------------------------------------------------

    def _body(self, batch: EncodedBatch) -> bytes:
        body = self._envelope(batch)
        return _gzip.compress(body, compresslevel=6) if self._gzip else body

    def _envelope(self, batch: EncodedBatch) -> bytes:
        """The request body around the batch's messages (another wire overrides this)."""
        sent_at = timestamp_bytes(time.time())
        # One join: one copy of the batch's bytes (concatenation would copy them twice).
        return b"".join((b'{"batch":[', batch.joined, b'],"sentAt":"', sent_at, b'","writeKey":', self._key_json, b"}"))

    def _deliver(self, batch: EncodedBatch) -> tuple[bool, str, bool] | None:
        """Send one batch with retries: (sent, reason, final); None when stopped by ``stop_by``.

        ``final`` means the endpoint refused the batch for good (not retryable): the spool drops it.
        """
        count = len(batch)
        retry = _Retry(self._episode, self._retries, self._window)
        while True:
            headers = self.__headers
            if retry.count:
                headers = {**headers, "X-Retry-Count": str(retry.count)}
            _log.debug("making request: %d message(s), retry %d", count, retry.count)
            try:
                response: Response | None = self._poster.post(self._body(batch), headers)
            except AttemptFailed as error:
                response, reason = None, error.reason
            wait_as_asked = 0.0
            if response is not None:
                if 200 <= response.status < 300:
                    self._episode = None
                    return True, "", False
                reason = self._describe(response)
                if not _retryable(response.status):
                    self._episode = None  # the endpoint answered: it is up, this batch is refused
                    return False, reason, True
                wait_as_asked = parse_retry_after(response.headers.get("retry-after")) or 0.0
            now = time.monotonic()
            if self._episode is None and not wait_as_asked:  # rate limited is not failing
                self._episode = now
            if retry.trouble_due(now):
                self._trouble(count, now - retry.started, reason)
            delay, reason = retry.next(now, wait_as_asked, reason)
            if delay is None:
                return False, self.__secret.scrub(reason), False
            self._report.retried(count)
            if not self._wait(delay):
                return None

    def _wait(self, seconds: float) -> bool:
        """Sleep before a retry; False (do not retry) when ``stop_by``'s deadline comes first."""
        end = time.monotonic() + seconds
        while True:
            stop_at = self._stop_at
            if stop_at is not None and end > stop_at:
                return False
            left = end - time.monotonic()
            if left <= 0:
                return True
            self._stopping.wait(left)
            self._stopping.clear()

    def _trouble(self, count: int, seconds: float, reason: str) -> None:
        text = f"{count} message(s) not delivered after {seconds:.1f} s, still retrying: {reason} ({self._target})"
        self._report.trouble(count, self.__secret.scrub(text))

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

    # -- stop, close, fork -------------------------------------------------------------------------

    def stop_by(self, deadline: float) -> None:
        """From another thread: no retry wait may end past ``deadline`` (monotonic); the batch in hand
        is then left undelivered (``send_batch`` returns False)."""
        self._stop_at = deadline
        self._stopping.set()
        if self._backlog is not None:
            self._backlog.stop()

    def abort(self) -> None:
        """From another thread: cut the request in flight (close gave up waiting for it)."""
        self._poster.abort()

    def close(self, timeout: float) -> int:
        """Stop the spool's sender, release the connection, its deadline thread and the spool (batches
        not acked stay in it)."""
        if self._backlog is not None and not self._backlog.join(timeout):
            self._poster.abort()
            self._backlog.join(0.2)
        self._poster.close()
        spool = self.spool
        if spool is not None:
            self._spooled(lambda s: s.close(), spool)
        return 0

    def after_fork(self) -> None:
        # The parent's socket and watchdog are the parent's: start afresh, so the child sends its own
        # events (never the parent's) on its own connection.
        if self.spool is not None:
            self._spooled(lambda s: s.after_fork(), self.spool)
        self._reset_runtime()


class _Retry:
    """The retry state of one batch: how many attempts, since when it fails, whether trouble was said.

    A batch is retried for at most ``window`` seconds after its first failure (or, rate limited, after
    its first 429), and at most ``retries`` backoffs; a batch that starts while the endpoint has been
    failing for longer than the window (``episode``) gets one attempt, so a backlog behind a dead
    endpoint is reported lost promptly instead of one window per batch.
    """

    __slots__ = ("backoffs", "count", "first_failure", "rate_limited_since", "reported", "retries", "started", "window")

    def __init__(self, episode: float | None, retries: int, window: float) -> None:
        self.started = time.monotonic()
        self.first_failure = episode
        self.retries = retries
        self.window = window
        self.count = 0  # X-Retry-Count of the next attempt
        self.backoffs = 0
        self.rate_limited_since: float | None = None
        self.reported = False

    def next(self, now: float, wait_as_asked: float, reason: str) -> tuple[float | None, str]:
        """The delay before the next attempt (None: give up) and the reason to report."""
        if wait_as_asked:
            # Rate limited: wait as asked and send again as a new upload (X-Retry-Count 0).
            since = self.rate_limited_since = self.rate_limited_since or now
            if now + wait_as_asked - since > self.window:
                return None, f"{reason}; rate limited past the retry window"
            self.count = 0
            return wait_as_asked, reason
        if self.first_failure is None:
            self.first_failure = now
        self.backoffs += 1
        delay = _backoff(self.backoffs)
        if self.backoffs > self.retries or now + delay - self.first_failure > self.window:
            return None, reason
        self.count += 1
        return delay, reason

    def trouble_due(self, now: float) -> bool:
        """True once per batch, when it is still not delivered ``TROUBLE_GRACE`` seconds after it started."""
        if self.reported or now - self.started < TROUBLE_GRACE:
            return False
        self.reported = True
        return True


def _leftovers_of(spool: Spool) -> Iterator[EncodedBatch]:
    """The batches processes that are gone left in ``spool`` (``recover`` takes over their segments)."""
    for batch in spool.recover():
        batch.recovered = True  # never recorded by this process: counted in Stats.recovered
        yield batch


def reset_http_session_after_fork() -> None:
    """Give the Segment client a new HTTP session in a forked child (for code that uses its client).

    Its module-level requests Session pools keep-alive sockets; in a child those are the parent's
    connections, and writing to them would interleave two processes' requests on one socket.
    """
    # Only where the app imported the official client itself (it is no dependency of instrument):
    # importing it here would load it and requests into every forked child.
    segment_request = sys.modules.get("segment.analytics.request")
    if segment_request is None:
        return
    import requests

    vars(segment_request)["_session"] = requests.Session()  # typed or not, depending on its version
