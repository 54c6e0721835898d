"""Group, Page, Screen and Alias: declared, checked, encoded, delivered, and equal to the official client's."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from segment.analytics import Client as SegmentClient

import instrument
from instrument import (
    Alias,
    AnalyticsError,
    Client,
    Group,
    Page,
    ProjectGroup,
    PropertyError,
    ScopeError,
    Screen,
    TrackDefinitionError,
    analytics_scope,
    to_message,
)
from instrument.testing import SegmentEndpoint, capture_events


class Company(Group):
    name: str
    employees: int = 0


class Membership(ProjectGroup):
    role: str


class Pricing(Page, name="Pricing", category="Docs"):
    plan: str
    referrer: str | None = None


class Home(Screen, name="Home"):
    tab: str


class ClusterPage(Page, name="Cluster", scope="cluster"):
    view: str


# -- the wire form --------------------------------------------------------------------------------


def _sent(record: Any) -> dict[str, Any]:
    message = to_message(record)
    return {k: v for k, v in message.items() if k not in ("messageId", "timestamp")}


def test_group_sends_the_given_group_id_and_its_traits() -> None:
    with analytics_scope(user_id=5):
        assert _sent(Company(group_id="acme", name="Acme", employees=3)) == {
            "type": "group",
            "userId": "5",
            "groupId": "acme",
            "traits": {"name": "Acme", "employees": 3},
        }


def test_project_group_takes_its_group_id_from_the_bound_project_and_sends_no_scope_trait() -> None:
    with analytics_scope(user_id=5, project_id=7):
        membership = Membership(role="admin")
    assert membership.group_id == 7
    assert _sent(membership) == {"type": "group", "userId": "5", "groupId": "7", "traits": {"role": "admin"}}


def test_project_group_takes_a_given_project_id_over_the_bound_one() -> None:
    with analytics_scope(user_id=5, project_id=7):
        assert _sent(Membership(role="admin", project_id=9))["groupId"] == "9"


def test_page_and_screen_carry_name_and_category_at_the_top_level() -> None:
    with analytics_scope(anonymous_id="anon-1"):
        assert _sent(Pricing(plan="pro")) == {
            "type": "page",
            "anonymousId": "anon-1",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"plan": "pro", "referrer": None},
        }
        assert _sent(Home(tab="feed")) == {
            "type": "screen",
            "anonymousId": "anon-1",
            "name": "Home",
            "properties": {"tab": "feed"},
        }


def test_a_scoped_page_sends_its_scope_fields_as_properties() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        assert _sent(ClusterPage(view="nodes"))["properties"] == {"view": "nodes", "project_id": 2, "cluster_id": 3}


def test_unnamed_page_and_screen_are_sent_without_name() -> None:
    with analytics_scope(user_id=1):
        assert _sent(Page()) == {"type": "page", "userId": "1", "properties": {}}
        assert _sent(Screen()) == {"type": "screen", "userId": "1", "properties": {}}


def test_alias_sends_previous_id_and_user_id_only() -> None:
    with analytics_scope(user_id=5, anonymous_id="anon-1"):
        assert _sent(Alias(previous_id="anon-1")) == {"type": "alias", "userId": "5", "previousId": "anon-1"}


# -- construction checks --------------------------------------------------------------------------


def test_group_without_group_id_is_a_property_error_in_strict_mode() -> None:
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(PropertyError, match="group_id"):
        Company(name="Acme")  # type: ignore[call-arg]


def test_project_group_without_a_bound_project_is_a_scope_error_in_strict_mode() -> None:
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(ScopeError, match="project_id"):
        Membership(role="admin")


def test_page_with_a_mistyped_property_is_a_property_error_naming_it() -> None:
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(PropertyError, match=r"Pricing\.plan: expected str, got int"):
        Pricing(plan=3)  # type: ignore[arg-type]


def test_alias_needs_a_user_id_an_anonymous_id_does_not_stand_in() -> None:
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(anonymous_id="anon-1"), pytest.raises(ScopeError, match="user_id"):
        Alias(previous_id="anon-1")


@pytest.mark.parametrize("previous_id", ["", True, 1.5, None])
def test_alias_previous_id_must_be_an_id(previous_id: object) -> None:
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(PropertyError, match="previous_id"):
        Alias(previous_id=previous_id)  # type: ignore[arg-type]


def test_in_production_a_bad_call_is_dropped_and_reported_not_raised(
    memory: instrument.MemoryTransport, reported: list[AnalyticsError]
) -> None:
    with analytics_scope(user_id=1):
        result = instrument.group(Company(name="Acme"))  # type: ignore[call-arg]
    assert isinstance(result.error, PropertyError)
    assert memory.messages == []
    assert instrument.stats().dropped_total == 1


def test_each_call_takes_only_its_own_class(memory: instrument.MemoryTransport) -> None:
    with analytics_scope(user_id=1):
        result = instrument.group(Pricing(plan="x"))  # type: ignore[arg-type]
    assert isinstance(result.error, PropertyError)
    assert "group() takes a Group instance, got Pricing" in str(result.error)


def test_the_generated_signatures_name_the_ids_each_call_needs() -> None:
    assert list(inspect.signature(Company).parameters) == ["group_id", "name", "employees", "user_id"]
    assert list(inspect.signature(Membership).parameters) == ["role", "user_id", "project_id"]
    assert list(inspect.signature(Alias).parameters) == ["previous_id", "user_id"]
    assert inspect.signature(Alias).parameters["previous_id"].default is inspect.Parameter.empty


@given(st.one_of(st.integers(min_value=0), st.text(min_size=1)))
def test_any_id_is_sent_as_text(group_id: int | str) -> None:
    with analytics_scope(user_id=1):
        assert _sent(Company(group_id=group_id, name="n"))["groupId"] == str(group_id)
        assert _sent(Alias(previous_id=group_id))["previousId"] == str(group_id)


# -- definition checks ----------------------------------------------------------------------------


def test_definition_errors_name_the_class() -> None:
    with pytest.raises(TrackDefinitionError, match="an Alias has no properties"):

        class Signup(Alias):
            plan: str

    with pytest.raises(TrackDefinitionError, match="group id is not a trait"):

        class Team(Group):
            group_id: str

    with pytest.raises(TrackDefinitionError, match="name= must be a non-empty str"):

        class Blank(Page, name=""):
            pass

    with pytest.raises(TrackDefinitionError, match="has no event"):

        class Evented(Page, event="X"):  # type: ignore[call-arg]
            pass

    with pytest.raises(TrackDefinitionError, match="takes no scope="):

        class Scoped(Group, scope="project"):  # type: ignore[call-arg]
            name: str

    with pytest.raises(TrackDefinitionError, match="group_by= names a scope field"):

        class Nowhere(Group, group_by="nope"):
            pass

    with pytest.raises(TrackDefinitionError, match="is a scope field"):

        class Clash(Page, name="Clash"):
            project_id: int


def test_a_subclassed_alias_is_sent_as_an_alias() -> None:
    class Signup(Alias):
        pass

    with analytics_scope(user_id=2):
        assert _sent(Signup(previous_id="a"))["type"] == "alias"


# -- delivered, counted, and equal to the official client's messages ----------------------------------

WRITE_KEY = "wk-calls"


@pytest.fixture
def official(endpoint: SegmentEndpoint) -> SegmentClient:
    # sync_mode: each call posts at once (the client then has no consumer thread to join).
    return SegmentClient(WRITE_KEY, host=endpoint.url, sync_mode=True)


def _comparable(message: dict[str, Any]) -> dict[str, Any]:
    # messageId and timestamp differ by nature; the official client also sends keys it was given None
    # for, an empty integrations object, and its own library stamp in the context.
    kept = {k: v for k, v in message.items() if k not in ("messageId", "timestamp") and v is not None}
    if kept.get("integrations") == {}:
        del kept["integrations"]
    context = {k: v for k, v in kept.pop("context", {}).items() if k != "library"}
    return {**kept, "context": context} if context else kept


def _instrument_calls() -> None:
    with analytics_scope(user_id=42, project_id="p-7", anonymous_id="anon-1"):
        instrument.group(Company(group_id="acme", name="Acme", employees=12))
        instrument.group(Membership(role="admin"))
        instrument.page(Pricing(plan="pro", referrer="docs"))
        instrument.screen(Home(tab="feed"))
        instrument.alias(Alias(previous_id="anon-1"))
    with analytics_scope(anonymous_id="anon-2"):
        instrument.page(Page())


def _official_calls(client: SegmentClient) -> None:
    client.group("42", "acme", {"name": "Acme", "employees": 12}, anonymous_id="anon-1")
    client.group("42", "p-7", {"role": "admin"}, anonymous_id="anon-1")
    client.page("42", "Docs", "Pricing", {"plan": "pro", "referrer": "docs"}, anonymous_id="anon-1")
    client.screen("42", None, "Home", {"tab": "feed"}, anonymous_id="anon-1")
    client.alias("anon-1", "42")
    client.page(anonymous_id="anon-2")


def test_every_call_matches_the_official_clients_message_at_a_loopback_endpoint(
    endpoint: SegmentEndpoint, official: SegmentClient, configure: Callable[..., Client]
) -> None:
    _official_calls(official)
    assert endpoint.wait_for(6, timeout=10)
    theirs = [_comparable(m) for b in endpoint.batches for m in b.messages]
    endpoint.clear()

    configure(sync=True)
    _instrument_calls()
    assert endpoint.wait_for(6, timeout=10)
    ours = [_comparable(m) for b in endpoint.batches for m in b.messages]

    assert [m["type"] for m in ours] == ["group", "group", "page", "screen", "alias", "page"]
    assert ours == theirs
    assert instrument.flush(10.0)
    stats = instrument.stats()
    assert (stats.recorded, stats.sent, stats.dropped_total) == (6, 6, 0)


def test_calls_wait_in_the_spool_while_the_endpoint_is_down_and_are_delivered_once(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], tmp_path: Path
) -> None:
    endpoint.stop()
    client = configure(spool=tmp_path / "spool", timeout=2.0)
    _instrument_calls()
    assert client.spool is not None
    endpoint.start()
    assert instrument.flush(30.0)
    assert sorted(m["type"] for m in endpoint.messages) == ["alias", "group", "group", "page", "page", "screen"]
    assert endpoint.unique_message_ids == 6


def test_capture_holds_every_call_in_emission_order() -> None:
    with capture_events() as events:
        _instrument_calls()
    assert [e.type for e in events] == ["group", "group", "page", "screen", "alias", "page"]


class _TeamTrack(instrument.Track, defines_scope="calls_team"):
    team_id: instrument.ScopeId | None = None


class _TeamGroup(Group, group_by="team_id"):
    team_id: instrument.ScopeId | None = None
    group_id: None = None  # type: ignore[assignment]  # the team is the group


class _TeamJoined(_TeamGroup):
    seat: str


def test_a_group_base_of_your_own_scope_takes_its_group_id_from_that_field() -> None:
    with analytics_scope(user_id=1), _TeamTrack.analytics_scope(team_id="t-9"):
        joined = _TeamJoined(seat="a")
    assert _sent(joined) == {"type": "group", "userId": "1", "groupId": "t-9", "traits": {"seat": "a"}}
    instrument.configure(transport=instrument.MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(ScopeError, match="team_id"):
        _TeamJoined(seat="a")


def test_the_redact_hook_sees_page_and_screen_properties_with_the_name_and_not_traits(
    memory: instrument.MemoryTransport,
) -> None:
    seen: list[str] = []

    def redact(name: str, properties: dict[str, Any]) -> dict[str, Any]:
        seen.append(name)
        return {k: v for k, v in properties.items() if k not in ("plan", "name")}

    instrument.configure(transport=memory, sync=True, redact=redact)
    with analytics_scope(user_id=1):
        instrument.page(Pricing(plan="pro", referrer="docs"))
        instrument.screen(Home(tab="feed"))
        instrument.group(Company(group_id="acme", name="Acme"))
    assert seen == ["Pricing", "Home"]
    page, screen, group = memory.messages
    assert page["properties"] == {"referrer": "docs"}
    assert screen["properties"] == {"tab": "feed"}
    assert group["traits"] == {"name": "Acme", "employees": 0}  # traits, as an identify's, are not redacted
