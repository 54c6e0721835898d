"""Message context providers: run on the caller's thread at track(), merged into the message's ``context``
by the message builder (so the size check counts them), skipped when they raise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import instrument
from instrument import EventName, Track, _context, analytics_scope
from instrument.testing import CapturedEvents
from instrument.transports import MemoryTransport


class Events(EventName):
    CONTEXT_SHOWN = "Context Shown"


class ContextShown(Track, event=Events.CONTEXT_SHOWN):
    n: int


local = threading.local()


def thread_provider() -> Mapping[str, Any] | None:
    value = getattr(local, "value", None)
    return None if value is None else {"source": value}


def raising_provider() -> Mapping[str, Any] | None:
    raise RuntimeError("provider failure")


@pytest.fixture
def providers() -> Iterator[list[Any]]:
    added: list[Any] = []
    yield added
    for provider in added:
        _context.remove_provider(provider)


def test_a_provider_is_read_on_the_caller_s_thread_although_delivery_runs_elsewhere(
    providers: list[Any],
) -> None:
    _context.add_provider(thread_provider)
    _context.add_provider(thread_provider)  # idempotent
    providers.append(thread_provider)
    instrument.configure(transport=(transport := MemoryTransport()), flush_interval=0.05)
    local.value = "caller"
    try:
        with analytics_scope(user_id=1):
            instrument.track(ContextShown(n=1))
        local.value = None
        with analytics_scope(user_id=1):
            instrument.track(ContextShown(n=2))
        assert instrument.flush(10)
    finally:
        local.value = None
        instrument.shutdown(5)
    first, second = transport.messages
    assert first["context"] == {"source": "caller"}
    assert "context" not in second


def test_a_raising_provider_is_skipped_and_each_failure_reaches_on_error_and_the_event_still_sent(
    providers: list[Any], analytics_events: CapturedEvents
) -> None:
    _context.add_provider(raising_provider)
    _context.add_provider(lambda: {"kept": True})
    providers.extend(_context.providers)
    with analytics_scope(user_id=1):
        for n in range(50):
            instrument.track(ContextShown(n=n))
    [event] = analytics_events.assert_tracked(ContextShown, n=1)
    assert event["context"] == {"kept": True}
    assert len(analytics_events.of(ContextShown)) == 50
    # on_error (the capture's .errors) receives every failure, naming the exception's type, not its text.
    assert len(analytics_events.errors) == 50
    assert all("RuntimeError" in str(e) and "provider failure" not in str(e) for e in analytics_events.errors)
    analytics_events.errors.clear()


def test_without_on_error_a_raising_provider_is_logged_once_then_summed_up_at_shutdown(
    providers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    _context.add_provider(raising_provider)
    providers.extend(_context.providers)
    transport = MemoryTransport()
    instrument.configure(transport=transport)
    with caplog.at_level(logging.WARNING, logger="instrument"), analytics_scope(user_id=1):
        for n in range(50):
            assert instrument.track(ContextShown(n=n)).ok
        assert instrument.flush(10)
        instrument.shutdown(5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(transport.messages) == 50
    # One line at once, one summary of the other 49 at shutdown (the client's one error channel).
    assert [line.count("RuntimeError") for line in lines] == [1, 1]
    assert "49 more AnalyticsError" in lines[1]
    assert not any("provider failure" in line for line in lines)


def test_the_context_counts_toward_the_32_kb_limit(providers: list[Any], analytics_events: CapturedEvents) -> None:
    big = {"page": {"url": "x" * 40_000}}
    _context.add_provider(lambda: big)
    providers.extend(_context.providers)
    with analytics_scope(user_id=1), pytest.raises(instrument.OversizeError):
        instrument.track(ContextShown(n=1))


def test_when_no_provider_gives_anything_no_context_is_added(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id=1):
        instrument.track(ContextShown(n=1))
    assert "context" not in analytics_events[0]
