"""Shared fixtures: every test starts with a fresh no-op client and production mode, and gets them back after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instrument import _client
from instrument._errors import AnalyticsError
from instrument._mode import mode
from instrument.transports import MemoryTransport


@pytest.fixture(autouse=True)
def _fresh_client() -> Iterator[None]:
    previous_strict = mode.strict
    previous = _client.swap_client(_client.Client(None))
    mode.strict = False
    try:
        yield
    finally:
        _client.swap_client(previous)
        mode.strict = previous_strict


@pytest.fixture
def reported() -> list[AnalyticsError]:
    """The errors the ``memory`` client reported to its on_error handler, in order."""
    return []


@pytest.fixture
def memory(reported: list[AnalyticsError]) -> Iterator[MemoryTransport]:
    """A MemoryTransport behind a synchronous client (production mode): messages are there at once."""
    transport = MemoryTransport()
    previous = _client.swap_client(_client.Client(transport, sync=True, on_error=reported.append))
    try:
        yield transport
    finally:
        _client.swap_client(previous)
