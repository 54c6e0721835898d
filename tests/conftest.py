"""Shared fixtures: every test starts with a fresh no-op client and production mode, and gets them back after."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from hypothesis import settings
from kit_catalog import ItemsExported, Kind, ProjectCreated, UserTraits, emit_cluster_success
from log_capture import LogCapture, capture_all_logs

import instrument
from instrument import AnalyticsError, Client, analytics_scope
from instrument.testing import CapturedEvents, SegmentEndpoint, capture_events, reset
from instrument.transports import MemoryTransport

# No per-example wall-clock deadline: the properties are about what comes out, and the suite runs its
# subprocess-heavy tests beside them on every core, where a 200 ms deadline fails for the machine's
# load, not the code's. Speed is measured by bench/run.py.
settings.register_profile("instrument", deadline=None)
settings.load_profile("instrument")


@pytest.hookimpl(wrapper=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto`` starts two workers per core (xdist's own count, doubled) unless
    PYTEST_XDIST_AUTO_NUM_WORKERS names a number.

    Most of the suite waits rather than computes (real servers and subprocesses, retry back-offs, timeouts
    that are the point of a test): with one worker per core the cores were idle about half the run.
    """
    count = yield
    return count if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else 2 * count


@pytest.fixture(autouse=True)
def _fresh_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Production mode whatever the environment says, then the state of a fresh import.
    monkeypatch.delenv("INSTRUMENT_STRICT", raising=False)
    reset()
    try:
        yield
    finally:
        reset()


@pytest.fixture
def reported() -> list[AnalyticsError]:
    """The errors the ``memory`` client reported to its on_error handler, in order."""
    return []


@pytest.fixture
def memory(reported: list[AnalyticsError]) -> MemoryTransport:
    """A MemoryTransport behind a synchronous client (production mode): messages are there at once."""
    transport = MemoryTransport()
    instrument.configure(transport=transport, sync=True, on_error=reported.append, strict=False)
    return transport


@pytest.fixture
def write_key() -> str:
    """The Segment write key the ``configure`` fixture uses (a module may override it)."""
    return "wk-test"


@pytest.fixture
def endpoint() -> Iterator[SegmentEndpoint]:
    """A real Segment-compatible HTTP endpoint on 127.0.0.1."""
    with SegmentEndpoint() as ep:
        yield ep


@pytest.fixture
def errors() -> list[AnalyticsError]:
    """The errors the clients made by ``configure`` reported to their on_error handler."""
    return []


@pytest.fixture
def configure(
    endpoint: SegmentEndpoint, errors: list[AnalyticsError], write_key: str
) -> Iterator[Callable[..., Client]]:
    """configure() against the endpoint with small timings; shuts our clients down after the test."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        if "transport" not in options:  # the Segment transport, at the endpoint
            options.setdefault("host", endpoint.url)
            options.setdefault("timeout", 0.5)
        options.setdefault("flush_interval", 0.05)
        options.setdefault("on_error", errors.append)
        options.setdefault("strict", False)
        client = instrument.configure(None if "transport" in options else write_key, **options)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.shutdown(2.0)


@pytest.fixture
def captured() -> Iterator[CapturedEvents]:
    """A strict capture holding two cluster tracks, a project track, an export and an identify (kit_catalog)."""
    with capture_events() as events:
        emit_cluster_success(infra_id=1, cluster_type="eks")
        emit_cluster_success(infra_id=2, cluster_type="gke")
        with analytics_scope(user_id=42, project_id=7):
            instrument.track(ProjectCreated(name="demo", kind=Kind.GKE, public=True))
            instrument.track(ItemsExported(count=3))
        instrument.identify(UserTraits(email="a@b.c", github=True, user_id=42))
        yield events


@pytest.fixture
def porter_messages() -> list[dict[str, Any]]:
    """Every message one run of the Porter example's requests sends, captured (tracks, an identify and a group)."""
    from examples.porter.service import Applications, Projects, Request, Users, handle

    with capture_events() as events:
        with analytics_scope(user_id=42):
            Users().login("ada@example.com", github=True)
            project_id = Projects().create("demo")
        request = Request(user_id=42, project_id=project_id)
        for action in ("provision-cluster", "provision-unsupported", "provision-registry", "launch-app", "build-stack"):
            handle(request, action)
        with analytics_scope(project_id=project_id):
            Applications().redeploy_from_webhook(cluster_id=3, app_name="web", app_namespace="default", image_uri="i:1")
        handle(request, "delete-project")
    return [dict(m) for m in events.messages]


@pytest.fixture
def all_logs() -> Iterator[LogCapture]:
    """Every record of every logger at DEBUG, captured for the test."""
    with capture_all_logs() as handler:
        yield handler
