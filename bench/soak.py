"""Soak: a million events through the real Segment transport to a local endpoint, nothing lost.

    PYTHONPATH=. .venv/bin/python bench/soak.py            # 1,000,000 events
    PYTHONPATH=. .venv/bin/python bench/soak.py --quick    # 20,000 events

The endpoint runs in a child process (its set of a million messageIds would otherwise dominate the
peak RSS, and decoding requests would compete for this process's GIL); ``--in-process`` keeps it here.
The producer records events in a loop, pacing itself when the pipeline falls behind (it waits while
more than ``--max-pending`` events are recorded but not yet delivered, as a service under a steady
load would), then flushes. Reports recorded / delivered / dropped, throughput and peak RSS, and exits
non-zero unless every recorded event was delivered exactly once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import instrument
from instrument import AnalyticsError, EventName, Track, analytics_scope
from instrument.testing import SegmentEndpoint

WRITE_KEY = "wk-soak"


class Events(EventName):
    SOAK_RECORDED = "Soak Recorded"


class SoakEvent(Track, event=Events.SOAK_RECORDED, scope="project"):
    n: int
    kind: str
    ratio: float
    tags: list[str]


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _serve(conn: Connection) -> None:
    """Child process: a counting endpoint answering "count" and "stop" over ``conn``."""
    with SegmentEndpoint(keep_messages=False) as endpoint:
        conn.send(endpoint.url)
        while True:
            command = conn.recv()
            if command == "count":
                conn.send((endpoint.unique_message_ids, endpoint.message_count, endpoint.request_count))
            else:
                break


class Endpoint:
    """A counting SegmentEndpoint, in this process or in a child process."""

    def __init__(self, in_process: bool) -> None:
        self._local: SegmentEndpoint | None = None
        self._conn: Connection | None = None
        self._proc: Any = None
        if in_process:
            self._local = SegmentEndpoint(keep_messages=False)
            self._local.start()
            self.url = self._local.url
        else:
            context = multiprocessing.get_context("spawn")
            self._conn, child = context.Pipe()
            self._proc = context.Process(target=_serve, args=(child,), daemon=True)
            self._proc.start()
            self.url = str(self._conn.recv())

    def counts(self) -> tuple[int, int, int]:
        """(unique messageIds, messages, requests) received so far."""
        if self._local is not None:
            ep = self._local
            return ep.unique_message_ids, ep.message_count, ep.request_count
        assert self._conn is not None
        self._conn.send("count")
        unique, messages, requests = self._conn.recv()
        return int(unique), int(messages), int(requests)

    def stop(self) -> None:
        if self._local is not None:
            self._local.stop()
        if self._conn is not None:
            self._conn.send("stop")
            self._proc.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to send (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="send 20,000 events")
    parser.add_argument("--batch-size", type=int, default=100, help="messages per request (default 100)")
    parser.add_argument("--max-pending", type=int, default=20_000, help="pace the producer above this backlog")
    parser.add_argument("--flush-timeout", type=float, default=300.0, help="seconds for the final flush")
    parser.add_argument("--in-process", action="store_true", help="run the endpoint in this process")
    args = parser.parse_args(argv)
    total = 20_000 if args.quick else args.events

    errors: Counter[str] = Counter()
    errors_lock = threading.Lock()

    def on_error(error: AnalyticsError) -> None:
        with errors_lock:
            errors[type(error).__name__] += 1

    rss_before = peak_rss_mb()
    endpoint = Endpoint(args.in_process)
    try:
        instrument.configure(
            WRITE_KEY,
            host=endpoint.url,
            batch_size=args.batch_size,
            max_queue_size=max(10_000, 2 * args.max_pending),
            flush_interval=0.2,
            timeout=10.0,
            on_error=on_error,
        )
        started = time.perf_counter()
        paced = 0.0
        tags = ["alpha", "beta"]
        with analytics_scope(user_id="soak-user", project_id=42):
            for n in range(total):
                instrument.track(SoakEvent(n=n, kind="steady", ratio=n / total, tags=tags))
                if n % 1_000 == 999:
                    while instrument.stats().pending > args.max_pending:
                        wait_start = time.perf_counter()
                        time.sleep(0.005)
                        paced += time.perf_counter() - wait_start
        produced = time.perf_counter() - started
        flushed = instrument.flush(args.flush_timeout)
        elapsed = time.perf_counter() - started
        stats = instrument.stats()
        delivered, arrived, requests = endpoint.counts()
        instrument.shutdown(5.0)
    finally:
        endpoint.stop()

    ok = flushed and delivered == stats.recorded == total and arrived == delivered and stats.dropped_total == 0
    print(f"events            {total:,}")
    print(f"recorded          {stats.recorded:,}")
    print(f"sent (counted)    {stats.sent:,}")
    print(f"delivered         {delivered:,} unique messageIds ({arrived:,} messages, {requests:,} requests)")
    print(f"dropped           {stats.dropped_total:,} { {k: v for k, v in stats.dropped.items() if v} }")
    print(f"retried           {stats.retried:,}")
    print(f"errors reported   {dict(errors) or 0}")
    print(f"producing         {produced:.1f} s ({paced:.1f} s paced), {total / produced:,.0f} events/s recorded")
    print(f"end to end        {elapsed:.1f} s, {delivered / elapsed:,.0f} events/s delivered")
    where = "endpoint in this process" if args.in_process else "endpoint in a child process, not counted"
    print(f"peak RSS          {peak_rss_mb():.1f} MiB (before the run: {rss_before:.1f} MiB; {where})")
    print("OK" if ok else "FAILED: not every recorded event was delivered exactly once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
