"""The example service: run as the README runs it, and tested with the testing kit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.porter.analytics import (
    ApplicationLaunchSuccess,
    ClusterProvisioningError,
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    Events,
    RegistryProvisioningSuccess,
    StackBuildFailure,
    TriggeredRedeployViaWebhook,
    UserTraits,
)
from examples.porter.service import Applications, ProvisioningFailed, Request, Users, handle
from instrument import MAX_MESSAGE_BYTES, analytics_scope

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(60)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEGMENT_WRITE_KEY", "SEGMENT_CLIENT_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_example_runs_without_a_key_and_shows_every_event(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "examples.porter", "--events-file", str(events_file)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no Segment key" in done.stdout
    assert "[analytics] track 'Cluster Provisioning Success' userId=42" in done.stdout
    messages = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(messages) == 12
    assert done.stdout.strip().endswith("recorded=12 sent=12 dropped=0")
    # The creator is tied to the new project by a typed Group (the project is the group).
    [membership] = [m for m in messages if m["type"] == "group"]
    assert (membership["groupId"], membership["userId"], membership["traits"]) == ("1", "42", {"role": "admin"})
    success = next(m for m in messages if m.get("event") == "Cluster Provisioning Success")
    # Porter's wire format: userId as text, project_id sent as proj_id, scope keys after the event's own.
    assert success["userId"] == "42"
    assert set(success["properties"]) == {"cluster_type", "infra_id", "proj_id", "cluster_id"}
    assert all(len(json.dumps(m).encode()) <= MAX_MESSAGE_BYTES for m in messages)


def test_example_delivers_what_it_queued_when_terminated(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.porter", "--serve", "--events-file", str(events_file)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        serving = False
        for _ in range(500):  # bounded: wait for the banner, then for one event handled while serving
            line = proc.stdout.readline()
            if not line:
                break
            serving = serving or line.startswith("serving until SIGTERM")
            if serving and "Registry Provisioning Success" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    messages = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(messages) >= 11
    served = [m for m in messages if m.get("event") == "Registry Provisioning Success"]
    assert len(served) >= 2  # one before serving, at least one while serving
    # Everything recorded before SIGTERM was written out by the shutdown in the handler.
    assert f"terminated: recorded={len(messages)} sent={len(messages)} dropped=0" in out


def test_provisioning_a_cluster_tracks_started_then_success(analytics_events) -> None:  # type: ignore[no-untyped-def]
    cluster = handle(Request(user_id=42, project_id=1), "provision-cluster")
    analytics_events.assert_sequence([ClusterProvisioningStarted, ClusterProvisioningSuccess])
    analytics_events.assert_tracked(
        ClusterProvisioningSuccess,
        exact=True,
        cluster_type="eks",
        infra_id=7,
        project_id=1,
        cluster_id=cluster.id,  # type: ignore[attr-defined]
    )
    analytics_events.assert_tracked(ClusterProvisioningStarted, count=1, project_id=1, user_id=42)


def test_a_failed_provisioning_sends_the_error_track_and_keeps_the_exception(analytics_events) -> None:  # type: ignore[no-untyped-def]
    result = handle(Request(user_id=42, project_id=1), "provision-unsupported")
    assert isinstance(result, ProvisioningFailed)
    analytics_events.assert_tracked(ClusterProvisioningError, error="ProvisioningFailed", infra_id=8)
    analytics_events.assert_not_tracked(ClusterProvisioningSuccess)


def test_registry_and_application_events_carry_their_scope(analytics_events) -> None:  # type: ignore[no-untyped-def]
    handle(Request(user_id=42, project_id=1), "provision-registry")
    handle(Request(user_id=42, project_id=1), "launch-app")
    analytics_events.assert_tracked(RegistryProvisioningSuccess, registry_id=5, registry_type="ecr", project_id=1)
    analytics_events.assert_tracked(
        ApplicationLaunchSuccess,
        flow_id="flow-1",
        cluster_id=3,
        app_name="web",
        app_namespace="default",
        chart_name="web",
    )


def test_webhook_redeploy_is_a_system_event_of_user_zero(analytics_events) -> None:  # type: ignore[no-untyped-def]
    with analytics_scope(project_id=1):
        Applications().redeploy_from_webhook(cluster_id=3, app_name="web", app_namespace="default", image_uri="img:1")
    [event] = analytics_events.assert_tracked(TriggeredRedeployViaWebhook, image_uri="img:1")
    assert event.user_id == "0"


def test_stack_build_logs_are_cut_to_fit_instead_of_dropped(analytics_events) -> None:  # type: ignore[no-untyped-def]
    handle(Request(user_id=42, project_id=1), "build-stack")
    [event] = analytics_events.of(StackBuildFailure)
    assert event.properties["b64_build_logs"].endswith("...[truncated]")
    assert len(json.dumps(event.message).encode()) <= MAX_MESSAGE_BYTES


def test_personal_data_goes_only_into_identify_traits(analytics_events) -> None:  # type: ignore[no-untyped-def]
    with analytics_scope(user_id=42):
        Users().login("ada@example.com", github=True)
    handle(Request(user_id=42, project_id=1), "build-stack")
    analytics_events.assert_identified(UserTraits, user_id=42, email="ada@example.com", github="true")
    assert all("email" not in event.properties for event in analytics_events.tracks)


def test_the_catalog_has_porters_47_events() -> None:
    assert len(Events) == 47
    assert Events.NEW_PROJECT == "New Project Event"
