"""The one place with process-wide state: the current client, and its strictness for the hot path.

Like structlog's ``_config``: every module that needs "the client" or "is strict mode on" reads it
here, and only ``install`` changes it. ``current.strict`` is a copy of the installed client's own
``strict`` setting, kept as a plain attribute because every Track construction reads it; it is
set together with ``current.client``, under the lock, so the two never disagree for long.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class State:
    """The installed client (a ``Client``), its strictness, and the capture hook of the testing kit.

    ``interceptor``: while ``instrument.testing`` captures, ``configure()`` hands the client it built
    to this callable instead of installing it, so code under test cannot send anything.
    """

    __slots__ = ("client", "interceptor", "strict")

    def __init__(self) -> None:
        self.client: Any = None  # a Client; typed loosely because _client sits above this layer
        self.strict = False
        self.interceptor: Callable[[Any], None] | None = None


current = State()
lock = threading.RLock()


def install(client: Any) -> Any:
    """Make ``client`` the current one (its ``strict`` setting with it); return the previous client."""
    with lock:
        previous, current.client = current.client, client
        current.strict = bool(client.strict)
        return previous
