"""What ``deliver_on_return`` adds to a short-lived handler's latency (Lambda, Cloud Functions, CLI).

``python bench/shortlived.py [--quick] [--invocations N]``. A fresh process runs a handler that records
one scoped event, N times plain and N times under ``@deliver_on_return()``, interleaved, against a
local Segment endpoint in its own process; each invocation is timed with ``perf_counter``. The added
latency is the decorated median minus the plain median (one HTTP round trip to the endpoint per
invocation: here loopback, in production the distance to Segment). ``shortlived_rows`` gives run.py
its rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def worker(url: str, invocations: int) -> dict[str, Any]:
    """Time ``invocations`` plain and decorated handler calls; every event must arrive."""
    import instrument
    from bench import cases
    from instrument import analytics_scope, deliver_on_return

    instrument.configure("bench-key", host=url, flush_interval=30.0)

    def plain(n: int) -> int:
        with analytics_scope(user_id=n, project_id=cases.PROJECT_ID, cluster_id=cases.CLUSTER_ID):
            instrument.track(cases.ClusterProvisioningSuccess(cluster_type="eks", infra_id=n))
        return n

    decorated = deliver_on_return(timeout=10.0)(plain)
    timings: dict[str, list[float]] = {"plain": [], "delivered": []}
    for n in range(invocations):
        for name, handler in (("plain", plain), ("delivered", decorated)):
            started = time.perf_counter()
            handler(n)
            timings[name].append((time.perf_counter() - started) * 1e6)
    complete = instrument.flush(30.0)
    return {"timings": timings, "complete": complete}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def shortlived_rows(url: str, invocations: int) -> tuple[list[tuple[str, str, str, str]], bool]:
    """(label, median, spread, note) for the plain and the decorated handler, and whether all arrived."""
    from bench.e2e import json_report

    report = json_report(__file__, "--worker", "--url", url, "--invocations", str(invocations), timeout=600)
    plain, delivered = report["timings"]["plain"], report["timings"]["delivered"]
    base = statistics.median(plain)
    rows = []
    for label, values in (("handler latency, plain track", plain), ("handler latency, @deliver_on_return", delivered)):
        med = statistics.median(values)
        note = "" if values is plain else f"+{med - base:.0f} µs per invocation (one loopback round trip)"
        spread = f"p99 {_percentile(values, 0.99):.0f} µs over {len(values):,} invocations"
        rows.append((label, f"{med:.0f} µs", spread, note))
    return rows, bool(report["complete"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the handler latency deliver_on_return adds")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--invocations", type=int, default=None, help="per variant (2,000; quick 200)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    invocations = args.invocations or (200 if args.quick else 2_000)
    if args.worker:
        print(json.dumps(worker(args.url, invocations)))
        return 0
    from bench.e2e import EndpointProcess

    endpoint = EndpointProcess()
    try:
        rows, complete = shortlived_rows(endpoint.url, invocations)
    finally:
        endpoint.close()
    print("| case | median | spread | note |")
    print("|---|---|---|---|")
    for label, value, spread, note in rows:
        print(f"| {label} | {value} | {spread} | {note} |")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
