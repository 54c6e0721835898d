"""The opt-in SIGTERM handler: deliver within the timeout, then do what the previous handler did.

Each case is a real process sent a real SIGTERM, delivering to a real loopback endpoint.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import instrument
from instrument import ConfigurationError
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(90)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Fewer than a batch (100): the worker is not woken before its 60 s interval, so nothing is sent
#: before the signal unless the handler flushes.
EVENTS = 50

HEAD = """
import os, signal, sys, time
import instrument
from instrument import EventName, Track, analytics_scope

class Events(EventName):
    BEAT_SENT = "Beat Sent"

class Beat(Track, event=Events.BEAT_SENT):
    n: int

URL = sys.argv[1]
# A long flush interval: nothing is sent before the signal, unless the handler flushes.
instrument.configure("wk-sigterm", host=URL, flush_interval=60.0, timeout=1.0)
"""

RECORD = f"""
with analytics_scope(user_id="term"):
    for n in range({EVENTS}):
        assert instrument.track(Beat(n=n)).ok
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
print("survived", flush=True)
"""


def start(tmp_path: Path, body: str, url: str) -> subprocess.Popen[str]:
    script = tmp_path / "script.py"
    script.write_text(HEAD + body + RECORD)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("INSTRUMENT_STRICT", None)
    return subprocess.Popen(
        [sys.executable, str(script), url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def terminate_when_ready(proc: subprocess.Popen[str]) -> tuple[str, str]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(30) and proc.stdout.readline() == "ready\n"
    if not ready:
        proc.kill()
        pytest.fail(f"the child did not get ready: {proc.communicate(timeout=10)}")
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)
    finally:
        if proc.returncode is None:  # pragma: no cover - a failure path
            proc.kill()


def test_default_action_delivers_then_dies_by_sigterm(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    proc = start(tmp_path, "instrument.install_sigterm_handler()\n", endpoint.url)
    out, err = terminate_when_ready(proc)
    assert proc.returncode == -signal.SIGTERM, err
    assert "survived" not in out
    assert endpoint.unique_message_ids == EVENTS
    assert sorted(m["properties"]["n"] for m in endpoint.messages) == list(range(EVENTS))


def test_a_sigterm_that_interrupts_the_main_thread_holding_a_lock_the_delivery_needs_still_delivers(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    # The handler runs on the main thread wherever it was: inside the pipeline, holding a lock the
    # delivery takes (waking the worker, say). A handler that waited for the delivery there would
    # deadlock until its timeout and then die with nothing sent (a `with Pool()` worker lost 87 of 100
    # this way). Here the main thread holds the transport's lock for 2 s after the signal.
    body = f"""
import threading
from instrument import SegmentTransport
held = threading.Lock()

class Locked(SegmentTransport):
    def send_batch(self, batch):
        with held:
            return super().send_batch(batch)

instrument.configure(transport=Locked("wk-sigterm", host=URL), flush_interval=60.0, exit_timeout=3.0)
instrument.install_sigterm_handler()
with analytics_scope(user_id="term"):
    for n in range({EVENTS}):
        assert instrument.track(Beat(n=n)).ok
with held:
    print("ready", flush=True)
    time.sleep(2.0)  # the signal arrives in here: its handler must not wait for the delivery
time.sleep(60)
print("survived", flush=True)
"""
    script = tmp_path / "script.py"
    script.write_text(HEAD + body)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("INSTRUMENT_STRICT", None)
    proc = subprocess.Popen(
        [sys.executable, str(script), endpoint.url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = terminate_when_ready(proc)
    assert proc.returncode == -signal.SIGTERM, err
    assert "survived" not in out
    assert endpoint.unique_message_ids == EVENTS, err


def test_without_the_handler_sigterm_loses_what_was_queued(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    # The baseline the handler exists for (and what makes the test above able to fail).
    proc = start(tmp_path, "", endpoint.url)
    terminate_when_ready(proc)
    assert proc.returncode == -signal.SIGTERM
    assert endpoint.message_count == 0


def test_a_previous_python_handler_runs_after_the_delivery(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    body = """
def previous(signum, frame):
    print("previous", signum, instrument.stats().sent, flush=True)
    sys.exit(3)

signal.signal(signal.SIGTERM, previous)
instrument.install_sigterm_handler()
"""
    proc = start(tmp_path, body, endpoint.url)
    out, err = terminate_when_ready(proc)
    assert proc.returncode == 3, err
    assert f"previous {int(signal.SIGTERM)} {EVENTS}" in out
    assert endpoint.unique_message_ids == EVENTS


def test_an_ignored_sigterm_stays_ignored(tmp_path: Path, endpoint: SegmentEndpoint) -> None:
    body = """
signal.signal(signal.SIGTERM, signal.SIG_IGN)
instrument.install_sigterm_handler()
"""
    proc = start(tmp_path, body, endpoint.url)
    proc_out: list[str] = []
    thread = threading.Thread(target=lambda: proc_out.extend(terminate_when_ready(proc)))
    thread.start()
    try:
        assert endpoint.wait_for(EVENTS, timeout=30), "delivered on SIGTERM"
        time.sleep(0.5)
        assert proc.poll() is None, "the process lives on, as SIG_IGN says"
    finally:
        proc.kill()
        thread.join(30)
    assert proc.returncode == -signal.SIGKILL


def test_delivery_is_bounded_by_the_timeout_when_the_endpoint_is_down(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    endpoint.stop()
    proc = start(tmp_path, "instrument.install_sigterm_handler(timeout=1.0)\n", endpoint.url)
    started = time.monotonic()
    terminate_when_ready(proc)
    assert proc.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 15.0


def test_installing_off_the_main_thread_is_a_configuration_error() -> None:
    raised: list[BaseException] = []

    def install() -> None:
        try:
            instrument.install_sigterm_handler()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join(10)
    assert len(raised) == 1
    assert isinstance(raised[0], ConfigurationError)
    assert "main thread" in str(raised[0])


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), True, "5"])
def test_a_bad_timeout_is_a_configuration_error(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be a finite number"):
        instrument.install_sigterm_handler(timeout)  # type: ignore[arg-type]


def test_installing_twice_keeps_one_handler_in_front_of_the_original() -> None:
    original = signal.getsignal(signal.SIGTERM)
    try:
        instrument.install_sigterm_handler()
        first = signal.getsignal(signal.SIGTERM)
        instrument.install_sigterm_handler(timeout=2.0)
        assert signal.getsignal(signal.SIGTERM) is first
        assert first.previous == original  # type: ignore[union-attr]
        assert first.timeout == 2.0  # type: ignore[union-attr]
    finally:
        signal.signal(signal.SIGTERM, original)
