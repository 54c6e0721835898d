"""Handlers that return and are frozen or ended: ``deliver_on_return`` delivers before the return.

The Lambda-style test freezes a real process (SIGSTOP) right after each of 1,000 returns and checks, while
it is frozen, that everything it recorded has arrived at a loopback endpoint; at the end it is killed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import instrument
from instrument import EventName, Track, analytics_scope, deliver_on_return
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(300)
TESTS = Path(__file__).resolve().parent


class Events(EventName):
    INVOICE_SENT = "Invoice Sent"


class InvoiceSent(Track, event=Events.INVOICE_SENT):
    pass


def start_handler(runs: int, url: str, **extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENDPOINT": url, "PYTHONPATH": str(TESTS.parent), **extra}
    env.pop("INSTRUMENT_STRICT", None)
    return subprocess.Popen([sys.executable, str(TESTS / "shortlived_handler.py"), str(runs)], env=env)


def wait_until_frozen(child: subprocess.Popen[bytes]) -> None:
    _, status = os.waitpid(child.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the handler process ended before its invocation returned"


def test_a_handler_frozen_right_after_each_of_1000_returns_has_delivered_every_event_by_then(
    endpoint: SegmentEndpoint,
) -> None:
    runs = 1000
    child = start_handler(runs, endpoint.url)
    try:
        for n in range(runs):
            wait_until_frozen(child)
            # Frozen: nothing of this process runs now, so what arrived was delivered before the return.
            assert len(endpoint.messages) == n + 1, f"invocation {n}: {len(endpoint.messages)} events arrived"
            if n == runs - 1:
                child.kill()  # the last freeze ends as a runtime ends a process: no exit hook runs
            else:
                os.kill(child.pid, signal.SIGCONT)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
    assert endpoint.unique_message_ids == runs
    assert {m["userId"] for m in endpoint.messages} == {f"user-{n}" for n in range(runs)}


def test_with_a_spool_what_could_not_be_sent_in_time_is_delivered_by_the_next_invocation(
    endpoint: SegmentEndpoint, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")
    with socket.socket() as closed:  # nothing listens here: the first invocation cannot deliver
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}"
    first = start_handler(1, unreachable, SPOOL=spool, TAG="cold", DELIVER_TIMEOUT="0.5")
    try:
        wait_until_frozen(first)
    finally:
        first.kill()  # the runtime ends the frozen process: no exit hook runs
        first.wait(10)
    second = start_handler(1, endpoint.url, SPOOL=spool, TAG="warm")
    try:
        wait_until_frozen(second)
        assert endpoint.wait_for(2, timeout=30)
    finally:
        second.kill()
        second.wait(10)
    assert sorted(m["userId"] for m in endpoint.messages) == ["cold-0", "warm-0"]


def test_the_decorator_and_both_context_managers_deliver_before_returning(endpoint: SegmentEndpoint) -> None:
    instrument.configure("wk", host=endpoint.url, flush_interval=30.0)

    @deliver_on_return()
    def sync_handler() -> str:
        instrument.track(InvoiceSent(user_id=1))
        return "ok"

    @deliver_on_return()
    async def async_handler() -> str:
        instrument.track(InvoiceSent(user_id=2))
        return "ok"

    async def async_block() -> None:
        async with deliver_on_return():
            instrument.track(InvoiceSent(user_id=4))

    assert sync_handler() == "ok"
    assert len(endpoint.messages) == 1
    assert asyncio.run(async_handler()) == "ok"
    assert len(endpoint.messages) == 2
    with deliver_on_return(), analytics_scope(user_id=3):
        instrument.track(InvoiceSent())
    assert len(endpoint.messages) == 3
    asyncio.run(async_block())
    assert [m["userId"] for m in endpoint.messages] == ["1", "2", "3", "4"]


def test_a_handler_that_raises_still_delivers_and_its_exception_goes_on(endpoint: SegmentEndpoint) -> None:
    instrument.configure("wk", host=endpoint.url, flush_interval=30.0)

    @deliver_on_return()
    def failing() -> None:
        instrument.track(InvoiceSent(user_id=1))
        raise KeyError("business failure")

    with pytest.raises(KeyError):
        failing()
    assert len(endpoint.messages) == 1


def test_what_cannot_be_delivered_in_time_is_said_once(
    endpoint: SegmentEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    instrument.configure("wk", host=endpoint.url, flush_interval=30.0, timeout=5.0)
    endpoint.fail_next(50)
    with caplog.at_level(logging.WARNING, logger="instrument"):
        for _ in range(3):
            with deliver_on_return(timeout=0.1):
                instrument.track(InvoiceSent(user_id=1))
    said = [r for r in caplog.records if "before the handler returned" in r.getMessage()]
    assert len(said) == 1
    assert "configure a spool" in said[0].getMessage()


def test_under_uwsgi_without_enable_threads_each_request_has_delivered_its_event_when_it_is_answered(
    endpoint: SegmentEndpoint,
) -> None:
    uwsgi = Path(sys.executable).with_name("uwsgi")
    assert uwsgi.exists(), "uWSGI is missing: the test extra installs it (pip install -e '.[test]')"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ENDPOINT": endpoint.url, "PYTHONPATH": str(TESTS.parent)}
    env.pop("INSTRUMENT_STRICT", None)
    command = [str(uwsgi), "--http-socket", f"127.0.0.1:{port}", "--wsgi-file", str(TESTS / "uwsgi_app.py")]
    server = subprocess.Popen([*command, "--master", "--processes", "1", "--die-on-term"], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/hit/0", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        for n in range(1, 6):
            assert requests.get(f"http://127.0.0.1:{port}/hit/{n}", timeout=10).status_code == 200
            assert len(endpoint.messages) == n + 1  # delivered before the response was sent
    finally:
        server.terminate()
        server.wait(30)
