"""A loopback TCP server's accept loop, shared by the tests' raw HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


def accept_in_background(sock: socket.socket, stop: threading.Event, serve: Callable[[socket.socket], None]) -> None:
    """Accept connections on ``sock`` on a daemon thread until ``stop`` is set or ``sock`` is closed;
    each is served by ``serve`` on a daemon thread of its own."""

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
