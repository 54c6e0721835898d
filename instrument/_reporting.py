"""The one channel AnalyticsErrors leave the library through, and its rate-limited log.

Every error a client reports (refused and lost events, delivery failures, spool trouble, context
providers that raise) goes through its ``Reporter``: to ``on_error`` when one is set, else to the
``instrument`` logger, rate-limited. A burst (a full queue, an endpoint down) must not become a burst
of log lines, and must not become invisible either: the first error of each kind is logged at once,
the following ones are counted, and the count is logged as a summary line once per ``interval`` (by a
timer, so it appears even if no further error comes) and when the client shuts down.

The handler is the user's code, and may itself record events. So a report never reaches it while this
library holds a lock on that thread (``Reporter.deferred``), and an error raised by the handler's own
analytics calls, while it runs, goes to the log instead of re-entering it.

Every ``RateLimitedLog`` registers itself here, so the client's exit, fork and reset hooks reach them
all with one call each (``close_all``, ``after_fork_all``, ``reset_all``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from instrument._errors import AnalyticsError

logger = logging.getLogger("instrument")

#: Seconds between two log lines about the same kind of error.
LOG_INTERVAL = 10.0


class _Kind:
    __slots__ = ("last", "latest", "suppressed", "timer")

    def __init__(self, last: float) -> None:
        self.last = last  # when the last line about this kind was logged
        self.suppressed = 0  # errors of this kind not logged since then
        self.latest = ""  # the text of the most recent suppressed one
        self.timer: threading.Timer | None = None


class RateLimitedLog:
    """Logs AnalyticsErrors: the first of each kind, then one summary per kind per ``interval`` seconds."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.RLock()  # re-entrant: a finalizer run under it may report (see Dispatcher)
        self._kinds: dict[str, _Kind] = {}
        self._closed = False
        _logs.add(self)

    def report(self, error: AnalyticsError) -> None:
        """Log ``error`` now, or count it for the next summary of its kind."""
        self.note(type(error).__name__, str(error))

    def note(self, kind: str, text: str) -> None:
        """Log ``text`` under ``kind`` now, or count it for the next summary of that kind."""
        now = time.monotonic()
        with self._lock:
            state = self._kinds.get(kind)
            if state is not None and now - state.last < self.interval:
                state.suppressed += 1
                state.latest = text
                if state.timer is None and not self._closed:
                    state.timer = self._start_timer(kind, state.last + self.interval - now)
                return
            more = self._take_summary(kind, state)
            self._kinds[kind] = _Kind(now)
        logger.warning("analytics: %s: %s%s", kind, text, f" ({more})" if more else "")

    def flush(self) -> None:
        """Log the summary of every kind with suppressed errors now (at shutdown, at exit)."""
        with self._lock:
            lines = [(kind, self._take_summary(kind, state)) for kind, state in self._kinds.items()]
        for kind, more in lines:
            if more:
                logger.warning("analytics: %s: %s", kind, more)

    def close(self) -> None:
        """Stop the timers and log what is still suppressed; later errors are logged without timers."""
        with self._lock:
            self._closed = True
        self.flush()

    def reset(self) -> None:
        """Log what is still suppressed, then forget every kind (and reopen): the next error is logged at once."""
        self.flush()
        with self._lock:
            self._kinds = {}
            self._closed = False

    def after_fork(self) -> None:
        """In a forked child: the parent's timers do not exist here, and its lock may be held."""
        self._lock = threading.RLock()
        self._kinds = {}

    def _start_timer(self, kind: str, delay: float) -> threading.Timer | None:
        timer = threading.Timer(max(0.0, delay), self._on_timer, (kind,))
        timer.daemon = True
        timer.name = "instrument-log-summary"
        try:
            timer.start()
        except RuntimeError:  # interpreter exit: the shutdown flush prints the summary instead
            return None
        return timer

    def _on_timer(self, kind: str) -> None:
        with self._lock:
            state = self._kinds.get(kind)
            more = self._take_summary(kind, state)
            if state is not None:
                state.last = time.monotonic()
        if more:
            logger.warning("analytics: %s: %s", kind, more)

    def _take_summary(self, kind: str, state: _Kind | None) -> str:
        """The summary text of ``kind`` (empty if nothing was suppressed), resetting its count. Under the lock."""
        if state is None:
            return ""
        timer, state.timer = state.timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        suppressed, state.suppressed = state.suppressed, 0
        if not suppressed:
            return ""
        return f"{suppressed} more {kind} since the last report; the latest: {state.latest}"


_logs: weakref.WeakSet[RateLimitedLog] = weakref.WeakSet()


def close_all() -> None:
    """At exit: every log says what it still suppresses."""
    for log in list(_logs):
        log.close()


def after_fork_all() -> None:
    """In a forked child: every log forgets the parent's timers and lock."""
    for log in list(_logs):
        log.after_fork()


def reset_all() -> None:
    """Back to the state at import (testing reset): every log says what it suppresses, then forgets."""
    for log in list(_logs):
        log.reset()


Handler = Callable[[AnalyticsError], None]


class Reporter:
    """A client's error channel: every AnalyticsError to ``handler`` (``on_error``) if set, else to
    the rate-limited log; delivery trouble (still being retried) to the log, rate-limited too."""

    def __init__(self, handler: Handler | None, interval: float = LOG_INTERVAL) -> None:
        self.handler = handler
        self.log = RateLimitedLog(interval)
        self._thread = threading.local()  # per thread: reports held back, and whether the handler runs

    def error(self, error: AnalyticsError) -> None:
        """Report ``error``; a handler that raises is logged, never raised into the pipeline."""
        here = self._thread
        held: list[AnalyticsError] | None = getattr(here, "held", None)
        if held is not None:
            held.append(error)
            return
        handler = self.handler
        if handler is None or getattr(here, "handling", False):
            # Raised by the handler's own analytics calls while it runs (an event it records that fails
            # too): logged, so that the handler never re-enters itself, recursing while an endpoint is down.
            self.log.report(error)
            return
        here.handling = True
        try:
            handler(error)
        except Exception:
            logger.exception("instrument: the on_error handler raised while reporting %s", type(error).__name__)
        finally:
            here.handling = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold back what this thread reports inside, and report it on the way out.

        Wrap a lock that a report could be made under: the handler may record an event, which needs
        that lock again (a sync client's one-at-a-time lock), and would wait for it forever.
        """
        here = self._thread
        if getattr(here, "held", None) is not None:  # nested: the outermost reports
            yield
            return
        here.held = []
        try:
            yield
        finally:
            held, here.held = here.held, None
            for error in held:
                self.error(error)

    def trouble(self, text: str) -> None:
        """Delivery is failing but not lost yet: logged at once, then once per interval."""
        self.log.note("delivery trouble", text)

    def close(self) -> None:
        """Say what is still suppressed (at shutdown: nothing stays unsaid)."""
        self.log.close()

    def after_fork(self) -> None:
        """In a forked child: forget the parent's timers and lock."""
        self.log.after_fork()
