"""Matching expected fields (``testing/_matching.py``): matchers, encoded expectations, failure diffs and hints."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from dirty_equals import IsInt, IsPositiveInt, IsStr
from kit_catalog import (
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    Events,
    ItemsExported,
    Kind,
    ProjectCreated,
    UserTraits,
)

import instrument
from instrument import Track, analytics_scope
from instrument.testing import ANY, AnalyticsAssertionError, CapturedEvents, capture_events

pytestmark = pytest.mark.timeout(60)


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
    # By event name (a class would refuse the unknown field at once, see the suggestion tests).
    with pytest.raises(AnalyticsAssertionError, match=r"Missing keys.*\n\s+absent: expected ANY"):
        captured.assert_tracked(Events.CLUSTER_PROVISIONING_SUCCESS, absent=ANY)


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


class RequestHandled(Track, event="Request Handled", scope="project"):
    request_id: int


def test_a_misspelt_field_of_a_track_class_is_named_with_the_closest_field() -> None:
    with capture_events() as events, analytics_scope(user_id=1, project_id=2):
        instrument.track(RequestHandled(request_id=1))
    with pytest.raises(AnalyticsAssertionError) as info:
        events.assert_tracked(RequestHandled, requestid=1)
    assert "RequestHandled has no field 'requestid'. Did you mean 'request_id'?" in str(info.value)
    # assert_not_tracked would pass for ever with a field the class does not have: refused at once.
    with pytest.raises(AnalyticsAssertionError, match=r"has no field 'requestid'\. Did you mean 'request_id'"):
        events.assert_not_tracked(RequestHandled, requestid=2)
    with pytest.raises(AnalyticsAssertionError, match=r"UserTraits has no field 'mail'\. Did you mean 'email'"):
        events.assert_identified(UserTraits, mail="a@b.c")
    events.assert_tracked(RequestHandled, request_id=1, project_id=2, user_id=1)


def test_an_event_name_in_no_catalog_is_reported_as_such(captured: CapturedEvents) -> None:
    with pytest.raises(
        AnalyticsAssertionError, match="'Project Createdd' is not an event of any defined catalog"
    ) as info:
        captured.assert_not_tracked("Project Createdd")
    assert "did you mean 'Project Created'" in str(info.value)  # the closest first
    with pytest.raises(AnalyticsAssertionError, match="'Nothing Like It' is not an event of any defined catalog"):
        captured.assert_tracked("Nothing Like It")
    captured.assert_tracked("Project Created")  # a catalog value
    captured.assert_not_tracked("Request Handled")  # a Track class's event
