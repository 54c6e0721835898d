"""The client: configuration, the no-op default, key lookup, strict mode, results, and end-to-end delivery."""

from __future__ import annotations

import base64
import gc
import io
import logging
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

import instrument
from instrument import (
    ConfigurationError,
    ConsoleTransport,
    EventName,
    Identify,
    MemoryTransport,
    NotConfiguredError,
    PropertyError,
    SegmentTransport,
    Track,
    analytics_scope,
)
from instrument.testing import SegmentEndpoint, capture_events

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"


class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    cluster_type: str
    infra_id: int


class UserTraits(Identify):
    email: str
    github: bool


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_CLIENT_KEY", raising=False)


def test_unconfigured_track_returns_not_configured_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="instrument")
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        results = [instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=i)) for i in range(3)]
    assert [r.ok for r in results] == [False, False, False]
    assert all(isinstance(r.error, NotConfiguredError) for r in results)
    assert not results[0]
    assert len([r for r in caplog.records if "not configured" in r.getMessage()]) == 1
    assert instrument.stats().dropped["not_configured"] == 3
    assert not instrument.is_configured()


def test_unconfigured_client_still_validates() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        result = instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id="seven"))  # type: ignore[arg-type]
    assert isinstance(result.error, PropertyError)
    assert instrument.stats().dropped["invalid"] == 1


def test_configure_without_a_key_or_transport_warns_and_drops(no_keys: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="instrument")
    client = instrument.configure()
    try:
        assert not client.configured
        assert any("no Segment write key" in r.getMessage() for r in caplog.records)
    finally:
        client.shutdown(1)


@pytest.mark.parametrize("variable", ["SEGMENT_WRITE_KEY", "SEGMENT_CLIENT_KEY"])
def test_configure_reads_the_key_from_the_environment_and_sends_it_as_basic_auth(
    no_keys: None, monkeypatch: pytest.MonkeyPatch, endpoint: SegmentEndpoint, variable: str
) -> None:
    monkeypatch.setenv(variable, f"key-from-{variable}")
    client = instrument.configure(host=endpoint.url, flush_interval=0.05)
    try:
        assert isinstance(client.dispatcher.transport, SegmentTransport)
        with analytics_scope(user_id=42, project_id=1, cluster_id=3):
            assert instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=7)).ok
        assert instrument.flush(10)
        assert endpoint.wait_for(1, timeout=10)
        batch = endpoint.batches[0]
        assert batch.write_key == f"key-from-{variable}"
        expected = base64.b64encode(f"key-from-{variable}:".encode()).decode()
        assert batch.headers["Authorization"] == f"Basic {expected}"
    finally:
        client.shutdown(2)


def test_segment_write_key_wins_over_the_seeds_variable(no_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "first")
    monkeypatch.setenv("SEGMENT_CLIENT_KEY", "second")
    client = instrument.configure(host="http://127.0.0.1:9")
    try:
        transport = client.dispatcher.transport
        assert isinstance(transport, SegmentTransport)
        assert transport._SegmentTransport__write_key == "first"  # type: ignore[attr-defined]
    finally:
        client.shutdown(0)


def test_end_to_end_track_and_identify_arrive_with_the_wire_format(configure, endpoint: SegmentEndpoint) -> None:  # type: ignore[no-untyped-def]
    configure(wire_keys={"project_id": "proj_id"})
    with analytics_scope(user_id=42, project_id=1, cluster_id=3):
        assert instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=7)).ok
        assert instrument.identify(UserTraits(email="ada@example.com", github=True)).ok
    assert instrument.flush(10)
    assert endpoint.wait_for(2, timeout=10)
    track, identify = sorted(endpoint.messages, key=lambda m: m["type"], reverse=True)
    assert track["type"] == "track"
    assert track["userId"] == "42"
    assert track["event"] == "Cluster Provisioning Success"
    assert track["properties"] == {"cluster_type": "eks", "infra_id": 7, "proj_id": 1, "cluster_id": 3}
    assert "anonymousId" not in track
    assert "context" not in track
    assert identify == {
        **identify,
        "type": "identify",
        "userId": "42",
        "traits": {"email": "ada@example.com", "github": True},
    }
    assert endpoint.batches[0].write_key == "wk-test"
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.dropped_total, stats.pending) == (2, 2, 0, 0)


def test_track_of_something_that_is_not_a_track_is_reported_not_raised(memory: MemoryTransport) -> None:
    result = instrument.track({"event": "Cluster Provisioning Success"})  # type: ignore[arg-type]
    assert isinstance(result.error, PropertyError)
    assert memory.messages == []


def test_track_of_something_that_is_not_a_track_raises_in_strict_mode() -> None:
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    with pytest.raises(PropertyError, match="takes a Track instance"):
        instrument.track("Cluster Provisioning Success")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_policy": "drop_random"}, "queue_policy"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"wire_keys": {"projectid": "proj_id"}}, "projectid"),
        ({"wire_keys": {"user_id": "uid"}}, "user_id"),
        ({"on_error": "log"}, "on_error"),
        ({"write_key": "k", "transport": MemoryTransport()}, "not both"),
    ],
)
def test_configure_rejects_bad_arguments_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        instrument.configure(**options)  # type: ignore[arg-type]


def test_configure_replaces_and_shuts_down_the_previous_client() -> None:
    first = instrument.configure(transport=MemoryTransport())
    second = instrument.configure(transport=MemoryTransport())
    try:
        assert instrument.get_client() is second
        assert first.dispatcher._closed
    finally:
        second.shutdown(0)


def test_instrument_strict_environment_variable_makes_errors_raise_without_configure() -> None:
    code = (
        "import instrument\n"
        "from instrument import EventName, Track\n"
        "class E(EventName):\n    A = 'Thing Happened'\n"
        "class T(Track, event=E.A):\n    n: int\n"
        "try:\n    T(n='x')\nexcept instrument.PropertyError as e:\n    print('raised:', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSTRUMENT_STRICT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert "raised: T.n: expected int, got str (1 char)\n" in done.stdout, done.stderr
    env["INSTRUMENT_STRICT"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert "raised" not in done.stdout


class RenamedEvents(EventName, wire_keys={"project_id": "proj_id"}):
    PROJECT_RENAMED = "Project Renamed"


class ProjectRenamed(Track, event=RenamedEvents.PROJECT_RENAMED, scope="project"):
    name: str


def test_the_catalogs_wire_keys_reach_every_transport_and_the_capture_without_configure(
    configure,
    endpoint: SegmentEndpoint,  # type: ignore[no-untyped-def]
) -> None:
    # Declared once, with the catalog: no client is told about proj_id again.
    expected = {"name": "web", "proj_id": 7}

    def emit() -> None:
        with analytics_scope(user_id=1, project_id=7):
            assert instrument.track(ProjectRenamed(name="web")).ok

    memory = MemoryTransport()
    configure(transport=memory, sync=True)
    emit()
    assert [m["properties"] for m in memory.messages] == [expected]

    stream = io.StringIO()
    configure(transport=ConsoleTransport(stream=stream), sync=True)
    emit()
    assert '"proj_id": 7' in stream.getvalue()
    assert "project_id" not in stream.getvalue()

    configure()  # the Segment transport, at the loopback endpoint
    emit()
    assert instrument.flush(10)
    assert endpoint.wait_for(1, timeout=10)
    assert [m["properties"] for m in endpoint.messages] == [expected]

    with capture_events() as events:
        emit()
    assert [e.properties for e in events] == [expected]


@pytest.mark.parametrize("strict", [False, True])
def test_track_given_an_object_whose_class_attribute_raises_is_a_property_error(strict: bool) -> None:
    class Impostor:
        @property
        def __class__(self) -> type:  # type: ignore[override]
            raise RuntimeError("no class for you")

    client = instrument.Client(MemoryTransport(), strict=strict, sync=True)
    if strict:
        with pytest.raises(PropertyError, match=r"track\(\) takes a Track instance, got Impostor"):
            client.track(Impostor())  # type: ignore[arg-type]
    else:
        result = client.track(Impostor())  # type: ignore[arg-type]
        assert isinstance(result.error, PropertyError)


# -- what track() queues: a track's values as they were at the call, not the caller's object ----------


class ClusterProvisioningRetried(ClusterProvisioningSuccess, event="Cluster Provisioning Retried"):
    """A subclass of a concrete track: its events are its own, whatever its base queued before."""


def test_a_track_sends_its_values_at_the_call_and_the_queue_keeps_no_reference_to_the_record(
    configure,  # type: ignore[no-untyped-def]
    endpoint: SegmentEndpoint,
) -> None:
    configure(flush_interval=60, batch_size=1000)  # the worker waits: the event stays queued until flush
    with analytics_scope(user_id=42, project_id=1, cluster_id=3):
        # The class's first event: the worker compiles its direct path (never the caller's thread).
        assert instrument.track(ClusterProvisioningSuccess(cluster_type="first", infra_id=0)).ok
        assert instrument.flush(10)
        endpoint.clear()
        record = ClusterProvisioningSuccess(cluster_type="eks", infra_id=7)
        assert instrument.track(record).ok
    record.cluster_type = "gke"  # changed after track(): what track() recorded is what is sent
    held = weakref.ref(record)
    del record
    gc.collect()
    assert held() is None  # queued as its values, not as the object (nothing of the caller's is kept)
    assert instrument.stats().pending == 1
    assert instrument.flush(10)
    (message,) = endpoint.messages
    assert message["properties"] == {"cluster_type": "eks", "infra_id": 7, "project_id": 1, "cluster_id": 3}


def test_forget_removes_a_users_queued_tracks_and_sends_the_others(configure, endpoint: SegmentEndpoint) -> None:  # type: ignore[no-untyped-def]
    configure(flush_interval=60, batch_size=1000)
    for user in ("leaver", "stayer"):
        with analytics_scope(user_id=user, project_id=1, cluster_id=3):
            for i in range(5):
                instrument.track(ClusterProvisioningSuccess(cluster_type=user, infra_id=i))
    assert instrument.forget("leaver") == 5
    assert instrument.flush(10)
    assert sorted((m["userId"], m["properties"]["infra_id"]) for m in endpoint.messages) == [
        ("stayer", i) for i in range(5)
    ]
    assert instrument.stats().lost["forgotten"] == 5


def test_a_subclass_of_a_track_is_sent_as_itself_after_its_base(configure, endpoint: SegmentEndpoint) -> None:  # type: ignore[no-untyped-def]
    configure()
    with analytics_scope(user_id=42, project_id=1, cluster_id=3):
        assert instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=1)).ok
        assert instrument.track(ClusterProvisioningRetried(cluster_type="eks", infra_id=2)).ok
        assert instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=3)).ok
    assert instrument.flush(10)
    assert sorted((m["properties"]["infra_id"], m["event"]) for m in endpoint.messages) == [
        (1, "Cluster Provisioning Success"),
        (2, "Cluster Provisioning Retried"),
        (3, "Cluster Provisioning Success"),
    ]


def test_a_queued_track_evicted_by_drop_oldest_is_reported_under_its_class(
    configure,  # type: ignore[no-untyped-def]
    endpoint: SegmentEndpoint,
    errors: list[instrument.AnalyticsError],
) -> None:
    endpoint.hang_next(1, 3.0)  # the worker's first request waits: the queue of two fills behind it
    configure(timeout=5.0, flush_interval=0.01, batch_size=2, max_queue_size=2, queue_policy="drop_oldest")
    with analytics_scope(user_id=42, project_id=1, cluster_id=3):
        for i in range(2000):  # bounded: the first evictions come a few events after the queue is full
            instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=i))
            if any(isinstance(e, instrument.QueueFullError) for e in errors):
                break
            time.sleep(0.001)
    evicted = [e for e in errors if isinstance(e, instrument.QueueFullError)]
    assert evicted, "no event was evicted"
    assert {e.track for e in evicted} == {"ClusterProvisioningSuccess"}


def test_the_callers_thread_never_compiles_a_class_the_worker_does_on_its_first_record(
    configure,  # type: ignore[no-untyped-def]
    endpoint: SegmentEndpoint,
) -> None:
    # A compile costs about a millisecond: it would land on a request's first event of each class.
    class NodeScaled(ClusterProvisioningSuccess, event="Cluster Provisioning Scaled"):
        nodes: int = 0

    configure(flush_interval=60, batch_size=1000)  # the worker waits for a flush
    with analytics_scope(user_id=42, project_id=1, cluster_id=3):
        first = NodeScaled(cluster_type="eks", infra_id=1, nodes=2)
        assert instrument.track(first).ok
        assert NodeScaled.__instrument_spec__.wire is None  # type: ignore[union-attr]  # not on this thread
        held = weakref.ref(first)
        del first
        gc.collect()
        assert held() is not None  # queued as the record: the class has no packer yet
        assert instrument.flush(10)
        assert NodeScaled.__instrument_spec__.wire  # type: ignore[union-attr]  # compiled by the worker
        second = NodeScaled(cluster_type="eks", infra_id=2, nodes=3)
        assert instrument.track(second).ok
        held = weakref.ref(second)
        del second
        gc.collect()
        assert held() is None  # packed from now on
        assert instrument.flush(10)
    assert sorted(m["properties"]["nodes"] for m in endpoint.messages) == [2, 3]
