"""CapturedEvent and the queries of CapturedEvents (instrument/testing/_event.py, _assertions.py)."""

from __future__ import annotations

import uuid

import pytest
from kit_catalog import (
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    Events,
    Kind,
    ProjectCreated,
    ReportSaved,
    UserTraits,
    emit_cluster_success,
)

import instrument
from instrument import (
    analytics_scope,
)
from instrument.testing import capture_events

pytestmark = pytest.mark.timeout(60)


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
