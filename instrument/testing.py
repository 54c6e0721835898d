"""Assert what your code emits: ``capture_events()`` routes every event to memory, in strict mode.

Imports no pytest; the pytest plugin (``analytics_events`` fixture) is built on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from instrument import _client
from instrument._events import EventName
from instrument._tracks import Track, spec_of
from instrument.transports import MemoryTransport

Message = dict[str, Any]


def _event_of(event_or_track: type[Track] | EventName | str) -> str:
    if isinstance(event_or_track, type) and issubclass(event_or_track, Track):
        event = spec_of(event_or_track).event
        assert event is not None
        return event
    return str(event_or_track)


class CapturedEvents:
    """What was emitted while capturing: Segment wire messages, in emission order."""

    def __init__(self, transport: MemoryTransport) -> None:
        self._transport = transport

    @property
    def messages(self) -> list[Message]:
        """The exact wire messages (with messageId and timestamp)."""
        return self._transport.messages

    @property
    def tracks(self) -> list[Message]:
        """The track messages."""
        return [m for m in self.messages if m["type"] == "track"]

    @property
    def identifies(self) -> list[Message]:
        """The identify messages."""
        return [m for m in self.messages if m["type"] == "identify"]

    def of(self, event_or_track: type[Track] | EventName | str) -> list[Message]:
        """The track messages of one event."""
        event = _event_of(event_or_track)
        return [m for m in self.tracks if m["event"] == event]

    def assert_tracked(self, event_or_track: type[Track] | EventName | str, **expected: Any) -> list[Message]:
        """Assert at least one ``event_or_track`` was tracked with ``expected`` properties; return the matches.

        Raises AssertionError listing what was captured.
        """
        candidates = self.of(event_or_track)
        matches = [m for m in candidates if all(m["properties"].get(k, _ABSENT) == v for k, v in expected.items())]
        if not matches:
            raise AssertionError(
                f"expected {_event_of(event_or_track)!r} with {expected}, captured: "
                f"{[(m['event'], m['properties']) for m in self.tracks]}"
            )
        return matches

    def assert_not_tracked(self, event_or_track: type[Track] | EventName | str) -> None:
        """Assert ``event_or_track`` was not tracked. Raises AssertionError listing the matches."""
        found = self.of(event_or_track)
        if found:
            raise AssertionError(f"expected no {_event_of(event_or_track)!r}, captured: {found}")

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)


_ABSENT = object()


@contextlib.contextmanager
def capture_events(*, strict: bool = True) -> Iterator[CapturedEvents]:
    """Route every event emitted inside to memory (nothing leaves the process), strict by default.

    Restores the previous client and mode on exit, also on exceptions.
    """
    transport = MemoryTransport()
    client = _client.Client(transport, strict=strict, sync=True)
    previous = _client.swap_client(client)
    try:
        yield CapturedEvents(transport)
    finally:
        _client.swap_client(previous)
