"""The dispatcher against the real Segment transport and the local endpoint: what the caller's thread
does, queue-full policies, worker-side drops, and the stats invariant. Events are counted at the endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import instrument
from instrument import (
    AnalyticsError,
    Client,
    EncodingError,
    EventName,
    PropertyError,
    QueueFullError,
    SegmentTransport,
    Stats,
    Track,
    Transport,
    analytics_scope,
    field,
)
from instrument._dispatch import DROP_REASONS
from instrument.testing import SegmentEndpoint
from instrument.transports import DeliveryReport, MemoryTransport, Message

pytestmark = pytest.mark.timeout(60)

WRITE_KEY = "wk-dispatch"


class Events(EventName):
    ITEM_DISPATCHED = "Item Dispatched"


class Dispatched(Track, event=Events.ITEM_DISPATCHED):
    n: int
    tags: list[int] = field(default_factory=list)
    payload: Any = None


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


def assert_invariant(stats: Stats) -> None:
    assert set(stats.dropped) == set(DROP_REASONS)
    assert stats.recorded == stats.sent + stats.dropped_total + stats.pending


def sent_numbers(endpoint: SegmentEndpoint) -> list[int]:
    return sorted(m["properties"]["n"] for m in endpoint.messages)


# -- the caller's thread only records ------------------------------------------------------------


class ThreadSpy:
    """A property value whose encoding (``model_dump``) records the thread it runs on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        self.threads.append(threading.current_thread().name)
        return {"seen": True}


def test_track_does_no_encoding_on_the_callers_thread(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure()
    spy = ThreadSpy()

    with analytics_scope(user_id="u1"):
        result = instrument.track(Dispatched(n=1, payload=spy))

    assert result.ok
    assert spy.threads == []  # nothing encoded at the call
    assert instrument.flush(5.0)
    assert spy.threads == ["instrument-dispatch"]
    [message] = endpoint.messages
    assert message["properties"]["payload"] == {"seen": True}


def test_deep_invalid_list_is_accepted_at_the_call_and_dropped_by_the_worker(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure()

    with analytics_scope(user_id="u1"):
        good_before = instrument.track(Dispatched(n=1, tags=[1, 2]))
        bad = instrument.track(Dispatched(n=2, tags=[1, "two"]))  # type: ignore[list-item]
        good_after = instrument.track(Dispatched(n=3))

    # The list's items are checked at construction (one validation path): refused at the call.
    assert good_before.ok
    assert not bad.ok
    assert isinstance(bad.error, PropertyError)
    assert good_after.ok
    assert instrument.flush(5.0)
    assert sent_numbers(endpoint) == [1, 3]
    [error] = errors
    assert isinstance(error, PropertyError)
    assert (error.track, error.field) == ("Dispatched", "tags")
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.dropped["invalid"]) == (3, 2, 1)
    assert_invariant(stats)


def test_the_pipeline_threads_are_started_by_the_first_track_not_by_flush(
    configure: Callable[..., Client],
) -> None:
    before = set(threading.enumerate())
    configure(flush_interval=30.0)

    with analytics_scope(user_id="u1"):
        instrument.track(Dispatched(n=1))

    # The worker (which encodes and sends) and the HTTP deadline watchdog run before any flush:
    # nothing is started lazily at interpreter exit. No other thread: one thread does the work.
    started = sorted(t.name for t in set(threading.enumerate()) - before)
    assert started == ["instrument-dispatch", "instrument-http-deadline"]


# -- encoder violations on the worker ---------------------------------------------------------------


class Opaque:
    """No encoding rule applies to this."""


def test_encoder_violations_are_dropped_with_track_and_field_and_the_rest_of_the_batch_arrives(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(batch_size=100, flush_interval=30.0)
    bad_values = {3: float("nan"), 7: {"deep": [1, Opaque()]}, 11: float("inf"), 15: Opaque()}

    with analytics_scope(user_id="u1"):
        for n in range(20):
            assert instrument.track(Dispatched(n=n, payload=bad_values.get(n, n))).ok

    assert instrument.flush(5.0)  # one batch of 20 for the worker
    assert sent_numbers(endpoint) == [n for n in range(20) if n not in bad_values]
    assert len(endpoint.batches) == 1
    assert all(isinstance(e, EncodingError) for e in errors)
    assert [(e.track, e.field) for e in errors] == [  # type: ignore[attr-defined]
        ("Dispatched", "payload"),
        ("Dispatched", "payload.deep[1]"),
        ("Dispatched", "payload"),
        ("Dispatched", "payload"),
    ]
    assert "NaN" in str(errors[0])
    stats = instrument.stats()
    assert (stats.sent, stats.dropped["invalid"]) == (16, 4)
    assert_invariant(stats)


# -- queue full ------------------------------------------------------------------------------------


class GatedTransport(Transport):
    """The real Segment transport behind a gate: ``send`` blocks until ``release`` is set."""

    def __init__(self, inner: SegmentTransport) -> None:
        super().__init__()
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def bind(self, report: DeliveryReport) -> None:
        super().bind(report)
        self.inner.bind(report)

    def start(self) -> None:
        self.inner.start()

    def send(self, messages: list[Message]) -> None:
        self.entered.set()
        self.release.wait(20.0)
        self.inner.send(messages)

    def flush(self, timeout: float) -> bool:
        return self.inner.flush(timeout)

    def close(self, timeout: float) -> int:
        self.release.set()
        return self.inner.close(timeout)


@pytest.mark.parametrize(
    ("policy", "delivered"),
    [("drop_newest", [0, 1, 2, 3, 4, 5]), ("drop_oldest", [0, 4, 5, 6, 7, 8])],
)
def test_full_queue_drops_by_policy_without_blocking_and_reports_each_drop(
    endpoint: SegmentEndpoint,
    configure: Callable[..., Client],
    errors: list[AnalyticsError],
    policy: str,
    delivered: list[int],
) -> None:
    gate = GatedTransport(SegmentTransport(WRITE_KEY, host=endpoint.url, timeout=0.5, flush_interval=0.05))
    configure(transport=gate, max_queue_size=5, batch_size=1, queue_policy=policy)

    with analytics_scope(user_id="u1"):
        assert instrument.track(Dispatched(n=0)).ok
        assert gate.entered.wait(5.0)  # the worker holds event 0 and is stuck in send
        results = [instrument.track(Dispatched(n=n)) for n in range(1, 9)]  # 5 fit, 3 do not

    # Every call returned while the transport was blocked: recording never waits for delivery.
    assert not gate.release.is_set()
    if policy == "drop_newest":
        assert [r.ok for r in results] == [True] * 5 + [False] * 3
        assert all(isinstance(r.error, QueueFullError) for r in results[5:])
    else:
        assert all(r.ok for r in results)  # the new event is kept; the oldest queued one goes
    assert [type(e) for e in errors] == [QueueFullError] * 3
    assert instrument.stats().dropped["queue_full"] == 3

    gate.release.set()
    # drop_oldest evicted events it had accepted: flush reports that not everything was delivered.
    assert instrument.flush(5.0) is (policy == "drop_newest")
    assert sent_numbers(endpoint) == delivered
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.dropped_total, stats.pending) == (9, 6, 3, 0)
    assert_invariant(stats)


# -- stats -------------------------------------------------------------------------------------------


def test_stats_count_every_outcome_and_keep_the_invariant(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(max_retries=0)

    with analytics_scope(user_id="u1"):
        for n in range(10):
            instrument.track(Dispatched(n=n))
        instrument.track(Dispatched(n=10, payload=Opaque()))  # invalid, on the worker
        instrument.track(Dispatched(n="eleven"))  # type: ignore[arg-type]  # invalid, at the call
        instrument.track(Dispatched(n=12, payload="x" * 40_000))  # oversize, on the worker
        assert_invariant(instrument.stats())
        assert instrument.flush(5.0)
        endpoint.fail_next(1, 400)
        instrument.track(Dispatched(n=13))  # refused by the endpoint, not retried
        assert not instrument.flush(5.0)  # finished, but not delivered
        instrument.shutdown(2.0)
        instrument.track(Dispatched(n=14))  # closed

    stats = instrument.stats()
    assert stats.recorded == 15
    assert stats.sent == 10 == endpoint.message_count
    assert stats.retried == 0
    assert stats.pending == 0
    assert dict(stats.dropped) == {
        "invalid": 2,
        "oversize": 1,
        "queue_full": 0,
        "not_configured": 0,
        "closed": 1,
        "delivery_failed": 1,
        "shutdown": 0,
        "internal_error": 0,
    }
    assert_invariant(stats)
    assert len(errors) == 5


def test_stats_of_the_unconfigured_client_count_not_configured_drops() -> None:
    with analytics_scope(user_id="u1"):
        result = instrument.track(Dispatched(n=1))

    assert not result.ok
    stats = instrument.stats()
    assert (stats.recorded, stats.dropped["not_configured"], stats.pending) == (1, 1, 0)
    assert_invariant(stats)


def test_stats_pending_counts_recorded_events_not_yet_delivered(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure(flush_interval=30.0, batch_size=1000)

    with analytics_scope(user_id="u1"):
        for n in range(7):
            instrument.track(Dispatched(n=n))

    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.pending) == (7, 0, 7)
    assert_invariant(stats)
    assert instrument.flush(5.0)
    stats = instrument.stats()
    assert (stats.sent, stats.pending) == (7, 0)
    assert endpoint.unique_message_ids == 7


def test_sync_mode_reports_a_failing_redact_hook_instead_of_raising(endpoint: SegmentEndpoint) -> None:
    errors: list[AnalyticsError] = []

    def redact(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("hook bug")

    client = instrument.Client(
        SegmentTransport(WRITE_KEY, host=endpoint.url, timeout=0.5, flush_interval=0.05),
        sync=True,
        redact=redact,
        on_error=errors.append,
    )
    try:
        with analytics_scope(user_id="u1"):
            result = client.track(Dispatched(n=1))
    finally:
        client.shutdown(2.0)

    assert not result.ok
    assert isinstance(result.error, EncodingError)
    assert errors == [result.error]
    assert isinstance(result.error.__cause__, ValueError)
    assert endpoint.message_count == 0
    stats = client.stats()
    assert (stats.recorded, stats.dropped["invalid"], stats.pending) == (1, 1, 0)


def test_stats_repr_is_plain_and_shows_the_drops_that_happened(memory: MemoryTransport) -> None:
    instrument.track("not a track")  # type: ignore[arg-type]
    text = repr(instrument.stats())
    assert text == "Stats(recorded=1, accepted=0, sent=0, retried=0, pending=0, dropped={'invalid': 1})"
    assert "mappingproxy" not in text
