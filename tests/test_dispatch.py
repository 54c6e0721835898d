"""The dispatcher against the real Segment transport and the local endpoint: what the caller's thread
does, queue-full policies, worker-side drops, and the stats invariant. Events are counted at the endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import instrument
from instrument import (
    AnalyticsError,
    Client,
    DeliveryError,
    EncodingError,
    EventName,
    OversizeError,
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
        "consent_denied": 0,
        "forgotten": 0,
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


# -- the ledger: every accepted event ends delivered or lost, and every loss is reported -----------------


def assert_ledger(stats: Stats) -> None:
    """accepted = delivered + lost (by reason) + pending, and recorded = accepted + refused."""
    assert stats.accepted == stats.sent + stats.lost_total + stats.pending, stats
    assert stats.recorded == stats.accepted + sum(stats.refused.values()), stats
    assert_invariant(stats)


def reported_losses(errors: list[AnalyticsError]) -> int:
    """How many events the on_error reports say were lost (a DeliveryError carries its count)."""
    return sum(e.count if isinstance(e, DeliveryError) else 1 for e in errors if not isinstance(e, QueueFullError))


BLOB_5K = "x" * 5_000
BLOB_30K = "y" * 30_000


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("count", "blob"), [(20_000, BLOB_5K), (4_000, BLOB_30K)], ids=["20000x5KB", "4000x30KB"])
def test_a_burst_of_large_events_at_default_settings_delivers_every_event_track_accepted(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError], count: int, blob: str
) -> None:
    configure(timeout=10.0, flush_interval=0.5)  # the defaults (the fixture shortens them)

    accepted = 0
    with analytics_scope(user_id="u1"):
        for n in range(count):
            accepted += bool(instrument.track(Dispatched(n=n, payload=blob)))

    assert instrument.flush(240.0)
    stats = instrument.stats()
    assert stats.accepted == accepted == stats.sent == endpoint.unique_message_ids
    assert stats.lost_total == 0
    assert stats.refused["queue_full"] == count - accepted  # refused at the call, never dropped after ok
    assert all(isinstance(e, QueueFullError) for e in errors)
    assert_ledger(stats)


@pytest.mark.timeout(300)
def test_with_a_spool_a_burst_of_5_kb_events_is_neither_refused_nor_lost(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError], tmp_path: Path
) -> None:
    configure(timeout=10.0, flush_interval=0.5, spool=tmp_path / "spool", spool_max_bytes=512 << 20)

    with analytics_scope(user_id="u1"):
        refused = [n for n in range(20_000) if not instrument.track(Dispatched(n=n, payload=BLOB_5K)).ok]

    assert refused == []  # what did not fit in memory spilled to disk
    assert instrument.flush(240.0)
    stats = instrument.stats()
    assert stats.accepted == 20_000 == stats.sent == endpoint.unique_message_ids
    assert stats.lost_total == 0
    assert stats.spool["appended"] == 20_000  # every event was on disk before its first attempt
    assert errors == []
    assert_ledger(stats)


def test_what_neither_the_queue_nor_a_full_spool_can_take_is_counted_lost_and_reported_with_its_count(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError], tmp_path: Path
) -> None:
    endpoint.hang_next(1, 2.0)  # the first batch is stuck: the queue fills, the overflow spills
    configure(timeout=5.0, max_queue_size=100, spool=tmp_path / "spool", spool_max_bytes=300_000)

    with analytics_scope(user_id="u1"):
        ok = sum(bool(instrument.track(Dispatched(n=n, payload="p" * 1_000))) for n in range(2_000))
    assert instrument.flush(30.0) is False  # some accepted events did not fit on disk either

    stats = instrument.stats()
    assert ok == stats.accepted
    assert stats.lost["queue_full"] > 0
    assert (
        stats.sent + stats.lost["queue_full"]
        == stats.accepted
        == endpoint.unique_message_ids + (stats.lost["queue_full"])
    )
    full = [e for e in errors if isinstance(e, DeliveryError) and e.reason == "queue_full"]
    assert sum(e.count for e in full) == stats.lost["queue_full"]
    assert_ledger(stats)


class Injected(Exception):
    """A fault planted in the pipeline."""


def _raise_once(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = []

    def planted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise Injected
        return real(*args, **kwargs)

    return planted


@pytest.mark.parametrize(
    ("target", "reason", "spooled"),
    [
        ("instrument.transports._segment.timestamp_bytes", "delivery_failed", False),  # the sender, mid-request
        ("instrument._messages.cut", "internal_error", False),  # the worker, between encoding and sending
        ("instrument.transports._segment.timestamp_bytes", "delivery_failed", True),  # the spool's sender
    ],
    ids=["sender", "worker", "spool-sender"],
)
def test_an_exception_in_the_pipeline_is_reported_with_its_count_and_the_next_events_are_delivered(
    endpoint: SegmentEndpoint,
    configure: Callable[..., Client],
    errors: list[AnalyticsError],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    target: str,
    reason: str,
    spooled: bool,
) -> None:
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(target, _raise_once(getattr(__import__(module, fromlist=[name]), name)))
    configure(flush_interval=30.0, spool=tmp_path / "spool" if spooled else None)

    with analytics_scope(user_id="u1"):
        for n in range(5):
            assert instrument.track(Dispatched(n=n)).ok
    assert not instrument.flush(5.0)  # the first batch was lost to the fault
    with analytics_scope(user_id="u1"):
        for n in range(5, 10):
            assert instrument.track(Dispatched(n=n)).ok
    assert instrument.flush(5.0)  # the pipeline lives on

    assert sent_numbers(endpoint) == [5, 6, 7, 8, 9]
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert error.count == 5
    assert "Injected" in error.reason
    stats = instrument.stats()
    assert (stats.sent, stats.lost[reason], stats.pending) == (5, 5, 0)
    assert_ledger(stats)


@pytest.mark.timeout(120)
def test_the_ledger_is_exact_through_a_fault_matrix_and_matches_what_the_endpoint_received(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    client = configure(timeout=0.5, retry_window=4.0, max_retries=3, batch_size=20, flush_interval=0.05)
    numbers = iter(range(1_000_000))

    def emit(count: int, payload: Any = None) -> None:
        with analytics_scope(user_id="u1"):
            for _ in range(count):
                assert instrument.track(Dispatched(n=next(numbers), payload=payload)).ok
        assert_ledger(instrument.stats())  # at any moment, not only at the end

    endpoint.fail_next(2, 500)  # 500s, then recovery
    emit(40)
    assert instrument.flush(20.0)
    endpoint.fail_next(1, 429, headers={"Retry-After": "1"})  # rate limited, waits as asked
    emit(20)
    assert instrument.flush(20.0)
    endpoint.hang_next(1, 1.5)  # stuck: the attempt is cut at 0.5 s and sent again (a duplicate may arrive)
    emit(20)
    assert instrument.flush(20.0)
    endpoint.stop()  # connection resets: the kept-alive connection is closed under the client
    endpoint.start()
    emit(20)
    assert instrument.flush(20.0)
    emit(3, payload="z" * 40_000)  # oversize: not truncatable
    emit(2, payload=float("nan"))  # unencodable
    emit(5)
    assert instrument.flush(20.0)
    endpoint.fail_next(4, 500)  # failing past max_retries: the batch is given up on
    emit(20)
    assert not instrument.flush(20.0)
    endpoint.clear_faults()
    endpoint.stop()  # down, and the process exits with a backlog
    emit(30)
    lost_at_exit = client.shutdown(1.0)

    stats = instrument.stats()
    assert stats.pending == 0
    assert stats.accepted == 160 == stats.sent + stats.lost_total
    assert stats.sent == endpoint.unique_message_ids == 105
    assert stats.lost["oversize"] == 3
    assert stats.lost["invalid"] == 2
    assert stats.lost["delivery_failed"] + stats.lost["shutdown"] == 20 + 30
    assert stats.lost["shutdown"] == lost_at_exit
    assert reported_losses(errors) == stats.lost_total  # every loss reached on_error, with its count
    assert_ledger(stats)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("small_first", [0, 3_000], ids=["only-large", "after-small-events"])
def test_endpoint_down_with_30_kb_events_keeps_peak_memory_within_twice_the_byte_bound_and_counts_every_loss(
    tmp_path: Path, small_first: int
) -> None:
    # after-small-events: the worker encoded small events and is stuck on the down endpoint, so the
    # queue's head says "small"; the bound must follow what arrives (it let 10,000 of 30 KB in: 245 MB).
    script = tmp_path / "down.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, resource, socket, sys, time
            import instrument
            from instrument import Track, analytics_scope

            class Big(Track, event="Big Sent"):
                n: int
                blob: str

            SMALL_FIRST = int(sys.argv[1])
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()  # nothing listens there: the endpoint is down
            lost = []
            instrument.configure("wk-down", host=f"http://127.0.0.1:{port}", max_queue_bytes=32 << 20,
                                 on_error=lambda e: lost.append(getattr(e, "count", 1)))
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            accepted = 0
            with analytics_scope(user_id="u"):
                for n in range(SMALL_FIRST):
                    accepted += bool(instrument.track(Big(n=n, blob="s")))
                time.sleep(0.5 if SMALL_FIRST else 0)  # the worker encodes them, and cannot send them
                for n in range(8_000):  # each event its own 30 KB (as real data would be)
                    accepted += bool(instrument.track(Big(n=n, blob=str(n) * (30_000 // len(str(n))))))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            instrument.shutdown(1.0)
            stats = instrument.stats()
            print(json.dumps({"growth": peak - base, "accepted": accepted, "stats_accepted": stats.accepted,
                              "lost": stats.lost_total, "pending": stats.pending,
                              "refused": stats.refused["queue_full"], "reported": sum(lost)}))
            """
        )
    )
    env = {**os.environ}
    env.pop("INSTRUMENT_STRICT", None)
    done = subprocess.run(
        [sys.executable, str(script), str(small_first)],
        check=False,
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["growth"] <= 2 * (32 << 20), report
    assert report["accepted"] == report["stats_accepted"] == report["lost"], report
    assert report["pending"] == 0
    assert report["accepted"] + report["refused"] == small_first + 8_000
    assert report["reported"] == small_first + 8_000  # every refusal and loss reached on_error, with its count


class PlannedTransport(Transport):
    """A real in-process transport whose batches succeed, fail (reported) or raise, in a planned order."""

    def __init__(self, plan: list[str]) -> None:
        super().__init__()
        self.plan = plan
        self.delivered: list[str] = []
        self.calls = 0

    def send(self, messages: list[Message]) -> None:
        outcome = self.plan[self.calls % len(self.plan)]
        self.calls += 1
        if outcome == "raise":
            raise Injected
        if outcome == "fail":
            self._report.failed(len(messages), "planned")
            return
        self.delivered.extend(m["messageId"] for m in messages)
        self._report.sent(len(messages))


EVENT_KINDS = {
    "good": lambda n: Dispatched(n=n),
    "unencodable": lambda n: Dispatched(n=n, payload=float("nan")),  # accepted, lost at the worker
    "oversize": lambda n: Dispatched(n=n, payload="o" * 40_000),  # accepted, lost at the worker
    "invalid": lambda n: Dispatched(n="x"),  # type: ignore[arg-type]  # refused at the call
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(sorted(EVENT_KINDS)), min_size=1, max_size=60),
    plan=st.lists(st.sampled_from(["ok", "ok", "fail", "raise"]), min_size=1, max_size=6),
    queue=st.integers(min_value=1, max_value=40),
    policy=st.sampled_from(["drop_newest", "drop_oldest"]),
    batch=st.integers(min_value=1, max_value=15),
)
def test_the_ledger_identity_holds_at_every_moment_whatever_happens(
    kinds: list[str], plan: list[str], queue: int, policy: str, batch: int
) -> None:
    transport = PlannedTransport(plan)
    seen: list[AnalyticsError] = []
    client = instrument.configure(
        transport=transport,
        max_queue_size=queue,
        queue_policy=policy,
        batch_size=batch,
        flush_interval=0.01,
        on_error=seen.append,
        strict=False,
    )
    try:
        with analytics_scope(user_id="u1"):
            for n, kind in enumerate(kinds):
                instrument.track(EVENT_KINDS[kind](n))
                assert_ledger(instrument.stats())
        instrument.flush(5.0)
        assert_ledger(instrument.stats())
    finally:
        client.shutdown(5.0)
    stats = instrument.stats()
    assert_ledger(stats)
    assert stats.pending == 0
    assert stats.recorded == len(kinds)
    assert stats.refused["invalid"] == kinds.count("invalid")
    assert stats.sent == len(transport.delivered) == len(set(transport.delivered))
    assert lost_reported(seen) == stats.lost_total  # every loss reached on_error, with its count


def lost_reported(errors: list[AnalyticsError]) -> int:
    """Accepted events the reports say were lost: a DeliveryError's count, one per encoding, size or
    eviction error (refusals at the call, reported too, are not losses)."""
    lost = 0
    for error in errors:
        if isinstance(error, DeliveryError):
            lost += error.count
        elif isinstance(error, (EncodingError, OversizeError)) or (
            isinstance(error, QueueFullError) and "oldest" in str(error)
        ):
            lost += 1
    return lost


class OneBatchAtATime(Transport):
    """Each batch waits for one ``release()``; then it counts as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Semaphore(0)
        self.batches = 0

    def send(self, messages: list[Message]) -> None:
        if not self.gate.acquire(timeout=20.0):
            raise TimeoutError("never released")
        self.batches += 1
        self._report.sent(len(messages))


def test_a_flush_returns_when_its_own_events_are_done_while_a_later_flush_still_waits() -> None:
    # Waiters are woken when the first of them is done (not at every batch): the earlier flush, waiting
    # for fewer events, must still be woken by its own batch, not by the later flush's.
    transport = OneBatchAtATime()
    instrument.configure(transport=transport, batch_size=100, flush_interval=0.05)
    results: dict[str, bool] = {}
    calling = threading.Event()

    def flush_as(name: str) -> None:
        calling.set()
        results[name] = instrument.flush(30.0)

    for n in range(100):
        assert instrument.track(Dispatched(n=n, user_id=1)).ok
    first = threading.Thread(target=flush_as, args=("first",))
    first.start()
    calling.wait(10.0)
    time.sleep(0.5)  # the first flush has counted its 100 events (the batch is held at the gate)
    for n in range(100, 300):
        assert instrument.track(Dispatched(n=n, user_id=1)).ok
    later = threading.Thread(target=flush_as, args=("later",))
    later.start()
    transport.gate.release()  # the first batch: the first flush's 100 events
    first.join(10.0)
    assert results == {"first": True}
    assert later.is_alive()
    transport.gate.release(2)
    later.join(10.0)
    assert results == {"first": True, "later": True}
    assert transport.batches == 3


def test_flush_and_shutdown_called_from_on_error_return_at_once_instead_of_waiting_for_their_own_thread(
    configure,  # type: ignore[no-untyped-def]
    endpoint: SegmentEndpoint,
) -> None:
    # on_error runs on the worker's thread, and what is left waits for that very thread: a flush there
    # used to wait its whole timeout (delivery standing still), and so did shutdown's.
    endpoint.fail_next(1, 400)  # the first batch is rejected: its loss reaches the handler
    recorded = threading.Event()
    timings: dict[str, tuple[object, float]] = {}

    def on_error(error: instrument.AnalyticsError) -> None:
        if timings:
            return
        recorded.wait(10.0)  # the other 30 events are queued behind the batch in hand
        start = time.monotonic()
        timings["flush"] = (instrument.flush(10.0), time.monotonic() - start)
        start = time.monotonic()
        timings["shutdown"] = (instrument.shutdown(10.0), time.monotonic() - start)

    configure(on_error=on_error, max_retries=0, batch_size=10, flush_interval=0.01)
    for n in range(40):
        assert instrument.track(Dispatched(n=n, user_id=1)).ok
    recorded.set()
    deadline = time.monotonic() + 30.0
    while "shutdown" not in timings and time.monotonic() < deadline:
        time.sleep(0.01)
    assert timings["flush"][0] is False
    assert timings["flush"][1] < 2.0
    assert timings["shutdown"] == (30, pytest.approx(0.0, abs=2.0))  # the queued 30 counted lost at once
    stats = instrument.stats()
    assert stats.lost["delivery_failed"] == 10
    assert stats.lost["shutdown"] == 30
    assert stats.accepted == stats.lost_total == 40  # the ledger holds: nothing unaccounted


_FINALIZER_PROGRAM = """
import faulthandler, gc, json, sys
import instrument
from instrument import Track, analytics_scope

faulthandler.dump_traceback_later(20, exit=True)  # a deadlock ends the run, with its stacks
EVENTS = 20_000

class Worked(Track, event="Work Done"):
    n: int

class Closed(Track, event="Session Closed"):
    n: int

class Session:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it

    def __del__(self):
        instrument.track(Closed(n="not an int"))  # refused: counted in the ledger, under its lock

instrument.configure("wk", host=sys.argv[1], flush_interval=0.001, batch_size=5, max_queue_size=100_000,
                     on_error=lambda error: None)
gc.set_threshold(5, 1, 1)  # collections everywhere, also inside the library's locked sections
with analytics_scope(user_id="u"):
    for n in range(EVENTS):
        Session()
        instrument.track(Worked(n=n))
        if n % 10 == 0:
            instrument.stats()
gc.set_threshold(700, 10, 10)
gc.collect()
flushed = instrument.flush(30.0)
stats = instrument.stats()
print(json.dumps({"flushed": flushed, "sent": stats.sent, "invalid": stats.refused["invalid"],
                  "pending": stats.pending}))
instrument.shutdown(5.0)
"""


def test_an_event_a_finalizer_records_while_the_collector_runs_inside_the_library_does_not_deadlock(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    # The collector runs finalizers on whichever thread allocates, also while that thread holds the
    # dispatcher's lock (stats(), the worker's take, the ledger). A finalizer that records an event that
    # is refused needs that lock: the thread waited for itself, and the whole pipeline (the worker waits
    # for the same lock) stood still for good.
    script = tmp_path / "finalizer.py"
    script.write_text(_FINALIZER_PROGRAM)
    env = {**os.environ}
    env.pop("INSTRUMENT_STRICT", None)
    done = subprocess.run(
        [sys.executable, str(script), endpoint.url],
        check=False,
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"flushed": True, "sent": 20_000, "invalid": 20_000, "pending": 0}
    assert endpoint.wait_for(20_000)
    assert endpoint.unique_message_ids == 20_000


class RecordsWhileSending(MemoryTransport):
    """Records an event in the middle of each of its first sends, on the sending thread: what a
    finalizer the collector runs there does, or a signal handler."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def send(self, messages: list[Message]) -> None:
        if self.times:
            self.times -= 1
            instrument.track(Dispatched(n=1000 + self.times, user_id=1))
        super().send(messages)


def test_an_event_recorded_in_the_middle_of_a_sync_send_on_its_thread_is_sent_right_after_it() -> None:
    # A sync client sends one event at a time under a lock: an event recorded on the sending thread in
    # the middle of a send waited for that lock, held by the same thread, and the business call hung.
    transport = RecordsWhileSending(3)
    seen: list[AnalyticsError] = []
    instrument.configure(transport=transport, sync=True, on_error=seen.append, strict=False)
    results: list[bool] = []

    def business_calls() -> None:
        for n in range(5):
            results.append(instrument.track(Dispatched(n=n, user_id=1)).ok)

    call = threading.Thread(target=business_calls, daemon=True)
    call.start()
    call.join(10.0)
    assert not call.is_alive(), "track() never returned: the nested event waited for its own thread's send"
    assert results == [True] * 5
    # Each event recorded during a send goes right after that send, before the next business event.
    assert [m["properties"]["n"] for m in transport.messages] == [0, 1002, 1001, 1000, 1, 2, 3, 4]
    stats = instrument.stats()
    assert stats.accepted == stats.sent == 8
    assert stats.pending == 0
    assert seen == []
