"""Tests of instrument.testing: capture_events, CapturedEvents queries and assertions, strict mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import math
import threading
import unittest
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dirty_equals import IsInt, IsPositiveInt, IsStr

import instrument
from instrument import (
    EncodingError,
    EventName,
    Identify,
    PropertyError,
    ScopeError,
    Track,
    analytics_scope,
    bind_scope,
    current_scope,
    field,
    tracks,
)
from instrument.testing import ANY, AnalyticsAssertionError, CapturedEvents, SegmentEndpoint, capture_events, reset
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(60)


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"
    CLUSTER_PROVISIONING_STARTED = "Cluster Provisioning Started"
    CLUSTER_PROVISIONING_ERROR = "Cluster Provisioning Error"
    PROJECT_CREATED = "Project Created"
    ITEMS_EXPORTED = "Items Exported"
    REPORT_SAVED = "Report Saved"


class Kind(enum.Enum):
    EKS = "eks"
    GKE = "gke"


class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    infra_id: int
    cluster_type: str


class ClusterProvisioningStarted(Track, event=Events.CLUSTER_PROVISIONING_STARTED, scope="project"):
    infra_id: int


class ClusterProvisioningError(Track, event=Events.CLUSTER_PROVISIONING_ERROR, scope="cluster"):
    error: str


class ProjectCreated(Track, event=Events.PROJECT_CREATED, scope="project"):
    name: str
    kind: Kind = Kind.EKS
    request_id: uuid.UUID = field(default=uuid.UUID(int=7), key="rid")
    at: dt.datetime = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    public: bool = False


class ItemsExported(Track, event=Events.ITEMS_EXPORTED):
    count: int
    exact: bool = False


class ReportSaved(Track, event=Events.REPORT_SAVED):
    values: list[float]
    extra: list[object] = field(default_factory=list)
    anything: Any = None


class UserTraits(Identify):
    email: str
    github: bool = field(default=False, key="gh")


CLUSTER = {"user_id": 1, "project_id": 2, "cluster_id": 3}


@pytest.fixture
def fresh_client() -> Iterator[None]:
    """An unconfigured, non-strict global client for the test; the original is put back after."""
    reset()
    try:
        yield
    finally:
        reset()


def emit_cluster_success(infra_id: int = 4, cluster_type: str = "eks") -> None:
    with analytics_scope(**CLUSTER):
        instrument.track(ClusterProvisioningSuccess(infra_id=infra_id, cluster_type=cluster_type))


# -- the captured payload -------------------------------------------------------------------------


def test_captured_event_is_the_encoded_wire_payload_without_ids() -> None:
    with capture_events() as events, analytics_scope(user_id=9, project_id="p-1"):
        instrument.track(ProjectCreated(name="demo", kind=Kind.GKE))
    assert events.as_dicts() == [
        {
            "event": "Project Created",
            "properties": {
                "at": "2026-01-02T03:04:05.000Z",
                "kind": "gke",
                "name": "demo",
                "project_id": "p-1",
                "public": False,
                "rid": "00000000-0000-0000-0000-000000000007",
            },
            "type": "track",
            "userId": "9",
        }
    ]
    [event] = events
    assert "messageId" not in event
    assert "timestamp" not in event
    assert event.event == "Project Created"
    assert event.user_id == "9"
    assert event.index == 0
    assert event.message["messageId"]
    assert event.message["timestamp"].endswith("Z")


def test_messages_are_full_wire_dicts_and_as_dicts_with_ids_keeps_them() -> None:
    with capture_events() as events:
        emit_cluster_success()
    [message] = events.messages
    assert set(message) == {"type", "userId", "event", "properties", "messageId", "timestamp"}
    uuid.UUID(message["messageId"])
    [with_ids] = events.as_dicts(with_ids=True)
    assert with_ids["messageId"] == message["messageId"]
    assert list(with_ids) == sorted(with_ids)
    assert list(with_ids["properties"]) == sorted(with_ids["properties"])


def test_as_dicts_sorts_keys_at_every_level_and_is_stable_across_runs() -> None:
    runs = []
    for _ in range(2):
        with capture_events() as events, analytics_scope(user_id=1):
            instrument.track(ReportSaved(values=[1.5], extra=[{"b": 1, "a": {"z": 1, "y": 2}}]))
        runs.append(events.as_dicts())
    assert runs[0] == runs[1]
    extra = runs[0][0]["properties"]["extra"][0]
    assert list(extra) == ["a", "b"]
    assert list(extra["a"]) == ["y", "z"]


def test_mutating_a_captured_event_does_not_change_the_capture() -> None:
    with capture_events() as events:
        emit_cluster_success()
    events[0]["properties"]["infra_id"] = 99
    events.messages[0]["properties"]["infra_id"] = 99
    assert events[0].properties["infra_id"] == 4


def test_queries_split_tracks_identifies_and_events_in_emission_order() -> None:
    with capture_events() as events:
        emit_cluster_success(infra_id=1)
        with analytics_scope(user_id=1, project_id=2):
            instrument.track(ClusterProvisioningStarted(infra_id=2))
        instrument.identify(UserTraits(email="a@b.c", user_id=1))
        emit_cluster_success(infra_id=3)
    assert len(events) == 4
    assert [e.type for e in events] == ["track", "track", "identify", "track"]
    assert [e.properties["infra_id"] for e in events.tracks] == [1, 2, 3]
    assert [e.properties["infra_id"] for e in events.of(ClusterProvisioningSuccess)] == [1, 3]
    assert events.of(Events.CLUSTER_PROVISIONING_STARTED) == events.of("Cluster Provisioning Started")
    assert len(events.of(Events.CLUSTER_PROVISIONING_STARTED)) == 1
    assert events.identifies[0].traits == {"email": "a@b.c", "gh": False}
    assert events.of(UserTraits) == events.identifies
    assert events[2].type == "identify"
    assert events[-1].properties["infra_id"] == 3
    assert "'Cluster Provisioning Success' x2" in repr(events)


def test_clear_forgets_captured_events() -> None:
    with capture_events() as events:
        emit_cluster_success()
        events.clear()
        assert len(events) == 0
        emit_cluster_success(infra_id=5)
    assert [e.properties["infra_id"] for e in events] == [5]


# -- restoring global state -------------------------------------------------------------------------


def test_capture_restores_client_strict_mode_and_scope_on_exit(fresh_client: None) -> None:
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


def test_capture_restores_everything_when_the_block_raises(fresh_client: None) -> None:
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


def test_capture_restores_a_strict_previous_client(fresh_client: None) -> None:
    strict_client = instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    with capture_events(strict=False):
        assert instrument.get_client().strict is False
    assert instrument.get_client() is strict_client
    assert instrument.get_client().strict is True


def test_capture_restores_when_a_strict_violation_raises_inside(fresh_client: None) -> None:
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
    fresh_client: None, endpoint: SegmentEndpoint, monkeypatch: pytest.MonkeyPatch
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


def test_configure_called_while_capturing_is_captured_and_undone(fresh_client: None, endpoint: SegmentEndpoint) -> None:
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


def test_capture_uses_the_configured_wire_keys_and_redaction(fresh_client: None) -> None:
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


def test_decorator_passes_a_fresh_capture_to_each_call(fresh_client: None) -> None:
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


def test_decorator_restores_state_when_the_function_raises(fresh_client: None) -> None:
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


async def test_decorator_on_async_function(fresh_client: None) -> None:
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


@pytest.fixture
def captured() -> Iterator[CapturedEvents]:
    with capture_events() as events:
        emit_cluster_success(infra_id=1, cluster_type="eks")
        emit_cluster_success(infra_id=2, cluster_type="gke")
        with analytics_scope(user_id=42, project_id=7):
            instrument.track(ProjectCreated(name="demo", kind=Kind.GKE, public=True))
            instrument.track(ItemsExported(count=3))
        instrument.identify(UserTraits(email="a@b.c", github=True, user_id=42))
        yield events


def test_assert_tracked_partial_match_returns_the_matches(captured: CapturedEvents) -> None:
    matches = captured.assert_tracked(ClusterProvisioningSuccess)
    assert [m.properties["infra_id"] for m in matches] == [1, 2]
    [match] = captured.assert_tracked(Events.CLUSTER_PROVISIONING_SUCCESS, cluster_type="gke")
    assert match.properties["infra_id"] == 2
    captured.assert_tracked("Cluster Provisioning Success", infra_id=1, cluster_id=3, user_id=1)


def test_assert_tracked_count(captured: CapturedEvents) -> None:
    assert len(captured.assert_tracked(ClusterProvisioningSuccess, count=2)) == 2
    assert captured.assert_tracked(ClusterProvisioningSuccess, 0, infra_id=9) == []
    with pytest.raises(AnalyticsAssertionError, match=r"expected 1 track\(s\).*; 2 match"):
        captured.assert_tracked(ClusterProvisioningSuccess, count=1)
    with pytest.raises(AnalyticsAssertionError, match=r"(?s)expected 2 track\(s\).*1 match.*Closest"):
        captured.assert_tracked(ClusterProvisioningSuccess, count=2, cluster_type="eks")


def test_assert_tracked_exact_demands_no_other_property(captured: CapturedEvents) -> None:
    captured.assert_tracked(
        ClusterProvisioningSuccess, exact=True, infra_id=1, cluster_type="eks", project_id=2, cluster_id=3
    )
    with pytest.raises(AnalyticsAssertionError) as info:
        captured.assert_tracked(ClusterProvisioningSuccess, exact=True, infra_id=1, cluster_type="eks")
    text = str(info.value)
    assert "Extra keys (exact=True):\n        project_id: 2\n        cluster_id: 3" in text


def test_assert_tracked_encodes_expected_python_values(captured: CapturedEvents) -> None:
    captured.assert_tracked(
        ProjectCreated,
        kind=Kind.GKE,
        request_id=uuid.UUID(int=7),
        at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        user_id=42,
    )
    captured.assert_tracked(ProjectCreated, rid="00000000-0000-0000-0000-000000000007", kind="gke")
    with pytest.raises(AnalyticsAssertionError, match=r"kind: expected 'eks' \(encoded from <Kind.EKS: 'eks'>\)"):
        captured.assert_tracked(ProjectCreated, kind=Kind.EKS)


def test_assert_tracked_accepts_matchers(captured: CapturedEvents) -> None:
    captured.assert_tracked(ClusterProvisioningSuccess, infra_id=ANY, cluster_type=IsStr(regex="g.*"))
    captured.assert_tracked(ClusterProvisioningSuccess, infra_id=IsPositiveInt, project_id=IsInt(ge=2))
    captured.assert_tracked(ClusterProvisioningSuccess, infra_id=lambda v: v > 1, user_id=lambda v: v == "1")
    captured.assert_tracked(ProjectCreated, at=IsStr(regex=r"2026-01-02T.*"), name=ANY)
    with pytest.raises(AnalyticsAssertionError, match="infra_id: expected <predicate"):
        captured.assert_tracked(ClusterProvisioningSuccess, infra_id=lambda v: v > 5)
    with pytest.raises(AnalyticsAssertionError, match=r"Missing keys.*\n\s+absent: expected ANY"):
        captured.assert_tracked(ClusterProvisioningSuccess, absent=ANY)


def test_assert_tracked_predicate_that_raises_is_a_mismatch(captured: CapturedEvents) -> None:
    with pytest.raises(AnalyticsAssertionError, match="none matches"):
        captured.assert_tracked(ClusterProvisioningSuccess, infra_id=lambda v: v["nope"])


def test_assert_tracked_does_not_take_true_for_one(captured: CapturedEvents) -> None:
    captured.assert_tracked(ProjectCreated, public=True)
    with pytest.raises(AnalyticsAssertionError):
        captured.assert_tracked(ProjectCreated, public=1)
    captured.assert_tracked(ItemsExported, props={"count": 3})
    with pytest.raises(AnalyticsAssertionError):
        captured.assert_tracked(ItemsExported, props={"count": True})


def test_assert_tracked_props_gives_fields_named_like_arguments(captured: CapturedEvents) -> None:
    [match] = captured.assert_tracked(ItemsExported, props={"count": 3, "exact": False})
    assert match.properties["count"] == 3
    with pytest.raises(AnalyticsAssertionError, match="count: expected 4, got 3"):
        captured.assert_tracked(ItemsExported, props={"count": 4})


def test_assert_tracked_matches_scope_fields_by_name_under_renamed_wire_keys(fresh_client: None) -> None:
    instrument.configure(transport=MemoryTransport(), wire_keys={"project_id": "proj_id"})
    with capture_events() as events:
        emit_cluster_success()
    assert "proj_id" in events[0].properties
    assert "project_id" not in events[0].properties
    events.assert_tracked(ClusterProvisioningSuccess, project_id=2, user_id="1")
    events.assert_tracked(ClusterProvisioningSuccess, proj_id=2)
    with pytest.raises(AnalyticsAssertionError, match=r"project_id \(sent as 'proj_id'\): expected 5, got 2"):
        events.assert_tracked(ClusterProvisioningSuccess, project_id=5)


def test_assert_tracked_matches_properties_by_declared_name_or_wire_key(captured: CapturedEvents) -> None:
    captured.assert_tracked(ProjectCreated, request_id=uuid.UUID(int=7))
    captured.assert_tracked(ProjectCreated, rid=str(uuid.UUID(int=7)))
    # By event name there is no class to tell that request_id is sent as rid.
    with pytest.raises(AnalyticsAssertionError):
        captured.assert_tracked(Events.PROJECT_CREATED, request_id=uuid.UUID(int=7))


def test_assert_tracked_failure_shows_a_field_diff_of_the_closest_events(captured: CapturedEvents) -> None:
    with pytest.raises(AssertionError) as info:
        captured.assert_tracked(ClusterProvisioningSuccess, infra_id=2, cluster_type="eks", region="eu")
    text = str(info.value)
    assert isinstance(info.value, AnalyticsAssertionError)
    assert text.startswith(
        "expected a track of 'Cluster Provisioning Success' with infra_id=2, cluster_type='eks', region='eu'; "
        "2 track(s) of 'Cluster Provisioning Success' captured, none matches."
    )
    # Both candidates match one field of three; emission order breaks the tie.
    first, second = text.index("[0] track"), text.index("[1] track")
    assert first < second
    assert "1 of 3 expected field(s) match" in text
    assert "Differing items:\n        infra_id: expected 2, got 1" in text
    assert "Missing keys (not in the properties):\n        region: expected 'eu'" in text


def test_assert_tracked_failure_ranks_the_closest_first(captured: CapturedEvents) -> None:
    with pytest.raises(AnalyticsAssertionError) as info:
        captured.assert_tracked(ClusterProvisioningSuccess, infra_id=2, cluster_type="gke", cluster_id=4)
    text = str(info.value)
    assert text.index("[1] track") < text.index("[0] track")
    assert "2 of 3 expected field(s) match" in text


def test_assert_tracked_failure_for_an_event_never_tracked_lists_other_events(captured: CapturedEvents) -> None:
    with pytest.raises(AnalyticsAssertionError) as info:
        captured.assert_tracked(ClusterProvisioningStarted, infra_id=1)
    text = str(info.value)
    assert "no track of 'Cluster Provisioning Started' was captured" in text
    assert "event: expected 'Cluster Provisioning Started', got 'Cluster Provisioning Success'" in text
    assert "All captured: 'Cluster Provisioning Success' x2, 'Project Created', 'Items Exported'" in text


def test_assert_tracked_on_an_empty_capture_says_nothing_was_captured() -> None:
    with capture_events() as events:
        pass
    with pytest.raises(AnalyticsAssertionError, match="Captured: nothing"):
        events.assert_tracked(ClusterProvisioningSuccess)


# -- the other assertions --------------------------------------------------------------------------


def test_assert_not_tracked(captured: CapturedEvents) -> None:
    captured.assert_not_tracked(ClusterProvisioningStarted)
    captured.assert_not_tracked(ClusterProvisioningSuccess, infra_id=3)
    with pytest.raises(AnalyticsAssertionError, match=r"(?s)expected no track of .*infra_id=2; 1 captured:.*\[1\]"):
        captured.assert_not_tracked(ClusterProvisioningSuccess, infra_id=2)
    with pytest.raises(AnalyticsAssertionError, match="2 captured"):
        captured.assert_not_tracked(Events.CLUSTER_PROVISIONING_SUCCESS)


def test_assert_identified(captured: CapturedEvents) -> None:
    [match] = captured.assert_identified(user_id=42, email="a@b.c")
    assert match.traits == {"email": "a@b.c", "gh": True}
    captured.assert_identified(UserTraits, user_id="42", github=True)
    captured.assert_identified(email=IsStr, gh=True)
    captured.assert_identified(user_id=42, exact=True, email="a@b.c", gh=True)
    with pytest.raises(AnalyticsAssertionError) as info:
        captured.assert_identified(user_id=7, email="x@y.z")
    text = str(info.value)
    assert "1 identify call(s) captured, none matches" in text
    assert "user_id (userId): expected '7' (encoded from 7), got '42'" in text
    assert "email: expected 'x@y.z', got 'a@b.c'" in text


def test_assert_identified_when_none_was_sent() -> None:
    with capture_events() as events:
        emit_cluster_success()
    with pytest.raises(AnalyticsAssertionError, match="no identify was captured"):
        events.assert_identified(user_id=1)


def test_assert_sequence_matches_an_ordered_subsequence(captured: CapturedEvents) -> None:
    found = captured.assert_sequence(
        [
            (ClusterProvisioningSuccess, {"infra_id": 1}),
            Events.PROJECT_CREATED,
            "Items Exported",
            UserTraits,
        ]
    )
    assert [e.index for e in found] == [0, 2, 3, 4]
    captured.assert_sequence([ClusterProvisioningSuccess, ClusterProvisioningSuccess])
    assert captured.assert_sequence([]) == []


def test_assert_sequence_failure_says_which_step_is_missing(captured: CapturedEvents) -> None:
    with pytest.raises(AnalyticsAssertionError) as info:
        captured.assert_sequence([ProjectCreated, (ClusterProvisioningSuccess, {"infra_id": 2})])
    text = str(info.value)
    assert "step 2 is missing" in text
    assert "ok   1. 'Project Created'" in text
    assert "MISS 2. 'Cluster Provisioning Success' with infra_id=2" in text
    assert "step 2 was looked for after event [2]" in text
    with pytest.raises(AnalyticsAssertionError, match="MISS 3"):
        captured.assert_sequence([ClusterProvisioningSuccess, ClusterProvisioningSuccess, ClusterProvisioningSuccess])


def test_assert_nothing_tracked() -> None:
    with capture_events() as events:
        pass
    events.assert_nothing_tracked()
    with capture_events() as events:
        instrument.identify(UserTraits(email="a@b.c", user_id=1))
    with pytest.raises(AnalyticsAssertionError, match=r"expected no analytics events; 1 captured:\n  \[0\] identify"):
        events.assert_nothing_tracked()


def test_assertion_errors_are_assertion_errors() -> None:
    assert issubclass(AnalyticsAssertionError, AssertionError)
