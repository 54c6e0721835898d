"""End-to-end delivery and the local endpoint, each in its own process.

``serve`` runs a SegmentEndpoint (counts only) in a process of its own, answering commands on stdin,
so that decoding requests never competes with the measured process for its GIL. ``worker`` produces
events with one library in a fresh process and reports throughput and peak RSS for that library alone.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: How long a producer sleeps when the queue refuses an event before it retries the same event.
BACKOFF = 0.001
#: The bounded queue both libraries get in e2e (both default to 10,000).
E2E_QUEUE = 10_000

_RUN = Path(__file__).resolve().parent / "run.py"


def serve() -> None:
    """Serve a counting SegmentEndpoint until stdin closes. Commands: count, clear, wait N SECONDS, quit."""
    from instrument.testing import SegmentEndpoint

    endpoint = SegmentEndpoint(keep_messages=False)
    endpoint.start()
    print(endpoint.url, flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            command = words[0]
            if command == "count":
                print(f"{endpoint.message_count} {endpoint.unique_message_ids} {endpoint.request_count}", flush=True)
            elif command == "clear":
                endpoint.clear()
                print("ok", flush=True)
            elif command == "wait":
                ok = endpoint.wait_for(int(words[1]), float(words[2]))
                print("ok" if ok else "timeout", flush=True)
            elif command == "quit":
                break
    finally:
        endpoint.stop()


class EndpointProcess:
    """The parent's handle on a ``serve`` process."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(_RUN), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._read()

    def _read(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the endpoint process exited")
        return line.strip()

    def _ask(self, command: str) -> str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._read()

    def counts(self) -> tuple[int, int, int]:
        """(messages accepted, distinct messageIds, requests)."""
        messages, unique, requests = (int(x) for x in self._ask("count").split())
        return messages, unique, requests

    def clear(self) -> None:
        self._ask("clear")

    def wait_for(self, count: int, timeout: float) -> bool:
        return self._ask(f"wait {count} {timeout}") == "ok"

    def close(self) -> None:
        try:
            self._ask("quit")
        except (OSError, RuntimeError):
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def worker(lib: str, url: str, events: int) -> dict[str, Any]:
    """Produce ``events`` with ``lib`` ("instrument" or "segment"), wait until all are delivered; report."""
    from bench import cases

    if lib == "instrument":
        import instrument
        from instrument import QueueFullError, analytics_scope

        cases.configure_instrument(url, max_queue_size=E2E_QUEUE, flush_interval=0.5)
        track = instrument.track
        cls = cases.ClusterProvisioningSuccess
        ct, infra = cases.CLUSTER_TYPE, cases.INFRA_ID
        refused = 0
        base = _rss()
        with analytics_scope(user_id=cases.USER_ID, project_id=cases.PROJECT_ID, cluster_id=cases.CLUSTER_ID):
            start = time.perf_counter()
            for _ in range(events):
                event = cls(cluster_type=ct, infra_id=infra)
                while True:
                    result = track(event)
                    if result.ok:
                        break
                    if not isinstance(result.error, QueueFullError):
                        raise RuntimeError(f"instrument refused an event: {result.error!r}")
                    refused += 1
                    time.sleep(BACKOFF)
            produced = time.perf_counter()
            if not instrument.flush(600.0):
                raise RuntimeError("instrument.flush timed out")
            delivered = time.perf_counter()
        stats = instrument.stats()
        extra: dict[str, Any] = {"sent": stats.sent, "dropped_counted": stats.dropped_total}
        instrument.shutdown(10.0)
    elif lib == "segment":
        client = cases.segment_client(url, max_queue_size=E2E_QUEUE, upload_interval=0.5)
        seg_track = client.track
        properties = {
            "cluster_type": cases.CLUSTER_TYPE,
            "infra_id": cases.INFRA_ID,
            "project_id": cases.PROJECT_ID,
            "cluster_id": cases.CLUSTER_ID,
        }
        refused = 0
        base = _rss()
        start = time.perf_counter()
        for _ in range(events):
            while True:
                ok, _msg = seg_track(user_id=cases.USER_ID, event=cases.EVENT, properties=dict(properties))
                if ok:
                    break
                refused += 1
                time.sleep(BACKOFF)
        produced = time.perf_counter()
        client.flush()
        delivered = time.perf_counter()
        client.shutdown()
        extra = {}
    else:
        raise ValueError(f"unknown library {lib!r}")
    return {
        "lib": lib,
        "events": events,
        "produce_seconds": produced - start,
        "seconds": delivered - start,
        "refused_retried": refused,
        "rss_base": base,
        "rss_peak": _peak_rss(),
        **extra,
    }


def json_report(script: str | Path, *args: str, timeout: float) -> dict[str, Any]:
    """Run ``script ARGS`` in a fresh interpreter and return the JSON report it prints last;
    RuntimeError (with its output) if it fails."""
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        name = Path(script).name
        raise RuntimeError(f"{name} {' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def run_in_subprocess(flag: str, name: str, url: str, events: int, timeout: float) -> dict[str, Any]:
    """Run ``bench/run.py FLAG NAME`` in a fresh interpreter and return the JSON report it prints last."""
    return json_report(_RUN, flag, name, "--url", url, "--e2e-events", str(events), timeout=timeout)


def run_worker(lib: str, url: str, events: int, timeout: float) -> dict[str, Any]:
    """Run ``worker`` in a fresh interpreter and return its report."""
    return run_in_subprocess("--e2e-worker", lib, url, events, timeout)
