"""The assert_* methods of CapturedEvents, matchers and failure diffs (testing/_assertions.py, _matching.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

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
    emit_cluster_success,
)

import instrument
from instrument import (
    Track,
    analytics_scope,
)
from instrument.testing import ANY, AnalyticsAssertionError, CapturedEvents, capture_events
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(60)


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


def test_assert_tracked_props_gives_fields_named_like_arguments(captured: CapturedEvents) -> None:
    [match] = captured.assert_tracked(ItemsExported, props={"count": 3, "exact": False})
    assert match.properties["count"] == 3
    with pytest.raises(AnalyticsAssertionError, match="count: expected 4, got 3"):
        captured.assert_tracked(ItemsExported, props={"count": 4})


def test_assert_tracked_matches_scope_fields_by_name_under_renamed_wire_keys() -> None:
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
