"""Process CPU per delivered event, instrument vs the raw Segment client, and instrument's breakdown.

Each measurement runs in a fresh interpreter: record N events (queues large enough that none is
refused), ``flush()``, and take ``time.process_time()`` over the whole process (every thread). The
endpoint runs in another process (``bench.e2e.EndpointProcess``). Stages of instrument:

- ``caller``: the recording thread's CPU (``time.thread_time()`` around the loop of ``track()`` calls);
- ``encoding``: a run whose transport only counts (no HTTP), minus the caller: the worker's cost of
  turning records into what a transport is handed;
- ``transport``: the full run minus the encoding-only run: batching, the HTTP sender and its thread.
"""

from __future__ import annotations

import time
from typing import Any

from bench.e2e import run_in_subprocess

MODES = ("segment", "instrument", "instrument-null", "floor")


def _floor(url: str, events: int) -> dict[str, Any]:
    """The floor: one thread, ``orjson.dumps`` of a prebuilt message, 100 joined per batch, one
    keep-alive POST per batch. What delivering these events cannot cost less than, in Python."""
    import base64
    import http.client
    import urllib.parse

    import orjson

    from bench import cases

    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port)
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{cases.WRITE_KEY}:".encode()).decode(),
    }
    message = {
        "type": "track",
        "userId": str(cases.USER_ID),
        "event": cases.EVENT,
        "properties": {
            "cluster_type": cases.CLUSTER_TYPE,
            "infra_id": cases.INFRA_ID,
            "project_id": cases.PROJECT_ID,
            "cluster_id": cases.CLUSTER_ID,
        },
        "timestamp": "2026-01-01T00:00:00.000Z",
        "messageId": "00000000-0000-0000-0000-000000000000",
    }
    tail = b'],"sentAt":"2026-01-01T00:00:00.000Z","writeKey":"' + cases.WRITE_KEY.encode() + b'"}'
    start = time.process_time()
    for first in range(0, events, 100):
        body = b'{"batch":[' + b",".join([orjson.dumps(message) for _ in range(min(100, events - first))]) + tail
        conn.request("POST", "/v1/batch", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the endpoint answered {response.status}")
    total = time.process_time() - start
    conn.close()
    return {"mode": "floor", "events": events, "total": total, "caller": total}


def _null_transport() -> Any:
    from instrument.transports import Transport

    class Null(Transport):
        """Counts what it is handed and reports it sent; no I/O."""

        accepts_bytes = True

        def send(self, messages: list[Any]) -> None:
            self._report.sent(len(messages))

        def send_batch(self, batch: Any) -> bool:
            self._report.sent(len(batch))
            return True

    return Null()


def measure(mode: str, url: str, events: int) -> dict[str, Any]:
    """Run one mode in this process; the CPU report (seconds)."""
    from bench import cases

    if mode == "floor":
        return _floor(url, events)
    if mode == "segment":
        client = cases.segment_client(url, max_queue_size=events + 1000, upload_interval=0.5)
        properties = {
            "cluster_type": cases.CLUSTER_TYPE,
            "infra_id": cases.INFRA_ID,
            "project_id": cases.PROJECT_ID,
            "cluster_id": cases.CLUSTER_ID,
        }
        seg_track = client.track
        start, caller_start = time.process_time(), time.thread_time()
        for _ in range(events):
            seg_track(user_id=cases.USER_ID, event=cases.EVENT, properties=dict(properties))
        caller = time.thread_time() - caller_start
        client.flush()
        total = time.process_time() - start
        client.shutdown()
        return {"mode": mode, "events": events, "total": total, "caller": caller}
    import instrument
    from instrument import analytics_scope

    if mode == "instrument":
        cases.configure_instrument(url, max_queue_size=events + 1000, flush_interval=0.5)
    else:
        instrument.configure(transport=_null_transport(), max_queue_size=events + 1000, flush_interval=0.5)
    cls = cases.ClusterProvisioningSuccess
    ct, infra = cases.CLUSTER_TYPE, cases.INFRA_ID
    track = instrument.track
    with analytics_scope(user_id=cases.USER_ID, project_id=cases.PROJECT_ID, cluster_id=cases.CLUSTER_ID):
        start, caller_start = time.process_time(), time.thread_time()
        for _ in range(events):
            track(cls(cluster_type=ct, infra_id=infra))
        caller = time.thread_time() - caller_start
        if not instrument.flush(600.0):
            raise RuntimeError("flush did not complete")
        total = time.process_time() - start
    stats = instrument.stats()
    if stats.sent != events:
        raise RuntimeError(f"sent {stats.sent} of {events}")
    instrument.shutdown(10.0)
    return {"mode": mode, "events": events, "total": total, "caller": caller}


def run_mode(mode: str, url: str, events: int, timeout: float = 600.0) -> dict[str, Any]:
    """``measure`` in a fresh interpreter."""
    return run_in_subprocess("--cpu-worker", mode, url, events, timeout)


def breakdown(url: str, events: int, repeats: int = 5) -> dict[str, float]:
    """Median µs per delivered event (totals of both libraries and instrument's stages), and the median
    of each round's ratios of instrument to the raw client and to the floor."""
    import statistics

    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode in MODES:  # interleaved, so each repeat sees the same machine load
            runs[mode].append(run_mode(mode, url, events))

    def per_event(mode: str, key: str) -> float:
        return float(statistics.median(r[key] / r["events"] * 1e6 for r in runs[mode]))

    def ratios(mode: str, anchor: str) -> list[float]:
        # Each round's own ratio (its runs came one after the other, under the same load); the rows take
        # their median: the machine's speed drifts by 2x within minutes here, and a ratio of medians
        # would set one round's instrument against another round's floor.
        return sorted(a["total"] / b["total"] for a, b in zip(runs[mode], runs[anchor], strict=True))

    full, null = per_event("instrument", "total"), per_event("instrument-null", "total")
    caller = per_event("instrument", "caller")
    floor_ratios = ratios("instrument", "floor")
    return {
        "segment_total": per_event("segment", "total"),
        "segment_caller": per_event("segment", "caller"),
        "floor_total": per_event("floor", "total"),
        "instrument_total": full,
        "caller": caller,
        "encoding": max(0.0, null - per_event("instrument-null", "caller")),
        "transport": max(0.0, full - null),
        "vs_segment": float(statistics.median(ratios("instrument", "segment"))),
        "vs_floor": float(statistics.median(floor_ratios)),
        "vs_floor_min": floor_ratios[0],
        "vs_floor_max": floor_ratios[-1],
    }
