"""Delivery from handlers that return and may be frozen or ended at once: AWS Lambda, Cloud Functions,
Cloud Run jobs, CLI entry points, Celery tasks with ``acks_late``, uWSGI without threads.

The delivery worker is a background thread: in a runtime that freezes the process as soon as the
handler returns (Lambda) it never gets to run, and in one that ends the process the queue is lost.
``deliver_on_return`` delivers what the handler recorded before it returns, within a bounded time.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from instrument import _client

logger = logging.getLogger("instrument")

_F = TypeVar("_F", bound=Callable[..., Any])

#: Default bound on the delivery before a handler returns, in seconds.
DEFAULT_TIMEOUT = 2.0
_said: set[str] = set()
_said_lock = threading.Lock()


def _say_once(key: str, text: str, *args: object) -> None:
    with _said_lock:
        if key in _said:
            return
        _said.add(key)
    logger.warning(text, *args)


def uwsgi_without_threads() -> bool:
    """True under uWSGI started without ``--enable-threads`` (or ``--threads``)."""
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is None:
        return False
    options = getattr(uwsgi, "opt", {}) or {}
    return not any(options.get(name) for name in ("enable-threads", b"enable-threads", "threads", b"threads"))


def _after_flush(delivered: bool, timeout: float) -> None:
    if delivered:
        return
    if uwsgi_without_threads():
        # Whether threads run there depends on the uWSGI and Python versions (with 2.0.31 on 3.11 they
        # do while a request waits); when the delivery did not happen, this is the likely reason.
        _say_once(
            "uwsgi",
            "analytics: nothing could be delivered in time under uWSGI without --enable-threads, where the "
            "delivery thread may not run; start uWSGI with --enable-threads",
        )
    client = _client.get_client()
    if client.spool is not None:
        _say_once(
            f"spooled {id(client)}",
            "analytics: not everything was delivered within %.1f s before the handler returned; it stays in "
            "the spool and is delivered by a later invocation",
            timeout,
        )
    else:
        _say_once(
            f"lost {id(client)}",
            "analytics: not everything was delivered within %.1f s before the handler returned; it is lost if "
            "the runtime freezes or ends the process now (configure a spool to keep it for the next invocation)",
            timeout,
        )


class deliver_on_return:
    """Deliver what was recorded before the handler returns, waiting at most ``timeout`` seconds.

    A decorator (``def`` and ``async def`` handlers) and a context manager (``with`` and ``async with``).
    The delivery runs when the handler returns or raises; the async forms wait for it off the event loop
    (``aflush``). What could not be sent in time is reported once per client: with a spool it stays there and a
    later invocation delivers it; without one it is lost if the process is frozen or ended. Under uWSGI
    without ``--enable-threads`` the wait lets the delivery thread run; if it still could not deliver,
    it says once that ``--enable-threads`` is the likely fix. Never raises.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def deliver(self) -> bool:
        """Deliver now (bounded by ``timeout``); True if everything recorded so far was delivered."""
        try:
            delivered = _client.flush(self.timeout)
        except Exception:  # delivery must never fail the handler
            logger.exception("analytics: delivery before return failed")
            return False
        _after_flush(delivered, self.timeout)
        return delivered

    async def adeliver(self) -> bool:
        """``deliver`` off the event loop."""
        try:
            delivered = await _client.aflush(self.timeout)
        except Exception:
            logger.exception("analytics: delivery before return failed")
            return False
        _after_flush(delivered, self.timeout)
        return delivered

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deliver()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.adeliver()

    def __call__(self, handler: _F) -> _F:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_handler(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await handler(*args, **kwargs)
                finally:
                    await self.adeliver()

            return cast("_F", async_handler)

        @functools.wraps(handler)
        def sync_handler(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            finally:
                self.deliver()

        return cast("_F", sync_handler)
