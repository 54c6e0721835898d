"""Track and Identify: construction, validation in production and strict mode, and the exact wire message."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, cast

import pytest
from dirty_equals import IsStr

from examples.porter.analytics import (
    ApplicationLaunchSuccess,
    ClusterProvisioningSuccess,
    RegistryProvisioningSuccess,
    TriggeredRedeployViaWebhook,
)
from instrument import (
    MAX_MESSAGE_BYTES,
    EncodingError,
    EventName,
    EventNameError,
    Identify,
    OversizeError,
    PropertyError,
    ScopeError,
    Track,
    TrackDefinitionError,
    Truncatable,
    analytics_scope,
    field,
    to_message,
)
from instrument._mode import mode
from instrument._tracks import EncodeOptions, adhoc_track, find_error, spec_of

TIMESTAMP = IsStr(regex=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MESSAGE_ID = IsStr(regex=r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


class Events(EventName):
    STACK_BUILD_FAILURE = "Stack Build Failure"
    THING_HAPPENED = "Thing Happened"


class StackBuildFailure(Track, event=Events.STACK_BUILD_FAILURE, scope="project"):
    stack_name: str
    error_message: str
    b64_build_logs: Annotated[str, Truncatable] = ""


class Typed(Track, event="Typed Thing Happened"):
    count: int
    ratio: float
    label: str
    flag: bool = False
    note: Optional[str] = None  # noqa: UP045 - the Optional form is what is tested
    tags: list[str] = field(default_factory=list)
    kind: Literal["a", "b"] = "a"
    anything: Any = None


class WithAny(Track, event="Any Thing Happened"):
    payload: Any


class Renamed(Track, event="Renamed Thing Happened", scope="project"):
    internal_name: str = field(key="name")
    body: str = field(default="", truncatable=True)


class LaterRef(Track, event="Later Ref Happened"):
    when: Later  # defined below: a forward reference


class Later:
    def __init__(self, value: int) -> None:
        self.value = value


class UserTraits(Identify):
    email: str
    github: str


# -- construction ------------------------------------------------------------------------------


def test_construction_fills_the_scope_from_analytics_scope() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    assert event.validation_error is None
    assert event.scope == {"user_id": 42, "project_id": 7, "cluster_id": 3}
    assert event.cluster_id == 3
    assert event.project_id == 7
    assert event.properties == {"cluster_type": "EKS", "infra_id": 11}


def test_the_scope_is_snapshotted_at_construction() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    assert event.scope["cluster_id"] == 3  # still, outside the block
    assert to_message(event)["properties"]["cluster_id"] == 3


def test_a_keyword_overrides_the_bound_scope_field() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11, cluster_id=9)
    assert event.validation_error is None
    assert event.cluster_id == 9
    assert event.scope == {"user_id": 42, "project_id": 7, "cluster_id": 9}


def test_scope_fields_can_all_be_given_as_keywords_without_a_bound_scope() -> None:
    event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11, user_id=1, project_id=2, cluster_id=3)
    assert event.validation_error is None
    assert to_message(event)["userId"] == "1"


def test_a_missing_required_property_is_kept_as_the_validation_error() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS")  # type: ignore[call-arg]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "infra_id"
    assert error.track == "ClusterProvisioningSuccess"
    assert "required property 'infra_id'" in str(error)


def test_a_missing_required_any_property_is_found_at_construction() -> None:
    with analytics_scope(user_id=1):
        event = WithAny()  # type: ignore[call-arg]
        assert WithAny(payload=None).validation_error is None
    assert isinstance(event.validation_error, PropertyError)
    assert event.validation_error.field == "payload"


@pytest.mark.parametrize(
    ("overrides", "bad_field", "value_type"),
    [
        ({"count": "3"}, "count", "str"),
        ({"count": True}, "count", "bool"),
        ({"count": 3.0}, "count", "float"),
        ({"ratio": "0.5"}, "ratio", "str"),
        ({"ratio": False}, "ratio", "bool"),
        ({"label": 5}, "label", "int"),
        ({"flag": 1}, "flag", "int"),
        ({"note": 1}, "note", "int"),
        ({"kind": "c"}, "kind", "str"),
        ({"tags": "abc"}, "tags", "str"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_property_error(
    overrides: dict[str, Any], bad_field: str, value_type: str
) -> None:
    values: dict[str, Any] = {"count": 1, "ratio": 0.5, "label": "x", **overrides}
    with analytics_scope(user_id=1):
        event = Typed(**values)
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == bad_field
    assert error.value_type == value_type
    assert error.track == "Typed"
    assert f"Typed.{bad_field}: expected" in str(error)


def test_float_accepts_int_and_optional_defaults_and_factories_apply() -> None:
    with analytics_scope(user_id=1):
        first = Typed(count=1, ratio=2, label="x")
        second = Typed(count=1, ratio=2.5, label="x", note="n", kind="b")
    assert first.validation_error is None
    assert second.validation_error is None
    assert first.properties == {
        "count": 1,
        "ratio": 2,
        "label": "x",
        "flag": False,
        "note": None,
        "tags": [],
        "kind": "a",
        "anything": None,
    }
    assert first.tags is not second.tags  # a fresh list per instance
    assert second.note == "n"


def test_list_items_are_checked_deeply_by_to_message_not_by_the_fast_path() -> None:
    with analytics_scope(user_id=1):
        event = Typed(count=1, ratio=1.0, label="x", tags=["ok", 2])  # type: ignore[list-item]
    assert event.validation_error is None  # the fast path only looks at the container class
    with pytest.raises(PropertyError) as info:
        to_message(event)
    assert info.value.field == "tags"
    assert isinstance(find_error(event), PropertyError)


def test_strict_mode_checks_list_items_at_construction() -> None:
    mode.strict = True
    with analytics_scope(user_id=1), pytest.raises(PropertyError, match="list\\[str\\]") as info:
        Typed(count=1, ratio=1.0, label="x", tags=["ok", 2])  # type: ignore[list-item]
    assert info.value.field == "tags"


def test_a_field_of_another_scope_given_as_keyword_is_a_scope_error() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1, registry_id=5)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert error.field == "registry_id"
    assert error.scope == "cluster"
    assert error.track == "ClusterProvisioningSuccess"


def test_an_unknown_keyword_is_a_property_error_naming_the_track_and_field() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1, infra_idd=2)  # type: ignore[call-arg]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "infra_idd"
    assert error.track == "ClusterProvisioningSuccess"
    assert "ClusterProvisioningSuccess" in str(error)
    assert "'infra_idd'" in str(error)


def test_a_missing_scope_field_is_a_scope_error_naming_track_scope_and_field() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert (error.track, error.scope, error.field) == ("ClusterProvisioningSuccess", "cluster", "cluster_id")
    assert all(word in str(error) for word in ("ClusterProvisioningSuccess", "'cluster'", "'cluster_id'"))


def test_a_scope_id_of_the_wrong_type_is_a_scope_error_at_encoding() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3.5):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    assert event.validation_error is None  # the fast path only sees that the field is bound
    with pytest.raises(ScopeError) as info:
        to_message(event)
    assert (info.value.field, info.value.scope) == ("cluster_id", "cluster")


def test_a_scope_id_of_the_wrong_type_raises_at_construction_in_strict_mode() -> None:
    mode.strict = True
    with analytics_scope(user_id=True, project_id=2), pytest.raises(ScopeError, match="'user_id'"):
        Typed(count=1, ratio=1.0, label="x")


def test_to_message_raises_the_construction_error() -> None:
    with analytics_scope(user_id=1):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    assert event.validation_error is not None
    with pytest.raises(ScopeError) as info:
        to_message(event)
    assert info.value is event.validation_error


def test_strict_mode_raises_at_construction() -> None:
    mode.strict = True
    with analytics_scope(user_id=1, project_id=2), pytest.raises(ScopeError, match="cluster_id"):
        ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        with pytest.raises(PropertyError, match="infra_id"):
            ClusterProvisioningSuccess(cluster_type="EKS", infra_id="1")  # type: ignore[arg-type]
        assert ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1).validation_error is None


# -- definition errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cluster_id", "user_id", "app_name", "project_id"])
def test_declaring_a_property_named_like_a_scope_field_is_a_definition_error(name: str) -> None:
    with pytest.raises(TrackDefinitionError, match="scope field"):
        type("Bad", (Track,), {"__annotations__": {name: "int"}}, event="Bad Thing Happened")


@pytest.mark.parametrize("name", ["scope", "properties", "validation_error", "_private"])
def test_declaring_a_reserved_property_name_is_a_definition_error(name: str) -> None:
    with pytest.raises(TrackDefinitionError, match=name):
        type("Bad", (Track,), {"__annotations__": {name: "int"}}, event="Bad Thing Happened")


def test_an_unknown_scope_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match="unknown scope 'galaxy'"):

        class Bad(Track, event="Bad Thing Happened", scope="galaxy"):
            value: int


def test_a_bad_event_name_is_an_event_name_error_at_definition() -> None:
    with pytest.raises(EventNameError):

        class Bad(Track, event="bad thing"):
            value: int


def test_an_unsupported_annotation_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match="callback"):

        class Bad(Track, event="Bad Thing Happened"):
            callback: Callable[[], int]


def test_field_with_both_default_and_factory_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match="not both"):
        field(default=1, default_factory=list)


def test_two_properties_with_the_same_wire_key_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match="share a wire key"):

        class Bad(Track, event="Bad Thing Happened"):
            first: int = field(key="same")
            second: int = field(key="same")


def test_identify_cannot_have_an_event_or_a_scope_other_than_user() -> None:
    with pytest.raises(TrackDefinitionError, match="no event"):

        class BadTraits(Identify, event="Bad Thing Happened"):
            email: str

    with pytest.raises(TrackDefinitionError, match="user-scoped"):

        class OtherTraits(Identify, scope="project"):
            email: str


def test_a_track_without_event_is_an_abstract_base_usable_for_subclasses() -> None:
    class ClusterBase(Track, scope="cluster"):
        infra_id: int

    class Concrete(ClusterBase, event="Concrete Thing Happened"):
        extra: str

    with pytest.raises(TrackDefinitionError, match="no event"):
        spec_of(ClusterBase)
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        event = Concrete(infra_id=1, extra="x")
    assert event.validation_error is None
    assert to_message(event)["properties"] == {"infra_id": 1, "extra": "x", "project_id": 2, "cluster_id": 3}


def test_a_forward_reference_is_resolved_on_first_use() -> None:
    with analytics_scope(user_id=1):
        good = LaterRef(when=Later(1))
        bad = LaterRef(when=1)  # type: ignore[arg-type]
    assert good.validation_error is None
    assert isinstance(bad.validation_error, PropertyError)
    assert "expected Later" in str(bad.validation_error)


# -- the wire message ----------------------------------------------------------------------------


def test_to_message_is_the_exact_segment_track() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    message = to_message(event)
    assert message == {
        "type": "track",
        "userId": "42",
        "event": "Cluster Provisioning Success",
        "properties": {"cluster_type": "EKS", "infra_id": 11, "proj_id": 7, "cluster_id": 3},
        "timestamp": TIMESTAMP,
        "messageId": MESSAGE_ID,
    }
    assert list(message["properties"]) == ["cluster_type", "infra_id", "proj_id", "cluster_id"]
    assert "anonymousId" not in message
    assert "context" not in message
    assert "user_id" not in message["properties"]


def test_user_id_zero_and_str_ids_are_sent_as_text() -> None:
    with analytics_scope(user_id=0):
        assert to_message(Typed(count=1, ratio=1.0, label="x"))["userId"] == "0"
    with analytics_scope(user_id="u-1"):
        assert to_message(Typed(count=1, ratio=1.0, label="x"))["userId"] == "u-1"


def test_the_timestamp_is_the_construction_time_in_utc() -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with analytics_scope(user_id=1):
        event = Typed(count=1, ratio=1.0, label="x")
    sent = dt.datetime.fromisoformat(to_message(event)["timestamp"].replace("Z", "+00:00"))
    assert before <= sent <= dt.datetime.now(dt.timezone.utc)


def test_each_message_has_a_fresh_message_id() -> None:
    with analytics_scope(user_id=1):
        event = Typed(count=1, ratio=1.0, label="x")
    assert to_message(event)["messageId"] != to_message(event)["messageId"]


def test_the_catalogs_wire_keys_rename_scope_fields_without_options() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    properties = to_message(event)["properties"]
    assert properties == {"cluster_type": "EKS", "infra_id": 11, "proj_id": 7, "cluster_id": 3}


def test_a_catalog_without_wire_keys_sends_the_scopes_keys() -> None:
    with analytics_scope(user_id=42, project_id=7):
        event = StackBuildFailure(stack_name="s", error_message="e")
    assert to_message(event)["properties"] == {
        "stack_name": "s",
        "error_message": "e",
        "b64_build_logs": "",
        "project_id": 7,
    }


def test_field_key_renames_a_property() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Renamed(internal_name="web")
    assert event.internal_name == "web"
    assert to_message(event)["properties"] == {"name": "web", "body": "", "project_id": 2}


def test_a_property_key_colliding_with_a_scope_wire_key_is_refused_at_class_definition() -> None:
    with pytest.raises(TrackDefinitionError, match=r"'project_id'.*field\(key="):

        class Clashing(Track, event="Clashing Thing Happened", scope="project"):
            pid: int = field(key="project_id")

    class Renames(EventName, wire_keys={"project_id": "proj_id"}):
        CLASH_HAPPENED = "Clash Happened"

    with pytest.raises(TrackDefinitionError, match="'proj_id'"):

        class ClashingRenamed(Track, event=Renames.CLASH_HAPPENED, scope="project"):
            pid: int = field(key="proj_id")


def test_a_property_key_colliding_with_a_client_wire_key_is_a_property_error() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Renamed(internal_name="web")
    with pytest.raises(PropertyError, match="'name'"):
        to_message(event, EncodeOptions(wire_keys={"project_id": "name"}))


def test_the_redact_hook_gets_the_event_and_properties_and_its_result_is_sent() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def redact(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        seen.append((event, dict(properties)))
        return {k: v for k, v in properties.items() if k != "cluster_type"}

    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    message = to_message(event, EncodeOptions(redact=redact))
    assert seen == [
        ("Cluster Provisioning Success", {"cluster_type": "EKS", "infra_id": 11, "proj_id": 7, "cluster_id": 3})
    ]
    assert message["properties"] == {"infra_id": 11, "proj_id": 7, "cluster_id": 3}


def test_property_values_are_encoded() -> None:
    class Encoded(Track, event="Encoded Thing Happened"):
        at: dt.datetime
        tags: set[str]

    with analytics_scope(user_id=1):
        event = Encoded(at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901), tags={"b", "a"})
    assert to_message(event)["properties"] == {"at": "2026-01-02T03:04:05.678Z", "tags": ["a", "b"]}


def test_an_unencodable_value_is_an_encoding_error_with_the_path() -> None:
    with analytics_scope(user_id=1):
        event = Typed(count=1, ratio=float("nan"), label="x")
    assert event.validation_error is None
    with pytest.raises(EncodingError) as info:
        to_message(event)
    assert info.value.field == "ratio"
    assert info.value.track == "Typed"


def test_an_oversize_message_is_an_error_naming_the_largest_fields() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="x" * 40_000, infra_id=1)
    with pytest.raises(OversizeError) as info:
        to_message(event)
    error = info.value
    assert error.limit == MAX_MESSAGE_BYTES == 32768
    assert error.size > MAX_MESSAGE_BYTES
    assert error.largest[0][0] == "cluster_type"
    assert error.largest[0][1] >= 40_000
    assert "cluster_type" in str(error)
    assert error.track == "ClusterProvisioningSuccess"


@pytest.mark.parametrize("text", ["x" * 100_000, 'é\n"' * 20_000, "😀" * 9_000])
def test_a_truncatable_field_is_cut_so_the_message_fits(text: str) -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = StackBuildFailure(stack_name="api", error_message="failed", b64_build_logs=text)
    message = to_message(event)
    size = len(json.dumps(message).encode())
    assert size <= MAX_MESSAGE_BYTES
    assert size > MAX_MESSAGE_BYTES - 2_000  # cut, not emptied
    logs = message["properties"]["b64_build_logs"]
    assert logs.endswith("...[truncated]")
    assert text.startswith(logs.removesuffix("...[truncated]"))
    assert message["properties"]["stack_name"] == "api"


def test_field_truncatable_true_works_like_the_annotated_marker() -> None:
    with analytics_scope(user_id=1, project_id=2):
        message = to_message(Renamed(internal_name="n", body="y" * 50_000))
    assert len(json.dumps(message).encode()) <= MAX_MESSAGE_BYTES
    assert message["properties"]["body"].endswith("...[truncated]")


def test_a_small_message_is_not_truncated() -> None:
    with analytics_scope(user_id=1, project_id=2):
        message = to_message(StackBuildFailure(stack_name="api", error_message="e", b64_build_logs="abc"))
    assert message["properties"]["b64_build_logs"] == "abc"


def test_identify_sends_traits_for_the_user() -> None:
    with analytics_scope(user_id=42, project_id=5):
        traits = UserTraits(email="a@example.com", github="true")
    assert traits.validation_error is None
    assert to_message(traits) == {
        "type": "identify",
        "userId": "42",
        "traits": {"email": "a@example.com", "github": "true"},
        "timestamp": TIMESTAMP,
        "messageId": MESSAGE_ID,
    }


def test_identify_for_a_given_user_id() -> None:
    traits = UserTraits(email="a@example.com", github="false", user_id=7)
    assert to_message(traits)["userId"] == "7"


def test_identify_without_a_user_is_a_scope_error() -> None:
    traits = UserTraits(email="a@example.com", github="false")
    assert isinstance(traits.validation_error, ScopeError)
    assert traits.validation_error.field == "user_id"


def test_repr_shows_properties_and_scope() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    assert repr(event) == (
        "ClusterProvisioningSuccess(cluster_type='EKS', infra_id=11, user_id=1, project_id=2, cluster_id=3)"
    )


def test_adhoc_track_takes_any_property_and_checks_scope_fields() -> None:
    cls = cast("Any", adhoc_track(Events.THING_HAPPENED, "project"))
    with analytics_scope(user_id=1, project_id=2):
        event = cls(size=3, label="x")
        wrong = cls(cluster_id=1)
    assert adhoc_track(Events.THING_HAPPENED, "project") is cls  # cached
    assert to_message(event)["properties"] == {"size": 3, "label": "x", "project_id": 2}
    assert to_message(event)["event"] == "Thing Happened"
    assert isinstance(wrong.validation_error, ScopeError)
    with pytest.raises(EventNameError):
        adhoc_track("not a name")


# -- porter parity: the reference's wire messages --------------------------------------------------


def _porter(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("timestamp", "messageId")}


def test_porter_cluster_provisioning_success() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    assert _porter(to_message(event)) == {
        "type": "track",
        "userId": "42",
        "event": "Cluster Provisioning Success",
        "properties": {"cluster_type": "EKS", "infra_id": 11, "proj_id": 7, "cluster_id": 3},
    }


def test_porter_registry_provisioning_success() -> None:
    with analytics_scope(user_id=42, project_id=7, registry_id=5):
        event = RegistryProvisioningSuccess(registry_type="ECR", infra_id=12)
    assert _porter(to_message(event)) == {
        "type": "track",
        "userId": "42",
        "event": "Registry Provisioning Success",
        "properties": {"registry_type": "ECR", "infra_id": 12, "proj_id": 7, "registry_id": 5},
    }


def test_porter_application_launch_success() -> None:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3, app_name="web", app_namespace="default"):
        event = ApplicationLaunchSuccess(flow_id="f-1", chart_name="web-chart")
    assert _porter(to_message(event)) == {
        "type": "track",
        "userId": "42",
        "event": "Application Launch Success",
        "properties": {
            "flow_id": "f-1",
            "proj_id": 7,
            "cluster_id": 3,
            "app_name": "web",
            "app_namespace": "default",
            "chart_name": "web-chart",
        },
    }


def test_porter_triggered_redeploy_via_webhook_is_a_system_event_of_user_zero() -> None:
    with analytics_scope(project_id=7, cluster_id=3, app_name="web", app_namespace="default", chart_name="c"):
        event = TriggeredRedeployViaWebhook(image_uri="repo/web:1.2", user_id=0)
    assert _porter(to_message(event)) == {
        "type": "track",
        "userId": "0",
        "event": "Triggered Re-deploy via Webhook",
        "properties": {
            "image_uri": "repo/web:1.2",
            "proj_id": 7,
            "cluster_id": 3,
            "app_name": "web",
            "app_namespace": "default",
            "chart_name": "c",
        },
    }
