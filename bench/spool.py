"""What the durable spool costs: process CPU per delivered event, spool off vs on vs on with fsync.

``python bench/spool.py [--quick] [--events N] [--repeats R]``. Each run is a fresh process that
records N scoped tracks, flushes until the local endpoint (its own process) has them all, and reports
``time.process_time()`` over the whole process (caller, worker, spool writes, HTTP) divided by N.
Variants run interleaved, ``--repeats`` times each; the figure is the median. Exits 1 if a run lost
events. ``spool_rows`` gives run.py its rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VARIANTS = ("off", "on", "fsync")
LABELS = {
    "off": "spool off",
    "on": "spool on (write, no fsync)",
    "fsync": "spool on, fsync=True",
}


def worker(variant: str, url: str, events: int) -> dict[str, Any]:
    """Record ``events`` with the spool ``variant``, flush; report process CPU and wall time."""
    import instrument
    from bench import cases
    from instrument import QueueFullError, Spool, analytics_scope

    directory = tempfile.mkdtemp(prefix="instrument-spool-bench-")
    try:
        spool: Spool | None = None
        if variant != "off":
            spool = Spool(directory, max_bytes=1 << 30, fsync=variant == "fsync")
        instrument.configure(cases.WRITE_KEY, host=url, flush_interval=0.5, spool=spool, on_error=lambda error: None)
        cls, ct, infra = cases.ClusterProvisioningSuccess, cases.CLUSTER_TYPE, cases.INFRA_ID
        refused = 0
        cpu, wall = time.process_time(), time.perf_counter()
        with analytics_scope(user_id=cases.USER_ID, project_id=cases.PROJECT_ID, cluster_id=cases.CLUSTER_ID):
            for _ in range(events):
                event = cls(cluster_type=ct, infra_id=infra)
                while not (result := instrument.track(event)).ok:
                    if not isinstance(result.error, QueueFullError):
                        raise RuntimeError(f"refused: {result.error!r}")
                    refused += 1
                    time.sleep(0.001)
        if not instrument.flush(600.0):
            raise RuntimeError("flush timed out")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = instrument.stats()
        left = sorted(p.name for p in Path(directory).iterdir())
        instrument.shutdown(10.0)
        report = {"variant": variant, "events": events, "cpu": cpu, "wall": wall, "sent": stats.sent, "left": left}
        return {**report, "retried": stats.retried, "refused": refused}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_worker(variant: str, url: str, events: int) -> dict[str, Any]:
    from bench.e2e import json_report

    return json_report(__file__, "--worker", variant, "--url", url, "--events", str(events), timeout=1800)


def measure(url: str, endpoint: Any, events: int, repeats: int) -> tuple[dict[str, list[float]], bool]:
    """Per variant, the CPU µs per delivered event of each run; and whether every run delivered all."""
    per_event: dict[str, list[float]] = {v: [] for v in VARIANTS}
    complete = True
    for r in range(repeats):
        order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
        for variant in order:
            endpoint.clear()
            report = run_worker(variant, url, events)
            endpoint.wait_for(events, 30.0)
            _, unique, _ = endpoint.counts()
            if unique != events or report["sent"] != events:
                complete = False
            per_event[variant].append(report["cpu"] / events * 1e6)
    return per_event, complete


def spool_rows(url: str, endpoint: Any, events: int, repeats: int) -> tuple[list[tuple[str, str, str, str]], bool]:
    """(label, median, spread, note) per variant, and whether every event arrived."""
    per_event, complete = measure(url, endpoint, events, repeats)
    base = statistics.median(per_event["off"])
    rows = []
    for variant in VARIANTS:
        values = per_event[variant]
        med = statistics.median(values)
        note = "" if variant == "off" else f"+{med - base:.2f} µs per event over spool off"
        rows.append(
            (
                f"process CPU per delivered event, {LABELS[variant]}",
                f"{med:.2f} µs",
                f"min {min(values):.2f}, max {max(values):.2f} over {len(values)} runs of {events:,}",
                f"{med / base:.3f}x spool off" + (f"; {note}" if note else ""),
            )
        )
    return rows, complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the durable spool's cost per delivered event")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None, help="events per run (100,000; quick 5,000)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant (5; quick 1)")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    events = args.events or (5_000 if args.quick else 100_000)
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, events)))
        return 0
    from bench.e2e import EndpointProcess

    endpoint = EndpointProcess()
    try:
        rows, complete = spool_rows(endpoint.url, endpoint, events, args.repeats or (1 if args.quick else 5))
    finally:
        endpoint.close()
    print("| case | median | spread | note |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not complete:
        print("# FAIL: a run lost events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
