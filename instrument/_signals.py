"""Opt-in graceful SIGTERM handling for plain processes: flush, then do what the previous handler did.

SIGTERM is how containers, systemd and supervisors stop a process. Its default action kills the
process at once: atexit never runs, and whatever is still queued is lost. Some servers handle SIGTERM,
shut down gracefully and exit normally (gunicorn's sync workers, Celery), running atexit; others
(uvicorn, hypercorn) re-raise SIGTERM after their graceful shutdown, so atexit never runs: for them,
and for plain processes, ``install_sigterm_handler()`` delivers first, then never swallows the signal.
A ``multiprocessing.Pool`` terminates its workers with SIGTERM when its ``with`` block ends: each pool
worker gets the same handler when it starts (``_forks``), so what its tasks recorded is delivered.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from instrument import _client, _forks
from instrument._client import get_client
from instrument._errors import ConfigurationError

logger = logging.getLogger("instrument")


class _FlushThenPrevious:
    """The installed handler: deliver within ``timeout``, then behave as ``previous`` would.

    The delivery runs on a thread of its own and the handler returns at once. The handler interrupts
    the main thread wherever it was, perhaps inside the pipeline holding a lock the delivery needs
    (waking the worker, say): waiting for the delivery here would deadlock until the timeout and then
    lose everything. When the delivery is done (or its time is up) that thread raises the signal
    again at the main thread, and the handler then does what ``previous`` would have done.
    """

    def __init__(self, previous: Any, timeout: float | None) -> None:
        self.previous = previous
        self.timeout = timeout
        self._delivering = False
        self._delivered = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self._delivering and not self._delivered:
            self._delivering = True
            if self._deliver_then_resignal(signum):
                return
        # Our own signal once delivered, or a second SIGTERM while delivering: it goes straight on.
        self._delivering = self._delivered = False
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        # SIG_DFL (or a handler not set from Python, which cannot be called): die by the signal, so
        # the exit status says SIGTERM, as it would have without us.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _deliver_then_resignal(self, signum: int) -> bool:
        """Start delivering on a thread that raises ``signum`` again when done; False if it delivered here."""
        client = get_client()
        timeout = client.exit_timeout if self.timeout is None else self.timeout
        main = threading.main_thread().ident

        def deliver() -> None:
            try:
                _flush_quietly(client, timeout)
            finally:
                self._delivering, self._delivered = False, True
                if main is not None:  # at the main thread: it wakes from a blocking call to run the handler
                    signal.pthread_kill(main, signum)

        try:
            threading.Thread(target=deliver, name="instrument-sigterm", daemon=True).start()
        except RuntimeError:  # interpreter exit: no thread can start, deliver here
            _flush_quietly(client, timeout)
            self._delivering = False
            return False
        return True


def _flush_quietly(client: Any, timeout: float) -> None:
    try:
        if not client.flush(timeout):
            logger.warning(
                "analytics: SIGTERM: not everything was delivered within %.1f s: %s", timeout, client.ledger()
            )
    except Exception:  # a signal handler must never raise into whatever the main thread was doing
        logger.exception("analytics: SIGTERM: flush failed")


def install_sigterm_handler(timeout: float | None = None) -> None:
    """On SIGTERM, deliver what is queued (within ``timeout``, default the client's ``exit_timeout``).

    Then the signal goes on as before: a previous Python handler is called; with the default action
    the default is restored and the signal raised again, so the process dies by SIGTERM (exit status
    -15 / 143); an ignored SIGTERM stays ignored. Installing again only changes the timeout. Raises
    ConfigurationError off the main thread (Python only lets it set handlers) or for a bad timeout.
    """
    if threading.current_thread() is not threading.main_thread():
        raise ConfigurationError("install_sigterm_handler: signal handlers can only be installed from the main thread")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf")
    ):
        raise ConfigurationError(f"install_sigterm_handler: timeout must be a finite number >= 0, not {timeout!r}")
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, _FlushThenPrevious):
        current.timeout = timeout
        return
    signal.signal(signal.SIGTERM, _FlushThenPrevious(current, timeout))


def _flush_on_sigterm_in_pool_worker() -> None:
    # A pool's workers are terminated, not asked to finish, when the pool is: `with Pool() as p:` ends
    # with terminate(), a SIGTERM to each worker. The handler delivers first, then dies by the signal.
    if not _forks.is_pool_worker() or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if not isinstance(current, _FlushThenPrevious):
        signal.signal(signal.SIGTERM, _FlushThenPrevious(current, None))


_forks.at_child_start(_flush_on_sigterm_in_pool_worker)
# Last: children that import instrument afresh (spawn, forkserver) need the callbacks registered above.
_forks.watch_children(_client._at_exit)
