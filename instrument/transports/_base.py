"""The transport contract: what the dispatcher's worker hands encoded messages to."""

from __future__ import annotations

from typing import Any, Protocol

Message = dict[str, Any]


class DeliveryReport(Protocol):
    """Where a transport says what became of the messages it was given (called from any thread)."""

    def sent(self, count: int) -> None:
        """``count`` messages were accepted by the endpoint."""

    def retried(self, count: int) -> None:
        """``count`` messages are being sent again after a failed attempt."""

    def failed(self, count: int, reason: str) -> None:
        """``count`` messages are lost for good, because of ``reason``."""

    def acknowledged(self, messages: list[Message]) -> None:
        """The endpoint acknowledged ``messages`` (or refused them for good): a spool may forget them."""


class _NullReport:
    def sent(self, count: int) -> None:
        pass

    def retried(self, count: int) -> None:
        pass

    def failed(self, count: int, reason: str) -> None:
        pass

    def acknowledged(self, messages: list[Message]) -> None:
        pass


class Transport:
    """Base of transports. ``send`` is called from the background worker only, with a batch of
    encoded messages that each fit Segment's 32 KB limit. It may block (bounded) and may raise: the
    worker counts the batch as failed.
    """

    #: True when the transport tells ``report.acknowledged`` what the endpoint accepted; otherwise a
    #: ``send`` that returns is taken as delivered.
    acknowledges = False

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
        """Deliver (or queue for delivery) ``messages``."""
        raise NotImplementedError

    def flush(self, timeout: float) -> bool:
        """Wait until everything given to ``send`` is delivered or failed; False on timeout."""
        return True

    def close(self, timeout: float) -> int:
        """Flush within ``timeout`` and release resources; return how many messages were not delivered."""
        return 0 if self.flush(timeout) else -1

    def after_fork(self) -> None:
        """Called in a forked child: drop whatever belongs to the parent (threads, queues, sockets)."""
