"""capture_events(): routing to memory, strict mode, restoring state, the decorator (instrument/testing/_capture.py)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import unittest
from collections.abc import Iterator
from typing import Any

import pytest
from kit_catalog import (
    CLUSTER,
    ClusterProvisioningError,
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    ReportSaved,
    emit_cluster_success,
)

import instrument
from instrument import (
    EncodingError,
    PropertyError,
    ScopeError,
    analytics_scope,
    bind_scope,
    current_scope,
    tracks,
)
from instrument.testing import AnalyticsAssertionError, CapturedEvents, SegmentEndpoint, capture_events
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(60)


def test_capture_restores_client_strict_mode_and_scope_on_exit() -> None:
    before = instrument.get_client()
    assert instrument.get_client().strict is False
    token = bind_scope(user_id=5)
    try:
        with capture_events():
            assert instrument.get_client() is not before
            assert instrument.get_client().strict is True
            assert current_scope() == {"user_id": 5}  # the bound scope still applies inside
            bind_scope(project_id=6)  # never reset by the code under test
        assert instrument.get_client() is before
        assert instrument.get_client().strict is False
        assert dict(current_scope()) == {"user_id": 5}
    finally:
        instrument.reset_scope(token)


def test_capture_restores_everything_when_the_block_raises() -> None:
    before = instrument.get_client()

    def scenario() -> None:
        with capture_events():
            bind_scope(user_id=1, project_id=2)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        scenario()
    assert instrument.get_client() is before
    assert instrument.get_client().strict is False
    assert dict(current_scope()) == {}


def test_capture_restores_a_strict_previous_client() -> None:
    strict_client = instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    with capture_events(strict=False):
        assert instrument.get_client().strict is False
    assert instrument.get_client() is strict_client
    assert instrument.get_client().strict is True


def test_capture_restores_when_a_strict_violation_raises_inside() -> None:
    before = instrument.get_client()
    with pytest.raises(ScopeError), capture_events():
        instrument.track(ClusterProvisioningSuccess(infra_id=1, cluster_type="eks"))
    assert instrument.get_client() is before
    assert instrument.get_client().strict is False


def test_nested_captures_route_events_to_the_innermost_and_restore_the_outer() -> None:
    with capture_events() as outer:
        emit_cluster_success(infra_id=1)
        with capture_events() as inner:
            emit_cluster_success(infra_id=2)
        emit_cluster_success(infra_id=3)
    assert [e.properties["infra_id"] for e in outer] == [1, 3]
    assert [e.properties["infra_id"] for e in inner] == [2]


def test_entering_an_active_capture_again_raises() -> None:
    capture = capture_events()
    with capture, pytest.raises(RuntimeError, match="already active"), capture:
        pass


# -- nothing leaves the process -------------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[SegmentEndpoint]:
    with SegmentEndpoint() as ep:
        yield ep


def test_nothing_reaches_the_network_while_capturing_and_the_previous_client_still_works(
    endpoint: SegmentEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "env-key")
    real = instrument.configure(host=endpoint.url, flush_interval=0.05)
    assert isinstance(real.dispatcher.transport, instrument.SegmentTransport)
    with capture_events() as events:
        emit_cluster_success(infra_id=1)
        assert instrument.flush(2)
    assert len(events) == 1
    emit_cluster_success(infra_id=2)
    assert instrument.flush(10)
    assert endpoint.wait_for(1, timeout=10)
    assert [m["properties"]["infra_id"] for m in endpoint.messages] == [2]
    assert instrument.get_client() is real


def test_configure_called_while_capturing_is_captured_and_undone(endpoint: SegmentEndpoint) -> None:
    before = instrument.get_client()
    with capture_events() as events:
        configured = instrument.configure(
            "key", host=endpoint.url, flush_interval=0.05, wire_keys={"project_id": "proj_id"}
        )
        emit_cluster_success(infra_id=1)
        assert instrument.get_client().strict is True
        assert instrument.flush(2)
    assert instrument.get_client() is before
    assert events[0].properties == {"infra_id": 1, "cluster_type": "eks", "proj_id": 2, "cluster_id": 3}
    events.assert_tracked(ClusterProvisioningSuccess, project_id=2)
    assert configured.dispatcher._closed
    assert endpoint.message_count == 0


def test_capture_uses_the_configured_wire_keys_and_redaction() -> None:
    def redact(event: str, props: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if k != "cluster_type"}

    instrument.configure(transport=MemoryTransport(), wire_keys={"project_id": "proj_id"}, redact=redact)
    with capture_events() as events:
        emit_cluster_success()
    assert events[0].properties == {"infra_id": 4, "proj_id": 2, "cluster_id": 3}


# -- threads and asyncio tasks -------------------------------------------------------------------------


def test_capture_sees_events_from_real_threads() -> None:
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait(timeout=10)
        with analytics_scope(user_id=n, project_id=n, cluster_id=n):
            for i in range(25):
                instrument.track(ClusterProvisioningSuccess(infra_id=n * 100 + i, cluster_type="eks"))

    with capture_events() as events:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert len(events) == 200
    for n in range(8):
        mine = [e for e in events if e.user_id == str(n)]
        assert [e.properties["infra_id"] for e in mine] == [n * 100 + i for i in range(25)]
        assert all(e.properties["cluster_id"] == n for e in mine)


async def test_capture_sees_events_from_asyncio_tasks_each_with_its_own_scope() -> None:
    async def request(n: int) -> None:
        async with analytics_scope(user_id=n, project_id=n * 10):
            await asyncio.sleep(0.001 * (5 - n))
            instrument.track(ClusterProvisioningStarted(infra_id=n))

    with capture_events() as events:
        await asyncio.gather(*(asyncio.create_task(request(n)) for n in range(5)))
    assert len(events) == 5
    for e in events:
        assert e.properties["project_id"] == int(e.user_id) * 10 == e.properties["infra_id"] * 10


# -- strict mode: violations raise at the call -------------------------------------------------------


def test_missing_scope_field_raises_at_the_call() -> None:
    with (
        capture_events() as events,
        analytics_scope(user_id=1, project_id=2),
        pytest.raises(ScopeError, match="cluster_id"),
    ):
        instrument.track(ClusterProvisioningSuccess(infra_id=1, cluster_type="eks"))
    assert len(events) == 0


def test_bad_property_raises_at_the_call() -> None:
    with capture_events(), analytics_scope(**CLUSTER):
        with pytest.raises(PropertyError, match="infra_id"):
            instrument.track(ClusterProvisioningSuccess(infra_id="four", cluster_type="eks"))  # type: ignore[arg-type]
        with pytest.raises(PropertyError, match="unknown property"):
            instrument.track(ClusterProvisioningSuccess(infra_id=1, cluster_type="eks", colour="red"))  # type: ignore[call-arg]


def test_unknown_event_name_raises_when_decorating() -> None:
    with capture_events(), pytest.raises(instrument.EventNameError):

        @tracks("cluster provisioned")
        def provision() -> None:
            pass


def test_nan_in_a_list_property_raises_at_the_call() -> None:
    # A mock would happily record this; Segment's JSON encoding would not survive it.
    with capture_events() as events, analytics_scope(user_id=1), pytest.raises(EncodingError, match=r"values\[1\]"):
        instrument.track(ReportSaved(values=[1.0, math.nan]))
    assert len(events) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"extra": [1, object()]}, {"anything": object()}, {"anything": {"when": {1, 2}, "bad": float("inf")}}],
    ids=["list-object", "any", "nested-inf"],
)
def test_value_without_an_encoding_rule_raises_at_the_call(kwargs: dict[str, Any]) -> None:
    with capture_events() as events, analytics_scope(user_id=1), pytest.raises(EncodingError):
        instrument.track(ReportSaved(values=[1.0], **kwargs))
    assert len(events) == 0


def test_encoding_error_raises_at_the_call_of_a_tracks_decorated_function() -> None:
    @tracks(ReportSaved)
    def save(values: list[float], anything: Any) -> str:
        return "saved"

    with capture_events() as events, analytics_scope(user_id=1):
        with pytest.raises(EncodingError, match="anything"):
            save([1.0], object())
        with pytest.raises(EncodingError, match="values"):
            save([math.inf], None)
        assert save([2.0], {"ok": True}) == "saved"
    events.assert_tracked(ReportSaved, exact=True, values=[2.0], extra=[], anything={"ok": True})
    assert len(events) == 1


async def test_encoding_error_raises_at_the_call_of_an_async_tracks_decorated_function() -> None:
    @tracks(ReportSaved)
    async def save(values: list[float], anything: Any) -> None:
        await asyncio.sleep(0)

    with capture_events() as events, analytics_scope(user_id=1), pytest.raises(EncodingError):
        await save([1.0], object())
    assert len(events) == 0


def test_lenient_capture_drops_violations_and_lists_them_in_errors() -> None:
    with capture_events(strict=False) as events:
        assert instrument.get_client().strict is False
        result = instrument.track(ClusterProvisioningSuccess(infra_id=1, cluster_type="eks"))
        with analytics_scope(user_id=1):
            instrument.track(ReportSaved(values=[math.nan]))
        emit_cluster_success()
    assert not result.ok
    assert tuple(type(e) for e in events.errors) == (ScopeError, EncodingError)
    assert len(events) == 1


def test_strict_violation_reported_in_a_failure_path_fails_on_exit() -> None:
    # The business exception wins in @tracks(on_error=...), so this violation is reported, not raised:
    # strict capture still refuses to let it pass.
    @tracks(ClusterProvisioningSuccess, on_error=ClusterProvisioningError)
    def provision(infra_id: int, cluster_type: str) -> None:
        raise ValueError("no capacity")

    seen: list[CapturedEvents] = []

    def scenario() -> None:
        with capture_events() as events, analytics_scope(user_id=1, project_id=2):
            seen.append(events)
            with pytest.raises(ValueError, match="no capacity"):
                provision(1, "eks")

    with pytest.raises(AnalyticsAssertionError, match=r"(?s)1 analytics violation.*ScopeError.*cluster_id"):
        scenario()
    assert len(seen[0].errors) == 1


def test_strict_violation_reported_and_cleared_does_not_fail_on_exit() -> None:
    @tracks(ClusterProvisioningSuccess, on_error=ClusterProvisioningError)
    def provision(infra_id: int, cluster_type: str) -> None:
        raise ValueError("no capacity")

    with capture_events() as events, analytics_scope(user_id=1, project_id=2):
        with pytest.raises(ValueError, match="no capacity"):
            provision(1, "eks")
        assert isinstance(events.errors[0], ScopeError)
        events.errors.clear()


# -- the decorator form -------------------------------------------------------------------------------


def test_decorator_passes_a_fresh_capture_to_each_call() -> None:
    seen: list[CapturedEvents] = []

    @capture_events()
    def scenario(infra_id: int, events: CapturedEvents) -> int:
        assert instrument.get_client().strict is True
        emit_cluster_success(infra_id=infra_id)
        seen.append(events)
        return len(events)

    assert scenario(1) == 1
    assert scenario(2) == 1
    assert [e.properties["infra_id"] for e in seen[0]] == [1]
    assert [e.properties["infra_id"] for e in seen[1]] == [2]
    assert instrument.get_client().strict is False


def test_bare_decorator_and_lenient_decorator() -> None:
    @capture_events
    def strict_scenario(events: CapturedEvents) -> bool:
        return instrument.get_client().strict

    @capture_events(strict=False)
    def lenient_scenario(events: CapturedEvents) -> bool:
        return instrument.get_client().strict

    assert strict_scenario() is True
    assert lenient_scenario() is False


def test_decorator_restores_state_when_the_function_raises() -> None:
    before = instrument.get_client()

    @capture_events
    def scenario(events: CapturedEvents) -> None:
        bind_scope(user_id=3)
        raise KeyError("x")

    with pytest.raises(KeyError):
        scenario()
    assert instrument.get_client() is before
    assert instrument.get_client().strict is False
    assert dict(current_scope()) == {}


async def test_decorator_on_async_function() -> None:
    @capture_events
    async def scenario(n: int, events: CapturedEvents) -> CapturedEvents:
        async def task() -> None:
            await asyncio.sleep(0)
            emit_cluster_success(infra_id=n)

        await asyncio.gather(task(), task())
        return events

    events = await scenario(7)
    assert [e.properties["infra_id"] for e in events] == [7, 7]
    assert instrument.get_client().strict is False


@capture_events
def test_decorated_pytest_test_gets_the_capture_as_last_argument(events: CapturedEvents) -> None:
    # pytest sees no `events` parameter (the decorator hides it), so it asks for no fixture.
    emit_cluster_success()
    events.assert_tracked(ClusterProvisioningSuccess, infra_id=4)


@capture_events
async def test_decorated_async_pytest_test(events: CapturedEvents) -> None:
    await asyncio.sleep(0)
    emit_cluster_success()
    events.assert_tracked(ClusterProvisioningSuccess, infra_id=4)


def test_decorator_works_on_unittest_methods() -> None:
    class Case(unittest.TestCase):
        @capture_events
        def test_emits(self, events: CapturedEvents) -> None:
            emit_cluster_success(infra_id=11)
            events.assert_tracked(ClusterProvisioningSuccess, infra_id=11)

        @capture_events
        def test_fails(self, events: CapturedEvents) -> None:
            emit_cluster_success(infra_id=11)
            events.assert_tracked(ClusterProvisioningSuccess, infra_id=12)

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun == 2
    assert result.errors == []
    [(case, traceback)] = result.failures
    assert "test_fails" in str(case)
    assert "infra_id: expected 12, got 11" in traceback


# -- assert_tracked ---------------------------------------------------------------------------------


def test_shutdown_inside_a_capture_keeps_capturing_until_the_block_ends() -> None:
    with capture_events() as events:
        emit_cluster_success(infra_id=1)
        assert instrument.shutdown(1.0) == 0
        emit_cluster_success(infra_id=2)
        assert asyncio.run(instrument.ashutdown(1.0)) == 0
        emit_cluster_success(infra_id=3)
    assert [e.properties["infra_id"] for e in events] == [1, 2, 3]
    assert events.errors == []
    # The capture's own client is closed once the block has ended.
    emit_cluster_success(infra_id=4)
    assert len(events) == 3


def test_configure_inside_a_capture_does_not_warn_that_events_are_dropped(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_CLIENT_KEY", raising=False)
    caplog.set_level(logging.WARNING, "instrument")
    with capture_events() as events:
        instrument.configure()  # an app's startup, with no key in the test environment
        emit_cluster_success(infra_id=1)
    assert len(events) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "instrument"] == []
    instrument.configure()  # outside a capture the warning is right: events are dropped
    assert any("no Segment write key" in r.getMessage() for r in caplog.records)


def test_a_strict_violation_raised_in_an_unjoined_thread_lands_in_errors_and_fails_on_exit() -> None:
    def emit_without_scope() -> None:
        instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))

    previous_hook = threading.excepthook
    capture = capture_events()
    events = capture.__enter__()
    worker = threading.Thread(target=emit_without_scope)
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:  # waits, never joins
        time.sleep(0.01)
    assert [type(e) for e in events.errors] == [ScopeError]
    with pytest.raises(AnalyticsAssertionError, match=r"1 analytics violation.*\n  ScopeError: ") as info:
        capture.__exit__(None, None, None)
    assert "raised in a thread" in str(info.value)
    assert threading.excepthook is previous_hook


def test_other_exceptions_in_threads_still_reach_the_previous_hook() -> None:
    seen: list[type[BaseException]] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_type)
    try:
        with capture_events() as events:
            worker = threading.Thread(target=lambda: 1 / 0)
            worker.start()
            worker.join(30)
        assert seen == [ZeroDivisionError]
        assert events.errors == []
    finally:
        threading.excepthook = previous_hook
