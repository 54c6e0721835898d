"""Rate-limited reporting: bursts become one line plus a summary, and the summary is always printed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import instrument
from instrument import AnalyticsError, EventName, MemoryTransport, QueueFullError, Track
from instrument._reporting import RateLimitedLog, Reporter, close_all, reset_all
from instrument.testing import SegmentEndpoint
from instrument.transports._segment import _scrubber

pytestmark = pytest.mark.timeout(60)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "instrument"]


def _burst(log: RateLimitedLog, n: int) -> None:
    for i in range(n):
        log.report(QueueFullError(f"queue full: event {i} dropped"))


def test_a_burst_logs_the_first_error_then_a_summary_after_the_interval_without_a_further_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "instrument")
    log = RateLimitedLog(interval=0.3)
    _burst(log, 999)
    assert _lines(caplog) == ["analytics: QueueFullError: queue full: event 0 dropped"]
    deadline = time.monotonic() + 20
    while len(_lines(caplog)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _lines(caplog)[1] == (
        "analytics: QueueFullError: 998 more QueueFullError since the last report; "
        "the latest: queue full: event 998 dropped"
    )
    time.sleep(0.5)
    assert len(_lines(caplog)) == 2  # printed once: nothing left to summarise
    log.close()
    assert len(_lines(caplog)) == 2


def test_the_summary_is_printed_at_close_before_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "instrument")
    log = RateLimitedLog(interval=3600)
    _burst(log, 5)
    log.close()
    assert _lines(caplog) == [
        "analytics: QueueFullError: queue full: event 0 dropped",
        "analytics: QueueFullError: 4 more QueueFullError since the last report; "
        "the latest: queue full: event 4 dropped",
    ]


def test_after_the_interval_the_next_error_is_logged_with_the_count_since_the_last_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "instrument")
    log = RateLimitedLog(interval=0.2)
    log.report(QueueFullError("first"))
    log._kinds["QueueFullError"].last -= 1.0  # the interval has passed (no timer was started: nothing suppressed)
    log.report(QueueFullError("second"))
    assert _lines(caplog) == ["analytics: QueueFullError: first", "analytics: QueueFullError: second"]
    log.close()


class Events(EventName):
    PROJECT_CREATED = "Project Created"


class ProjectCreated(Track, event=Events.PROJECT_CREATED, scope="project"):
    name: str


def test_shutdown_prints_the_summary_of_the_drops_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "instrument")
    instrument.configure(transport=MemoryTransport(), strict=False)
    for _ in range(50):
        assert not instrument.track(ProjectCreated(name="x")).ok  # no scope bound: dropped, reported
    assert len(_lines(caplog)) == 1
    instrument.shutdown(1.0)
    lines = _lines(caplog)
    assert len(lines) == 2, lines
    assert lines[1].startswith("analytics: ScopeError: 49 more ScopeError since the last report; the latest: ")


def test_repeated_configure_calls_keep_the_key_filter_bounded() -> None:
    for i in range(100):
        client = instrument.configure(f"wk-{i:03d}", host="http://127.0.0.1:9")
        client.shutdown(0)
    keys = _scrubber.keys
    assert len(keys) <= _scrubber.MAX_KEYS
    assert keys[-1] == "wk-099"  # the most recent keys are the ones kept
    segment_filters = logging.getLogger("segment").filters
    assert segment_filters.count(_scrubber) == 1
    assert len(segment_filters) == 1


def test_the_summary_is_printed_at_interpreter_exit_without_an_explicit_shutdown(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import instrument
            from instrument import EventName, Track


            class Events(EventName):
                PROJECT_CREATED = "Project Created"


            class ProjectCreated(Track, event=Events.PROJECT_CREATED, scope="project"):
                name: str


            instrument.configure(transport=instrument.MemoryTransport())
            for _ in range(999):
                instrument.track(ProjectCreated(name="x"))  # no scope bound: each is dropped
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "INSTRUMENT_STRICT"}
    run = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=60, env=env
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("analytics: ScopeError")]
    assert len(lines) == 2, run.stderr
    assert lines[1].startswith("analytics: ScopeError: 998 more ScopeError since the last report")


# -- the one channel: on_error, else the log; the hooks reach every log ---------------------------------


def test_a_client_s_channel_gives_every_error_to_on_error_and_logs_a_handler_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[AnalyticsError] = []
    Reporter(seen.append).error(QueueFullError("one"))
    assert [str(e) for e in seen] == ["one"]

    def broken(error: AnalyticsError) -> None:
        raise RuntimeError("handler bug")

    with caplog.at_level(logging.WARNING, "instrument"):
        Reporter(broken).error(QueueFullError("two"))  # never raises into the pipeline
    assert any("on_error handler raised while reporting QueueFullError" in line for line in _lines(caplog))


def test_a_report_made_inside_deferred_reaches_the_handler_when_the_outermost_deferred_ends() -> None:
    seen: list[str] = []
    reporter = Reporter(lambda error: seen.append(str(error)))
    with reporter.deferred():
        reporter.error(QueueFullError("one"))
        with reporter.deferred():
            reporter.error(QueueFullError("two"))
        assert seen == []  # held while a lock the handler could need may be held
    assert seen == ["one", "two"]
    reporter.error(QueueFullError("three"))
    assert seen == ["one", "two", "three"]


def test_an_error_from_the_handler_s_own_analytics_call_is_logged_and_never_re_enters_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def handler(error: AnalyticsError) -> None:
        calls.append(str(error))
        reporter.error(QueueFullError("raised by what the handler did"))  # its own track() failing

    reporter = Reporter(handler)
    with caplog.at_level(logging.WARNING, "instrument"):
        reporter.error(QueueFullError("first"))
        reporter.error(QueueFullError("second"))  # the handler is entered again once it has returned
    assert calls == ["first", "second"]
    assert _lines(caplog)[0] == "analytics: QueueFullError: raised by what the handler did"


def test_a_sync_client_s_handler_that_records_an_event_gets_the_failure_and_the_call_returns(
    configure,  # type: ignore[no-untyped-def]
    endpoint: SegmentEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The sync client sends one event at a time under a lock, and reported a failure under it: a handler
    # that recorded an event waited for that lock on the same thread, and the business call never returned.
    endpoint.fail_next(10, 400)  # not retried: each request fails at once
    handled: list[AnalyticsError] = []

    def on_error(error: AnalyticsError) -> None:
        handled.append(error)
        with instrument.analytics_scope(user_id="ops", project_id=1):
            instrument.track(ProjectCreated(name="failure seen"))  # fails too: logged, not handed back

    configure(sync=True, on_error=on_error, max_retries=0)
    results: list[instrument.EmitResult] = []

    def business_call() -> None:
        with instrument.analytics_scope(user_id="u1", project_id=2):
            results.append(instrument.track(ProjectCreated(name="p")))

    with caplog.at_level(logging.WARNING, "instrument"):
        call = threading.Thread(target=business_call, daemon=True)
        call.start()
        call.join(20.0)
        assert not call.is_alive(), "track() never returned: the handler waited for the sync client's lock"
    (result,) = results
    assert isinstance(result.error, instrument.DeliveryError)
    assert [type(error) for error in handled] == [instrument.DeliveryError]  # once: no recursion
    assert any("could not be delivered" in line for line in _lines(caplog))  # the handler's own event
    stats = instrument.stats()
    assert stats.recorded == 2
    assert stats.lost["delivery_failed"] == 2


def test_one_call_at_exit_says_what_every_log_still_suppresses(caplog: pytest.LogCaptureFixture) -> None:
    logs = [RateLimitedLog(interval=3600), RateLimitedLog(interval=3600)]
    with caplog.at_level(logging.WARNING, "instrument"):
        for log in logs:
            _burst(log, 3)
        caplog.clear()
        close_all()
    reset_all()  # the logs of other clients in this process are open again
    assert (
        _lines(caplog).count(
            "analytics: QueueFullError: 2 more QueueFullError since the last report; "
            "the latest: queue full: event 2 dropped"
        )
        == 2
    )
