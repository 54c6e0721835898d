"""The assert_* methods of CapturedEvents and its queries (testing/_assertions.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

import pytest
from dirty_equals import IsStr
from kit_catalog import (
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    Events,
    ItemsExported,
    ProjectCreated,
    UserTraits,
    emit_cluster_success,
)

import instrument
from instrument import Consent, Personal, Track, analytics_scope, consent_scope
from instrument.destinations import Amplitude, PostHog, Segment
from instrument.destinations._base import hashed
from instrument.testing import AnalyticsAssertionError, CapturedEvents, capture_events
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(60)


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


# -- group, page, screen and alias --------------------------------------------------------------------


class Company(instrument.Group):
    company_name: str
    seats: int = 1


class Membership(instrument.ProjectGroup):
    role: str


class Pricing(instrument.Page, name="Pricing", category="Docs"):
    plan: str


class Home(instrument.Screen, name="Home"):
    tab: str


@pytest.fixture
def calls() -> CapturedEvents:
    with capture_events() as events, instrument.analytics_scope(user_id=42, project_id=7):
        instrument.group(Company(group_id="acme", company_name="Acme", seats=3))
        instrument.group(Membership(role="admin"))
        instrument.page(Pricing(plan="pro"))
        instrument.screen(Home(tab="feed"))
        instrument.alias(instrument.Alias(previous_id="anon-1"))
    return events


def test_each_call_has_its_query_and_its_assertion(calls: CapturedEvents) -> None:
    assert [len(calls.groups), len(calls.pages), len(calls.screens), len(calls.aliases)] == [2, 1, 1, 1]
    [acme] = calls.assert_grouped(Company, group_id="acme", user_id=42, company_name="Acme")
    assert acme.traits == {"company_name": "Acme", "seats": 3}
    calls.assert_grouped(Membership, group_id=7, exact=True, role="admin")
    calls.assert_grouped(count=2)
    calls.assert_paged(Pricing, plan="pro", exact=True)
    calls.assert_paged(name="Pricing", category="Docs")
    calls.assert_screened(Home, tab="feed")
    calls.assert_aliased(previous_id="anon-1", user_id=42)


def test_a_call_assertion_that_fails_shows_the_field_diff_of_the_closest(calls: CapturedEvents) -> None:
    with pytest.raises(AnalyticsAssertionError) as info:
        calls.assert_grouped(Company, group_id="acme", seats=4)
    text = str(info.value)
    assert "expected a group call with group_id='acme', seats=4; 2 group call(s) captured, none matches" in text
    assert "seats: expected 4, got 3" in text
    with pytest.raises(AnalyticsAssertionError, match="name: expected 'Pricing', got 'Home'"):
        calls.assert_screened(name="Pricing")
    with pytest.raises(AnalyticsAssertionError, match=r"previous_id \(previousId\): expected 'anon-2', got 'anon-1'"):
        calls.assert_aliased(previous_id="anon-2")


def test_a_misspelt_field_of_a_call_class_gets_a_suggestion(calls: CapturedEvents) -> None:
    with pytest.raises(
        AnalyticsAssertionError, match=r"Company has no field 'company_nam'\. Did you mean 'company_name'"
    ):
        calls.assert_grouped(Company, company_nam="Acme")
    with pytest.raises(AnalyticsAssertionError, match=r"Pricing has no field 'plna'\. Did you mean 'plan'"):
        calls.assert_paged(Pricing, plna="pro")


def test_a_call_that_was_not_sent_is_said_so() -> None:
    with capture_events() as events:
        emit_cluster_success()
    with pytest.raises(AnalyticsAssertionError, match="no alias call was captured"):
        events.assert_aliased()
    with pytest.raises(AnalyticsAssertionError, match="no page call was captured"):
        events.assert_paged(Pricing)


class SignedUp(Track, event="Signed Up"):
    email: Annotated[str, Personal]
    plan: str


def test_assert_tracked_per_destination_follows_routing_consent_renames_and_personal_properties() -> None:
    with capture_events() as events:
        instrument.configure(
            destinations=[
                Segment("k"),
                PostHog("k", consent="analytics", renames={"Signed Up": "signed_up"}, personal="omit"),
                Amplitude("k", events=["Items Exported"]),
            ]
        )
        with analytics_scope(user_id="u1"):
            instrument.track(SignedUp(email="a@example.com", plan="pro"))  # no consent bound
            with consent_scope(Consent(granted={"analytics"})):
                instrument.track(SignedUp(email="b@example.com", plan="team"))
    events.assert_tracked(SignedUp, 2, destination="segment")
    events.assert_tracked(SignedUp, destination="segment", email=hashed("a@example.com"), plan="pro")
    events.assert_tracked(SignedUp, 1, exact=True, destination="posthog", plan="team")  # email omitted
    with pytest.raises(AnalyticsAssertionError, match="signed_up"):
        events.assert_tracked(SignedUp, destination="posthog", plan="pro")
    with pytest.raises(AnalyticsAssertionError):
        events.assert_tracked(SignedUp, destination="amplitude")
    with pytest.raises(AnalyticsAssertionError, match="no destination named 'mixpanel'"):
        events.assert_tracked(SignedUp, destination="mixpanel")
