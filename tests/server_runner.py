"""Serve ``tests/asgi_server_app.py`` with a real server in a subprocess, load it, stop it with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from itertools import count
from pathlib import Path

import requests

from instrument.testing import SegmentEndpoint

TESTS = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(base: str, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1][-3000:])
        try:
            if requests.get(base + "/hit/0", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError("the server did not start serving in time")


def serve_load_and_terminate(
    command: list[str], port: int, endpoint: SegmentEndpoint, answered_first: int = 150
) -> set[int]:
    """Start the server, load it from 4 threads, SIGTERM it under load; the ids whose request got a 200.

    Request 0 is the readiness probe (it records too). The signal comes once ``answered_first`` requests
    got their 200 (at most 30 s in; the load goes on meanwhile and after). The load keeps going until the
    server stops answering, or for 3 s after the signal (a server waits for busy keep-alive connections,
    then kills its workers after its graceful timeout, as a load balancer would have drained them by then).
    """
    env = {**os.environ, "ENDPOINT": endpoint.url, "PYTHONPATH": f"{TESTS}{os.pathsep}{PROJECT_ROOT}"}
    env.pop("INSTRUMENT_STRICT", None)
    process = subprocess.Popen(command, env=env, cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    ok: set[int] = set()
    try:
        _wait_until_serving(base, process, time.monotonic() + 60)
        ok.add(0)
        ids, terminated, lock = count(1), threading.Event(), threading.Lock()

        def load() -> None:
            with requests.Session() as session:
                while True:
                    n = next(ids)
                    try:
                        answered = session.get(f"{base}/hit/{n}", timeout=10).status_code == 200
                    except requests.RequestException:
                        answered = False
                    if answered:
                        with lock:
                            ok.add(n)
                    elif terminated.is_set() or n > 100_000:
                        return
                    if terminated.is_set() and time.monotonic() > stop_by:
                        return  # drained: clients stop sending to a server that is shutting down

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        loaded_by = time.monotonic() + 30
        while len(ok) < answered_first and time.monotonic() < loaded_by and process.poll() is None:
            time.sleep(0.02)
        stop_by = time.monotonic() + 3.0
        process.send_signal(signal.SIGTERM)
        terminated.set()
        for thread in threads:
            thread.join(60)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    return ok
