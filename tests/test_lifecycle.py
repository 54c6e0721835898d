"""Exit, flush/shutdown bounds, asyncio and fork, against the local endpoint.

Exit and fork run in real subprocesses (the interpreter's own atexit, a real os.fork()).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import instrument
from instrument import AnalyticsError, Client, ClosedError, EventName, Track, analytics_scope
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(90)

WRITE_KEY = "wk-lifecycle"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Events(EventName):
    BEAT_SENT = "Beat Sent"


class Beat(Track, event=Events.BEAT_SENT):
    n: int


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


def emit(count: int, user: str = "u1", start: int = 0) -> None:
    with analytics_scope(user_id=user):
        for n in range(start, start + count):
            assert instrument.track(Beat(n=n)).ok


# -- subprocesses ---------------------------------------------------------------------------------------

SCRIPT_HEAD = """
import json, os, sys, time
import instrument
from instrument import EventName, Track, analytics_scope

class Events(EventName):
    BEAT_SENT = "Beat Sent"

class Beat(Track, event=Events.BEAT_SENT):
    n: int

URL = sys.argv[1]

def beats(user, numbers):
    with analytics_scope(user_id=user):
        for n in numbers:
            instrument.track(Beat(n=n))
"""


def run_script(
    tmp_path: Path, body: str, url: str, timeout: float = 30.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT_HEAD + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("INSTRUMENT_STRICT", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), url], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done, time.monotonic() - started


def test_process_that_simply_returns_delivers_every_event_at_exit(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    done, _ = run_script(
        tmp_path,
        """
        instrument.configure("wk-exit", host=URL, flush_interval=30.0)
        beats("exiting", range(1000))
        # no flush: the atexit handler delivers
        """,
        endpoint.url,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert endpoint.unique_message_ids == 1000
    assert endpoint.message_count == 1000
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == list(range(1000))


def test_short_script_emitting_a_few_events_delivers_them_at_exit(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    done, _ = run_script(
        tmp_path,
        """
        instrument.configure("wk-exit", host=URL)
        beats("cli", range(3))
        """,
        endpoint.url,
    )

    assert done.returncode == 0, done.stderr
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == [0, 1, 2]


def test_endpoint_down_at_exit_exits_within_the_bound_and_logs_the_loss(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    endpoint.stop()  # the port is known: connections are refused

    done, elapsed = run_script(
        tmp_path,
        """
        instrument.configure("wk-exit", host=URL, exit_timeout=1, flush_interval=30.0)
        beats("exiting", range(100))
        """,
        endpoint.url,
    )

    assert done.returncode == 0, done.stderr
    assert elapsed < 10.0
    assert re.search(r"\b100 event\(s\) could not be delivered before shutdown", done.stderr), done.stderr
    # The exit message is the ledger: how many were accepted, delivered and lost, and why.
    assert "100 accepted: 0 delivered, 100 lost (shutdown 100)" in done.stderr, done.stderr
    assert "wk-exit" not in done.stderr


def test_the_exit_message_counts_what_was_delivered_and_what_was_lost(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    endpoint.fail_next(1, 400)  # the first batch is refused for good: lost before exit

    done, _ = run_script(
        tmp_path,
        """
        instrument.configure("wk-exit", host=URL, exit_timeout=5, flush_interval=30.0)
        beats("exiting", range(20))
        instrument.flush(5)
        beats("exiting", range(20, 50))
        # no flush: the atexit handler delivers the 30, then says what became of all 50
        """,
        endpoint.url,
    )

    assert done.returncode == 0, done.stderr
    assert "at exit: 50 accepted: 30 delivered, 20 lost (delivery_failed 20)" in done.stderr, done.stderr
    assert endpoint.unique_message_ids == 30


def test_fork_child_and_parent_each_deliver_their_own_events_once(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    done, _ = run_script(
        tmp_path,
        """
        instrument.configure("wk-fork", host=URL, flush_interval=30.0, batch_size=1000)
        with analytics_scope(user_id="parent"):
            for n in range(10):
                instrument.track(Beat(n=n))
            assert instrument.flush(5)  # a pooled keep-alive connection now exists in the parent
            for n in range(10, 60):
                instrument.track(Beat(n=n))  # recorded, not flushed at the fork
        transport = instrument.get_client().dispatcher.transport
        assert transport._poster._conn is not None  # a pooled keep-alive connection of the parent's
        pid = os.fork()
        if pid == 0:
            code = 0
            if transport._poster._conn is not None:
                code = 4  # the parent's socket would be shared
            beats("child", range(30))
            if not instrument.flush(5):
                code = 3
            stats = instrument.stats()
            if (stats.recorded, stats.sent) != (30, 30):
                code = 5
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        ok = instrument.flush(5)
        print(json.dumps({"child": os.waitstatus_to_exitcode(status), "parent_flush": ok,
                          "parent_sent": instrument.stats().sent}))
        """,
        endpoint.url,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"child": 0, "parent_flush": True, "parent_sent": 60}
    by_user: dict[str, list[int]] = {}
    for message in endpoint.messages:
        by_user.setdefault(message["userId"], []).append(message["properties"]["n"])
    assert sorted(by_user["parent"]) == list(range(60))  # once each: the child did not resend them
    assert sorted(by_user["child"]) == list(range(30))
    assert endpoint.message_count == endpoint.unique_message_ids == 90


# -- flush and shutdown are bounded and idempotent ------------------------------------------------------


def test_flush_on_a_hung_endpoint_returns_false_within_its_timeout_then_delivers(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure(timeout=5.0)
    endpoint.hang_next(1, 2.0)
    emit(5)

    started = time.monotonic()
    assert instrument.flush(0.3) is False
    assert time.monotonic() - started < 1.5

    assert instrument.flush(10.0) is True
    assert instrument.flush(10.0) is True  # nothing left: at once
    assert endpoint.unique_message_ids == 5


def test_shutdown_is_bounded_counts_the_loss_and_a_second_shutdown_is_a_no_op(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(timeout=5.0, flush_interval=30.0)  # the 5 events travel as one (hung) batch
    endpoint.hang_next(1, 3.0)
    emit(5)
    assert instrument.flush(0.2) is False  # the request is in flight

    started = time.monotonic()
    lost = instrument.shutdown(0.3)
    assert time.monotonic() - started < 2.0
    assert lost == 5
    assert instrument.shutdown(0.3) == 0

    with analytics_scope(user_id="u1"):
        result = instrument.track(Beat(n=99))
    assert not result.ok
    assert isinstance(result.error, ClosedError)
    assert isinstance(errors[-1], ClosedError)
    stats = instrument.stats()
    assert (stats.recorded, stats.dropped["shutdown"], stats.dropped["closed"], stats.pending) == (6, 5, 1, 0)
    assert stats.recorded == stats.sent + stats.dropped_total
    # The hung request is accepted by the server later; the counters stay settled (no double count).
    assert endpoint.wait_for(5, timeout=5.0)
    assert instrument.stats() == stats


def test_shutdown_delivers_what_is_queued_when_the_endpoint_answers(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure(flush_interval=30.0, batch_size=1000)
    emit(250)

    assert instrument.shutdown(5.0) == 0
    assert endpoint.unique_message_ids == endpoint.message_count == 250
    stats = instrument.stats()
    assert (stats.sent, stats.dropped_total, stats.pending) == (250, 0, 0)


def test_when_no_thread_can_be_started_flush_and_shutdown_deliver_on_their_own_thread(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Python 3.12+ does at interpreter exit (atexit handlers): no new thread may start.
    real_start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name.startswith("instrument"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    configure(max_retries=3)
    endpoint.fail_next(1, 503)

    emit(5)  # never raises into the caller
    assert instrument.flush(5.0)
    assert endpoint.unique_message_ids == endpoint.message_count == 5
    emit(3, start=5)
    assert instrument.shutdown(5.0) == 0
    assert endpoint.unique_message_ids == endpoint.message_count == 8
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.retried, stats.dropped_total) == (8, 8, 5, 0)


# -- asyncio ---------------------------------------------------------------------------------------------


async def _ticks_while(awaitable: Any) -> tuple[Any, int]:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        result = await awaitable
    finally:
        stop.set()
        await task
    return result, ticks


async def test_aflush_waits_for_a_slow_endpoint_without_blocking_the_event_loop(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure(timeout=5.0)
    endpoint.hang_next(1, 1.0)
    emit(5)

    ok, ticks = await _ticks_while(instrument.aflush(10.0))

    assert ok is True
    assert endpoint.unique_message_ids == 5
    assert ticks >= 20  # the loop kept running during the ~1 s wait (a blocking flush gives 1)


async def test_ashutdown_waits_for_a_slow_endpoint_without_blocking_the_event_loop(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    configure(timeout=5.0)
    endpoint.hang_next(1, 1.0)
    emit(5)

    lost, ticks = await _ticks_while(instrument.ashutdown(10.0))

    assert lost == 0
    assert endpoint.unique_message_ids == 5
    assert ticks >= 20


def test_events_lost_at_shutdown_are_reported_to_on_error_too(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], errors: list[AnalyticsError]
) -> None:
    configure(flush_interval=30.0, retry_window=60.0)
    endpoint.stop()

    emit(5)
    lost = instrument.shutdown(0.5)

    assert lost == 5
    shutdown = [e for e in errors if isinstance(e, instrument.DeliveryError) and e.reason == "shutdown"]
    assert [e.count for e in shutdown] == [5]
    assert instrument.stats().dropped["shutdown"] == 5


def test_the_sigterm_message_says_how_many_were_delivered_and_how_many_are_not(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    endpoint.hang_next(1, 5.0)  # the first batch is stuck past the handler's timeout

    done, _ = run_script(
        tmp_path,
        """
        import signal
        instrument.configure("wk-term", host=URL, flush_interval=30.0, timeout=10.0)
        instrument.install_sigterm_handler(timeout=0.5)
        beats("terminated", range(10))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        """,
        endpoint.url,
    )

    assert done.returncode == -15, done.stderr
    assert "SIGTERM: not everything was delivered within 0.5 s: 10 accepted: 0 delivered, 0 lost, 10 pending" in (
        done.stderr
    ), done.stderr
