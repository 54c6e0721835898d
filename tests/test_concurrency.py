"""Many producers at once (threads, asyncio tasks), each in its own analytics_scope: every event arrives
at the endpoint, under one messageId, carrying its own scope fields, and ``forget()`` may run meanwhile.

Delivery is at least once: a batch whose request was cut (a slow endpoint under load) is sent again
with the same messageIds, so the endpoint may see a message twice; only then. The tests count unique
messageIds, and allow a duplicate only for a message that was retried.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

import instrument
from instrument import AnalyticsError, Client, EventName, Track, analytics_scope
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(120)

WRITE_KEY = "wk-concurrency"
THREADS = 8
PER_THREAD = 10_000
TASKS = 1_000
PER_TASK = 5


class Events(EventName):
    WORK_DONE = "Work Done"


class WorkDone(Track, event=Events.WORK_DONE, scope="project"):
    worker: str
    n: int


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


def check_every_event_once_with_its_own_scope(endpoint: SegmentEndpoint, expected: dict[str, int]) -> None:
    """``expected`` maps a worker name to how many events it emitted; user/project derive from the name."""
    received = endpoint.messages
    by_id = {m["messageId"]: m for m in received}
    assert len(by_id) == sum(expected.values())  # every event, counted by unique messageId
    duplicates = len(received) - len(by_id)
    assert duplicates <= instrument.stats().retried  # a message arrives twice only if it was sent again
    seen: Counter[tuple[str, int]] = Counter()
    for message in by_id.values():
        props = message["properties"]
        worker = props["worker"]
        assert message["userId"] == f"user-{worker}", message
        assert props["project_id"] == f"project-{worker}", message
        seen[(worker, props["n"])] += 1
    assert set(seen.values()) == {1}  # no (worker, n) under two messageIds
    assert all(0 <= n < expected[worker] for worker, n in seen)
    assert Counter(worker for worker, _ in seen) == expected  # so each worker's 0..count-1, all there


def test_threads_each_in_their_own_scope_deliver_every_event_once(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(max_queue_size=200_000, batch_size=500)
    start = threading.Barrier(THREADS)

    def produce(name: str) -> None:
        with analytics_scope(user_id=f"user-{name}", project_id=f"project-{name}"):
            start.wait()
            for n in range(PER_THREAD):
                if not instrument.track(WorkDone(worker=name, n=n)).ok:
                    raise AssertionError(f"{name}: event {n} refused")

    threads = [threading.Thread(target=produce, args=(f"t{i}",)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60.0)
    assert not any(thread.is_alive() for thread in threads)

    assert instrument.flush(60.0)
    total = THREADS * PER_THREAD
    stats = instrument.stats()
    assert stats.dropped_total == 0, dict(stats.dropped)
    assert stats.recorded == stats.sent == total
    assert errors == []
    check_every_event_once_with_its_own_scope(endpoint, {f"t{i}": PER_THREAD for i in range(THREADS)})


async def test_asyncio_tasks_each_in_their_own_scope_deliver_every_event_once(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(max_queue_size=200_000, batch_size=500)

    async def produce(name: str) -> None:
        async with analytics_scope(user_id=f"user-{name}", project_id=f"project-{name}"):
            for n in range(PER_TASK):
                assert instrument.track(WorkDone(worker=name, n=n)).ok
                await asyncio.sleep(0)  # interleave with the other tasks between events

    await asyncio.gather(*(produce(f"a{i}") for i in range(TASKS)))

    assert await instrument.aflush(30.0)
    stats = instrument.stats()
    assert stats.dropped_total == 0, dict(stats.dropped)
    assert stats.recorded == stats.sent == TASKS * PER_TASK
    assert errors == []
    check_every_event_once_with_its_own_scope(endpoint, {f"a{i}": PER_TASK for i in range(TASKS)})


def test_forget_while_other_threads_record_never_raises_and_every_other_event_arrives(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    endpoint.hang_next(1, 1.0)  # the first request waits: the queue is long while forget() runs
    configure(max_queue_size=200_000, batch_size=500, timeout=5.0)
    names = ("t0", "t1", "gone")
    start = threading.Barrier(len(names) + 1)

    def produce(name: str) -> None:
        with analytics_scope(user_id=f"user-{name}", project_id=f"project-{name}"):
            start.wait()
            for n in range(PER_THREAD * 2):
                if not instrument.track(WorkDone(worker=name, n=n)).ok:
                    raise AssertionError(f"{name}: event {n} refused")

    threads = [threading.Thread(target=produce, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    start.wait()
    forgotten, calls = 0, 0
    deadline = time.monotonic() + 60.0
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline:
        forgotten += instrument.forget("user-gone")  # raised "deque mutated during iteration" before
        calls += 1
    for thread in threads:
        thread.join(10.0)
    assert not any(thread.is_alive() for thread in threads)
    assert calls > 1

    assert instrument.flush(60.0)
    stats = instrument.stats()
    assert stats.lost["forgotten"] == forgotten
    assert stats.recorded == len(names) * PER_THREAD * 2
    assert stats.sent + forgotten == stats.recorded  # the ledger: nothing else lost
    assert stats.pending == 0
    assert errors == []
    by_id = {m["messageId"]: m for m in endpoint.messages}
    assert len(by_id) == stats.sent
    kept = Counter(m["properties"]["worker"] for m in by_id.values())
    assert kept["gone"] == PER_THREAD * 2 - forgotten  # what the worker had taken before a forget()
    assert kept["t0"] == kept["t1"] == PER_THREAD * 2  # every event of the others, each once
    assert {m["properties"]["n"] for m in by_id.values() if m["properties"]["worker"] == "t0"} == set(
        range(PER_THREAD * 2)
    )
