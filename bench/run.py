"""Benchmark instrument against its floor, the raw Segment client and PostHog: ``python bench/run.py``.

Per-call cases run in this one process, interleaved: each round runs every case once (round-robin,
rotated each round) for a calibrated number of calls with ``timeit.Timer``; a case's figure is the
median over rounds of its per-call time. End-to-end delivery runs each library in its own process
against a local Segment endpoint (itself a separate process). See bench/RESULTS.md.

Options: ``--quick`` (every case briefly, for CI), ``--e2e-events N`` (default 1,000,000; quick 20,000),
``--rounds``, ``--round-ms``, ``--profile CASE`` (cProfile one case instead of benchmarking).
Exits 0 whether targets are met or missed; 1 when an e2e run lost events or anything crashed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from bench.cases import Case

MB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A row's goal: ``op`` is "<=" or ">="; the value is a ratio, or MB for RSS rows."""

    op: str
    value: float

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


#: Which row each row is compared with, and the targets from the issue.
REFERENCE = {
    "bare": "bare",
    "functools": "bare",
    "wrapt": "bare",
    "tracks_emit": "segment_track",
    "track_explicit": "segment_track",
    "segment_track": "segment_track",
    "group_explicit": "segment_group",
    "segment_group": "segment_group",
    "posthog_capture": "segment_track",
    "scope": "structlog",
    "structlog": "structlog",
    "contextvar": "structlog",
    "tracks_raise": "wrapt_raise",
    "wrapt_raise": "wrapt_raise",
}
TARGETS = {
    "tracks_emit": Target("<=", 0.10),
    "track_explicit": Target("<=", 0.10),
    "group_explicit": Target("<=", 0.10),
    "scope": Target("<=", 0.25),
    "tracks_raise": Target("<=", 1.5),
    "e2e_instrument": Target(">=", 2.0),
    "rss_instrument": Target("<=", 50.0),
    "cpu_instrument": Target("<=", 0.12),
    "cpu_instrument_floor": Target("<=", 2.0),
    "burst_5kb": Target(">=", 1.0),
    "burst_30kb": Target(">=", 1.0),
    "dest_p99_black_hole": Target("<=", 1.10),
    "dest_cpu_3": Target("<=", 3.0),
}


@dataclass
class Row:
    key: str
    label: str
    value: str
    spread: str
    ratio: float | None
    versus: str
    target: Target | None
    measured_for_target: float | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None or self.measured_for_target is None:
            return ""
        return "PASS" if self.target.met(self.measured_for_target) else "MISS"


def _calibrate(timer: timeit.Timer, case: Case, seconds: float) -> int:
    """Calls per round so one round takes about ``seconds`` (after one untimed call: a one-time cost, such
    as a class's first event compiling something, must not make the rounds a handful of calls)."""
    case.enter()
    try:
        timer.timeit(1)
    finally:
        case.leave()
    case.drain()
    number = 1
    while True:
        case.enter()
        try:
            took = timer.timeit(number)
        finally:
            case.leave()
        case.drain()
        if took >= seconds / 5 or number >= 10_000_000:
            break
        number *= 4 if took < seconds / 50 else 2
    return max(1, round(number * seconds / max(took, 1e-9)))


def run_calls(cases: list[Case], rounds: int, round_seconds: float, warmup: int) -> dict[str, list[float]]:
    """Round-robin over the cases; per case, the per-call seconds of every (non-warm-up) round."""
    # The per-call rows measure the caller thread's own cost (the "caller-thread cost"): its
    # CPU time, so that time the GIL spends in a library's background thread (instrument's worker,
    # Segment's and PostHog's consumers) is not charged to the call. The end-to-end rows count that.
    timers = {
        c.key: timeit.Timer(c.stmt, setup="gc.enable()", timer=time.thread_time, globals={**c.namespace, "gc": gc})
        for c in cases
    }
    numbers = {c.key: _calibrate(timers[c.key], c, round_seconds) for c in cases}
    per_call: dict[str, list[float]] = {c.key: [] for c in cases}
    for r in range(warmup + rounds):
        shift = r % len(cases)
        for case in cases[shift:] + cases[:shift]:
            number = numbers[case.key]
            case.enter()
            try:
                took = timers[case.key].timeit(number)
            finally:
                case.leave()
            case.drain()
            if r >= warmup:
                per_call[case.key].append(took / number)
    return per_call


def _ns(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f} ns"


def call_rows(cases: list[Case], per_call: dict[str, list[float]]) -> list[Row]:
    medians = {key: statistics.median(values) for key, values in per_call.items()}
    rows = []
    for case in cases:
        values = per_call[case.key]
        med = medians[case.key]
        q = statistics.quantiles(values, n=4) if len(values) >= 2 else [med, med, med]
        spread = f"±{(q[2] - q[0]) / 2 / med * 100:.0f}%, min {_ns(min(values))}" if med else ""
        ref = REFERENCE[case.key]
        ratio = med / medians[ref] if medians.get(ref) else None
        target = TARGETS.get(case.key)
        rows.append(
            Row(case.key, case.label, _ns(med), spread, ratio, ref, target, ratio if target is not None else None)
        )
    return rows


def e2e_rows(events: int, url: str, endpoint: Any, timeout: float) -> tuple[list[Row], bool, list[str]]:
    """Run both e2e workers; rows for throughput and RSS, whether every event arrived, and notes."""
    from bench.e2e import run_worker

    reports: dict[str, dict[str, Any]] = {}
    received: dict[str, tuple[int, int, int]] = {}
    complete = True
    for lib in ("instrument", "segment"):
        endpoint.clear()
        reports[lib] = run_worker(lib, url, events, timeout)
        endpoint.wait_for(events, 30.0)
        received[lib] = endpoint.counts()
        if received[lib][1] != events:
            complete = False
    rate = {lib: events / r["seconds"] for lib, r in reports.items()}
    growth = {lib: max(0, r["rss_peak"] - r["rss_base"]) / MB for lib, r in reports.items()}
    rows: list[Row] = []
    for lib, label in (("instrument", "instrument (track(), scoped)"), ("segment", "segment Client.track()")):
        got, unique, requests = received[lib]
        note = f"received {unique:,}/{events:,} unique ({got:,} total, {requests:,} requests)"
        if reports[lib]["refused_retried"]:
            note += f"; {reports[lib]['refused_retried']:,} refused puts retried"
        ratio = rate[lib] / rate["segment"]
        key = f"e2e_{lib}"
        target = TARGETS.get(key)
        rows.append(
            Row(
                key,
                f"e2e delivered/s, {label}",
                f"{rate[lib]:,.0f} ev/s",
                f"{reports[lib]['seconds']:.1f} s",
                ratio,
                "e2e_segment",
                target,
                ratio if target else None,
                note,
            )
        )
    for lib in ("instrument", "segment"):
        key = f"rss_{lib}"
        target = TARGETS.get(key)
        r = reports[lib]
        rows.append(
            Row(
                key,
                f"e2e peak RSS growth, {lib}",
                f"{growth[lib]:.1f} MB",
                "",
                None,
                "",
                target,
                growth[lib] if target else None,
                f"base {r['rss_base'] / MB:.0f} MB, peak {r['rss_peak'] / MB:.0f} MB over {events:,} events",
            )
        )
    notes = [f"{lib}: {json.dumps(r, sort_keys=True)}" for lib, r in reports.items()]
    return rows, complete, notes


def cpu_rows(url: str, events: int, repeats: int) -> list[Row]:
    """Process CPU per delivered event: both libraries side by side, and instrument's stages."""
    from bench.cpu import breakdown

    us = breakdown(url, events, repeats)
    anchor = us["segment_total"]
    note = (
        f"median of {repeats} round(s) of {events:,} events each, every thread of the process; "
        "ratios: the median of each round's own ratio"
    )
    rows = [
        Row(
            "cpu_instrument",
            "process CPU per delivered event, instrument",
            f"{us['instrument_total']:.1f} µs",
            "",
            us["vs_segment"],
            "cpu_segment",
            TARGETS["cpu_instrument"],
            us["vs_segment"],
            note,
        ),
        Row(
            "cpu_instrument_floor",
            "process CPU per delivered event, instrument, as a multiple of the floor",
            f"{us['instrument_total']:.1f} µs",
            f"rounds {us['vs_floor_min']:.2f}-{us['vs_floor_max']:.2f}",
            us["vs_floor"],
            "cpu_floor",
            TARGETS["cpu_instrument_floor"],
            us["vs_floor"],
        ),
        Row(
            "cpu_floor",
            "process CPU per delivered event, the floor (1 thread: orjson.dumps, join 100, keep-alive POST)",
            f"{us['floor_total']:.1f} µs",
            "",
            us["floor_total"] / anchor,
            "cpu_segment",
            None,
            None,
        ),
        Row(
            "cpu_segment",
            "process CPU per delivered event, segment Client.track()",
            f"{anchor:.1f} µs",
            "",
            1.0,
            "cpu_segment",
            None,
            None,
            f"of which its caller's thread {us['segment_caller']:.1f} µs",
        ),
    ]
    stages = (
        ("caller", "the caller's thread (track())"),
        ("encoding", "the worker's encoding (to a no-I/O transport)"),
        ("transport", "batching and HTTP (on the same worker thread)"),
    )
    for key, label in stages:
        rows.append(
            Row(
                f"cpu_{key}",
                f"  of which {label}",
                f"{us[key]:.1f} µs",
                "",
                us[key] / anchor,
                "cpu_segment",
                None,
                None,
            )
        )
    return rows


#: The issue's bursts of large events: (events, bytes of the property), at default settings.
BURSTS = {"burst_5kb": (20_000, 5_000), "burst_30kb": (4_000, 30_000)}


def burst(key: str, url: str, count: int) -> dict[str, Any]:
    """One burst of ``count`` events in this process, at default settings: how many ``track()`` said ok,
    how many were sent."""
    import instrument
    from bench import cases

    size = BURSTS[key][1]
    instrument.configure(write_key=cases.WRITE_KEY, host=url, on_error=lambda error: None)
    blob = "b" * size
    cls = cases.ClusterProvisioningSuccess
    ok = 0
    started = time.perf_counter()
    with instrument.analytics_scope(user_id=cases.USER_ID, project_id=cases.PROJECT_ID, cluster_id=cases.CLUSTER_ID):
        for _ in range(count):
            ok += bool(instrument.track(cls(cluster_type=blob, infra_id=cases.INFRA_ID)))
    delivered = instrument.flush(600.0)
    stats = instrument.stats()
    instrument.shutdown(10.0)
    return {
        "ok": ok,
        "sent": stats.sent,
        "lost": stats.lost_total,
        "flushed": delivered,
        "events": count,
        "seconds": time.perf_counter() - started,
    }


def burst_rows(url: str, endpoint: Any, scale: float = 1.0) -> tuple[list[Row], bool]:
    """Each burst (its events times ``scale``) in a fresh interpreter: received / ok (target: every
    ok'd event received)."""
    from bench.e2e import run_in_subprocess

    rows = []
    complete = True
    for key, (full, size) in BURSTS.items():
        count = max(1, int(full * scale))
        endpoint.clear()
        report = run_in_subprocess("--burst-worker", key, url, count, 600.0)
        endpoint.wait_for(report["ok"], 30.0)
        unique = endpoint.counts()[1]
        ratio = unique / max(1, report["ok"])
        complete = complete and unique >= report["ok"]
        rows.append(
            Row(
                key,
                f"burst of {count:,} events of {size // 1000} KB, default settings: received / ok",
                f"{unique:,} / {report['ok']:,}",
                f"{report['seconds']:.1f} s",
                ratio,
                "ok'd",
                TARGETS[key],
                ratio,
                f"{count - report['ok']:,} refused at the call (QueueFullError), {report['lost']} lost after ok",
            )
        )
    return rows, complete


def destination_rows(cpu_events: int, latency_events: int) -> tuple[list[Row], bool]:
    """Issue 19's rows: p99 latency at 3 destinations with a 4th black-holed vs not (``latency_events``
    at 200/s: 12,000 is the issue's 60 s of black hole); CPU per delivered event, 3 destinations vs 1."""
    from bench import destinations

    base_run = destinations.latency(black_hole=False, events=latency_events)
    holed_run = destinations.latency(black_hole=True, events=latency_events)
    base, base_ok, holed, holed_ok = base_run.p99, base_run.complete, holed_run.p99, holed_run.complete
    one, one_ok = destinations.cpu(1, cpu_events)
    three, three_ok = destinations.cpu(3, cpu_events)
    rows = [
        Row(
            "dest_p99_black_hole",
            "p99 track()-to-receipt, 3 destinations, a 4th black-holed",
            f"{holed * 1000:.1f} ms",
            "",
            holed / base,
            "dest_p99",
            TARGETS["dest_p99_black_hole"],
            holed / base,
            f"{latency_events:,} events at 200/s; the black-holed one got everything after it recovered"
            if holed_ok
            else "EVENTS MISSING",
        ),
        Row(
            "dest_p99",
            "p99 track()-to-receipt, 3 destinations, none black-holed",
            f"{base * 1000:.1f} ms",
            "",
            1.0,
            "dest_p99",
            None,
            None,
        ),
        Row(
            "dest_cpu_3",
            "process CPU per delivered event, 3 destinations",
            f"{three:.1f} µs",
            "",
            three / one,
            "dest_cpu_1",
            TARGETS["dest_cpu_3"],
            three / one,
        ),
        Row(
            "dest_cpu_1",
            "process CPU per delivered event, 1 destination",
            f"{one:.1f} µs",
            "",
            1.0,
            "dest_cpu_1",
            None,
            None,
        ),
    ]
    return rows, base_ok and holed_ok and one_ok and three_ok


def print_table(rows: list[Row]) -> None:
    header = ["case", "median", "spread", "ratio", "vs", "target", "result", "note"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else ""
        cells = [
            row.label,
            row.value,
            row.spread,
            ratio,
            row.versus,
            str(row.target or ""),
            row.verdict,
            row.note,
        ]
        print("| " + " | ".join(cells) + " |")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    python = f"Python {platform.python_version()} ({platform.python_implementation()})"
    return (
        f"{datetime.date.today().isoformat()}, {python}, {platform.system()} {platform.machine()}, "
        f"nproc {os.cpu_count()}, CPU {cpu}"
    )


def profile(case_key: str, seconds: float, url: str) -> None:
    """cProfile ``seconds`` worth of one case (for finding where its time goes)."""
    import cProfile
    import pstats

    from bench import cases as bench_cases

    all_cases, clients = bench_cases.build(url)
    try:
        case = next(c for c in all_cases if c.key == case_key)
        timer = timeit.Timer(case.stmt, globals=case.namespace)
        number = _calibrate(timer, case, seconds)
        prof = cProfile.Profile()
        case.enter()
        prof.enable()
        timer.timeit(number)
        prof.disable()
        case.leave()
        case.drain()
        print(f"{case.label}: {number:,} calls")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    finally:
        clients.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="instrument benchmarks (see bench/RESULTS.md)")
    parser.add_argument("--quick", action="store_true", help="every case briefly (CI proof that it runs)")
    parser.add_argument("--e2e-events", type=int, default=None, help="events per e2e run (1,000,000; quick 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default 60; quick 7)")
    parser.add_argument("--round-ms", type=float, default=None, help="target ms per case per round (5; quick 2)")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end rows")
    parser.add_argument("--profile", metavar="CASE", help="cProfile one case (a key, e.g. tracks_emit) and exit")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--e2e-worker", choices=["instrument", "segment"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpu-worker", choices=["segment", "instrument", "instrument-null", "floor"], help=argparse.SUPPRESS
    )
    parser.add_argument("--burst-worker", choices=list(BURSTS), help=argparse.SUPPRESS)
    parser.add_argument("--dest-cpu-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-destinations", action="store_true", help="skip the destinations rows")
    parser.add_argument("--cpu-events", type=int, default=None, help="events per CPU run (100,000; quick 10,000)")
    parser.add_argument("--cpu-only", action="store_true", help="only the process-CPU rows")
    args = parser.parse_args(argv)

    from bench import e2e

    if args.serve:
        e2e.serve()
        return 0
    if args.e2e_worker:
        print(json.dumps(e2e.worker(args.e2e_worker, args.url, args.e2e_events)))
        return 0
    if args.cpu_worker:
        from bench import cpu

        print(json.dumps(cpu.measure(args.cpu_worker, args.url, args.e2e_events)))
        return 0
    if args.dest_cpu_worker:
        from bench import destinations

        print(json.dumps(destinations.cpu_worker(args.dest_cpu_worker, args.url, args.e2e_events)))
        return 0
    if args.burst_worker:
        print(json.dumps(burst(args.burst_worker, args.url, args.e2e_events)))
        return 0

    quick = args.quick
    rounds = args.rounds or (7 if quick else 60)
    round_s = (args.round_ms or (2.0 if quick else 5.0)) / 1000
    events = args.e2e_events or (20_000 if quick else 1_000_000)

    endpoint = e2e.EndpointProcess()
    try:
        if args.cpu_only:
            table = cpu_rows(endpoint.url, args.cpu_events or (10_000 if quick else 100_000), 1 if quick else 5)
            print_table(table)
            return 0
        if args.profile:
            profile(args.profile, 2.0, endpoint.url)
            return 0
        from bench import cases as bench_cases

        started = time.perf_counter()
        print(f"# instrument benchmarks ({'quick' if quick else 'full'}): {machine()}")
        print(f"# per-call: {rounds} interleaved rounds of ~{round_s * 1000:g} ms per case, median per call")
        sys.stdout.flush()
        all_cases, clients = bench_cases.build(endpoint.url)
        try:
            per_call = run_calls(all_cases, rounds, round_s, warmup=2 if quick else 3)
        finally:
            clients.close()
        rows = call_rows(all_cases, per_call)
        complete = True
        notes: list[str] = []
        cpu_events = args.cpu_events or (10_000 if quick else 100_000)
        print(f"# process CPU: {cpu_events:,} events per run, each library in its own process")
        sys.stdout.flush()
        rows += cpu_rows(endpoint.url, cpu_events, 1 if quick else 5)
        if not args.no_e2e:
            print(f"# e2e: {events:,} events per library, each in its own process")
            sys.stdout.flush()
            e2e_table, complete, notes = e2e_rows(events, endpoint.url, endpoint, timeout=3600.0)
            rows += e2e_table
            burst_table, bursts_complete = burst_rows(endpoint.url, endpoint, 0.1 if quick else 1.0)
            rows += burst_table
            complete = complete and bursts_complete
            from bench import spool  # the durable spool's cost (bench/spool.py); no targets: it is off by default

            spool_table, spool_complete = spool.spool_rows(
                endpoint.url, endpoint, 2_000 if quick else 100_000, 1 if quick else 5
            )
            keys = [f"spool_{variant}" for variant in spool.VARIANTS]
            rows += [
                Row(key, label, value, spread, None, "", None, None, note)
                for key, (label, value, spread, note) in zip(keys, spool_table, strict=True)
            ]
            complete = complete and spool_complete
            from bench import shortlived  # deliver_on_return's added handler latency (bench/shortlived.py)

            short_table, short_complete = shortlived.shortlived_rows(endpoint.url, 200 if quick else 2_000)
            rows += [
                Row(f"shortlived_{i}", *cells[:3], None, "", None, None, cells[3])
                for i, cells in enumerate(short_table)
            ]
            complete = complete and short_complete
        if not args.no_destinations:
            print("# destinations: black-holed latency, CPU with 3 destinations vs 1")
            sys.stdout.flush()
            dest_table, dest_complete = destination_rows(2_000 if quick else 50_000, 200 if quick else 12_000)
            rows += dest_table
            complete = complete and dest_complete
        print()
        print_table(rows)
        print()
        for note in notes:
            print(f"# {note}")
        missed = [r.label for r in rows if r.verdict == "MISS"]
        print(f"# targets: {sum(r.verdict == 'PASS' for r in rows)} PASS, {len(missed)} MISS")
        print(f"# total {time.perf_counter() - started:.1f} s")
        if not complete:
            print("# FAIL: an end-to-end run lost events", file=sys.stderr)
            return 1
        return 0
    finally:
        endpoint.close()


if __name__ == "__main__":
    sys.exit(main())
