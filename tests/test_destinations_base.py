"""Destination: routing by event, catalog and scope base; renames; personal properties hashed or omitted."""

from __future__ import annotations

import hashlib
from typing import Annotated

import pytest
from kit_catalog import ClusterProvisioningSuccess, Events, ItemsExported, ProjectCreated, UserTraits

from instrument import ClusterTrack, ConfigurationError, Identify, Personal, Track
from instrument.destinations import PostHog, Segment
from instrument.destinations._base import hashed, personal_keys


class Signup(Track, event="Signed Up"):
    email: Annotated[str, Personal]
    plan: str


class ClusterEvent(ClusterTrack, event="Cluster Resized"):
    size: int


class Person(Identify):
    email: Annotated[str, Personal]


def test_routing_by_event_name_catalog_and_scope_base() -> None:
    by_name = Segment("k", events=["Items Exported"])
    assert by_name.routes(ItemsExported)
    assert not by_name.routes(ProjectCreated)
    by_catalog = Segment("k", events=[Events])
    assert by_catalog.routes(ProjectCreated)
    assert not by_catalog.routes(Signup)
    by_base = Segment("k", events=[ClusterTrack])
    assert by_base.routes(ClusterEvent)
    assert not by_base.routes(ItemsExported)
    by_scope = Segment("k", scopes=["cluster"])
    assert by_scope.routes(ClusterProvisioningSuccess)
    assert by_scope.routes(ClusterEvent)
    assert not by_scope.routes(ItemsExported)
    assert Segment("k").routes(Signup)
    assert not Segment("k", identifies=False).routes(UserTraits)
    assert Segment("k").routes(UserTraits)


def test_a_routing_entry_of_another_kind_is_refused_by_name_not_value() -> None:
    with pytest.raises(ConfigurationError, match="got int"):
        Segment("k", events=[3])  # type: ignore[list-item]


def test_personal_keys_are_the_wire_keys_of_marked_properties() -> None:
    assert personal_keys(Signup) == {"email"}
    assert personal_keys(Person) == {"email"}
    assert personal_keys(ItemsExported) == frozenset()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("hash", hashlib.sha256(b"a@example.com").hexdigest()), ("omit", None), ("keep", "a@example.com")],
)
def test_personal_properties_are_hashed_omitted_or_kept_per_destination(policy: str, expected: str | None) -> None:
    message = {"type": "track", "event": "Signed Up", "properties": {"email": "a@example.com", "plan": "pro"}}
    out = Segment("k", personal=policy).transform(message, frozenset({"email"}))
    assert out["properties"].get("email") == expected
    assert out["properties"]["plan"] == "pro"
    assert message["properties"]["email"] == "a@example.com"  # the message built once is not changed


def test_renames_change_the_event_name_for_that_destination_only() -> None:
    message = {"type": "track", "event": "Signed Up", "properties": {}}
    assert PostHog("k", renames={"Signed Up": "user signed up"}).transform(message, frozenset())["event"] == (
        "user signed up"
    )
    assert message["event"] == "Signed Up"


def test_destinations_that_agree_share_one_encoding() -> None:
    assert Segment("a").encoding == Segment("b", name="second_account").encoding
    assert Segment("a").encoding != Segment("a", personal="omit").encoding


def test_describe_shows_routing_renames_consent_and_the_mapping() -> None:
    described = PostHog("k", events=[Events], renames={"x": "y"}, consent="analytics", personal="omit").describe()
    assert described["events"] == sorted(e.value for e in Events)
    assert described["renames"] == {"x": "y"}
    assert described["consent"] == ["analytics"]
    assert described["personal"] == "omit"
    assert described["mapping"]["messageId"] == "uuid"


def test_hashed_is_sha256_of_the_text() -> None:
    assert hashed(12) == hashlib.sha256(b"12").hexdigest()
