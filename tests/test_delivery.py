"""Delivery under faults, through the real Segment transport to the local endpoint.

Each test counts what arrived at the endpoint: every event delivered, none twice by the toolkit (a
hung request that the server accepts after the client gave up is the endpoint's duplicate, with the
same messageId), and every loss counted and reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import pytest

import instrument
from instrument import (
    MAX_BATCH_BYTES,
    AnalyticsError,
    Client,
    DeliveryError,
    EventName,
    OversizeError,
    Stats,
    Track,
    Truncatable,
    analytics_scope,
)
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(60)

WRITE_KEY = "wk-delivery"


class Events(EventName):
    PARCEL_SENT = "Parcel Sent"


class Parcel(Track, event=Events.PARCEL_SENT):
    n: int
    blob: str = ""


class Letter(Track, event=Events.PARCEL_SENT):
    n: int
    text: Annotated[str, Truncatable] = ""


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


#: A flush interval no test waits for: the worker takes everything recorded when the test flushes,
#: so the events of a test travel as one batch and retry counts are exact.
ONE_BATCH = 30.0


def emit(count: int, start: int = 0) -> None:
    with analytics_scope(user_id="u1"):
        for n in range(start, start + count):
            assert instrument.track(Parcel(n=n)).ok


def assert_exactly_once(endpoint: SegmentEndpoint, count: int) -> None:
    assert endpoint.unique_message_ids == count
    assert endpoint.message_count == count  # nothing delivered twice
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == list(range(count))


def assert_invariant(stats: Stats) -> None:
    assert stats.recorded == stats.sent + stats.dropped_total + stats.pending


# -- size limits ---------------------------------------------------------------------------------------


def test_oversize_event_is_reported_and_never_raises_into_business_code(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure()

    with analytics_scope(user_id="u1"):
        assert instrument.track(Parcel(n=0)).ok
        result = instrument.track(Parcel(n=1, blob="x" * 40_000))  # over 32 KB once encoded
        assert instrument.track(Parcel(n=2)).ok

    assert result.ok  # production mode: accepted at the call, dropped (and reported) by the worker
    assert instrument.flush(5.0)
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == [0, 2]
    [error] = errors
    assert isinstance(error, OversizeError)
    assert error.track == "Parcel"
    assert error.size > error.limit == 32 << 10
    assert error.largest[0][0] == "blob"
    stats = instrument.stats()
    assert (stats.sent, stats.dropped["oversize"]) == (2, 1)


def test_truncatable_field_is_cut_so_the_event_arrives(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure()

    with analytics_scope(user_id="u1"):
        assert instrument.track(Letter(n=0, text="y" * 50_000)).ok

    assert instrument.flush(5.0)
    [message] = endpoint.messages
    assert message["properties"]["text"].endswith("[truncated]")
    assert errors == []


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([30_000] * 40, id="uniform-30KB"),
        # 20 x 23.7 KB = 474 KB, just under Segment's client cut (475 KB), then a 32 KB one: the
        # Segment Consumer alone would post ~506 KB.
        pytest.param(([23_700] * 20 + [32_000]) * 3, id="just-under-the-cut-then-32KB"),
    ],
)
def test_large_messages_arrive_in_post_bodies_under_500_kb(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError], sizes: list[int]
) -> None:
    configure(flush_interval=0.3)
    overhead = len(Parcel.__name__)  # keep each message under 32 KB: about 200 bytes of envelope
    with analytics_scope(user_id="u1"):
        for n, size in enumerate(sizes):
            assert instrument.track(Parcel(n=n, blob="z" * (size - 200 - overhead))).ok

    assert instrument.flush(10.0)
    assert errors == []
    assert_exactly_once(endpoint, len(sizes))
    body_sizes = [int(batch.headers["Content-Length"]) for batch in endpoint.batches]
    assert max(body_sizes) < MAX_BATCH_BYTES, body_sizes
    assert len(body_sizes) > 2  # the test really made several large batches


# -- faults -------------------------------------------------------------------------------------------


def test_5xx_then_recovery_delivers_once_and_counts_retries(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=ONE_BATCH)
    endpoint.fail_next(2, 503)

    emit(10)

    assert instrument.flush(10.0)
    assert_exactly_once(endpoint, 10)
    rejected = endpoint.rejected
    assert [b.retry_count for b in rejected] == [0, 1]
    assert endpoint.batches[-1].retry_count == 2
    stats = instrument.stats()
    assert stats.retried == sum(len(b.messages) for b in rejected) == 20
    assert (stats.sent, stats.dropped_total, stats.pending) == (10, 0, 0)
    assert errors == []


def test_429_with_retry_after_is_delivered_after_the_wait(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=ONE_BATCH)
    endpoint.fail_next(1, 429, headers={"Retry-After": "1"})

    emit(5)

    assert instrument.flush(10.0)
    assert_exactly_once(endpoint, 5)
    [refused] = endpoint.rejected
    [accepted] = endpoint.batches
    assert accepted.received_at - refused.received_at >= 0.9  # the full Retry-After was waited
    assert accepted.retry_count == 0  # a rate-limited resend is a new upload for the Segment client
    stats = instrument.stats()
    assert (stats.sent, stats.retried, stats.dropped_total) == (5, 5, 0)
    assert errors == []


def test_hung_request_is_retried_and_each_event_arrives_with_one_message_id(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(timeout=0.5, flush_interval=ONE_BATCH)
    endpoint.hang_next(1, 1.5)

    emit(5)

    assert instrument.flush(10.0)
    # The server still accepts the hung request after the client timed out and resent: the same
    # five messageIds arrive twice. That duplicate is the endpoint's; the toolkit sent each once.
    assert endpoint.wait_for(10, timeout=5.0)
    assert endpoint.unique_message_ids == 5
    assert endpoint.message_count == 10
    assert sorted({m["properties"]["n"] for m in endpoint.messages}) == list(range(5))
    stats = instrument.stats()
    assert (stats.sent, stats.retried, stats.dropped_total) == (5, 5, 0)
    assert errors == []


def test_connection_refused_then_endpoint_back_within_the_retry_window_delivers(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=ONE_BATCH)
    endpoint.stop()

    emit(8)
    assert not instrument.flush(0.5)  # hands the 8 over as one batch; the Consumer retries it
    time.sleep(0.5)  # retries: at once, after 0.5 s, after 1 s...
    endpoint.start()

    assert instrument.flush(15.0)
    assert_exactly_once(endpoint, 8)
    stats = instrument.stats()
    assert stats.sent == 8
    assert stats.retried >= 8  # at least one retry of the one batch
    assert stats.retried % 8 == 0
    assert stats.dropped_total == 0
    assert errors == []


def test_persistent_failure_past_max_retries_is_dropped_counted_and_reported(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(max_retries=1, flush_interval=ONE_BATCH)
    endpoint.fail_next(50, 500)

    emit(6)

    # Finished (given up on, pending 0 below), but not delivered: flush says so.
    assert not instrument.flush(10.0)
    assert endpoint.message_count == 0
    assert len(endpoint.rejected) == 2  # the first attempt and one retry
    stats = instrument.stats()
    assert (stats.sent, stats.dropped["delivery_failed"], stats.pending) == (0, 6, 0)
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert error.count == 6
    assert "500" in error.reason
    assert_invariant(stats)


def test_endpoint_down_past_the_retry_window_is_dropped_counted_and_reported(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(retry_window=0.2, flush_interval=ONE_BATCH)
    endpoint.stop()

    emit(4)

    assert not instrument.flush(10.0)  # lost, so not delivered
    stats = instrument.stats()
    assert (stats.sent, stats.dropped["delivery_failed"], stats.pending) == (0, 4, 0)
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert error.count == 4
    assert "refused" in error.reason.lower() or "connect" in error.reason.lower()
    endpoint.start()
    assert endpoint.message_count == 0


def test_400_is_not_retried_and_is_reported_at_once(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=ONE_BATCH)
    endpoint.fail_next(1, 400)

    emit(3)

    assert not instrument.flush(5.0)  # refused for good: not delivered
    assert endpoint.request_count == 1
    stats = instrument.stats()
    assert (stats.sent, stats.retried, stats.dropped["delivery_failed"]) == (0, 0, 3)
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert "400" in error.reason


def test_events_after_recovery_are_delivered_once(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=0.1)
    endpoint.fail_next(3, 502)

    emit(20)
    assert instrument.flush(10.0)
    emit(20, start=20)
    assert instrument.flush(10.0)

    assert_exactly_once(endpoint, 40)
    assert instrument.stats().sent == 40
    assert errors == []
