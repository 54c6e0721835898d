"""Track and Identify records: construction, validation at construction, definition errors, repr."""

from __future__ import annotations

import inspect
import re
from dataclasses import InitVar
from typing import Any, Literal, Optional, cast

import pytest
from dirty_equals import IsStr
from hypothesis import given, settings
from hypothesis import strategies as st

import instrument
from examples.porter.analytics import (
    ClusterProvisioningSuccess,
)
from instrument import (
    EventName,
    EventNameError,
    Identify,
    MemoryTransport,
    PropertyError,
    ScopeError,
    Track,
    TrackDefinitionError,
    analytics_scope,
    derived,
    describe,
    field,
    to_message,
)
from instrument._records import adhoc_track

TIMESTAMP = IsStr(regex=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MESSAGE_ID = IsStr(regex=r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def strict() -> None:
    """Strict mode through the public API (the autouse fixture restores the previous client)."""
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)


class Events(EventName):
    THING_HAPPENED = "Thing Happened"


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


def test_list_items_are_checked_at_construction() -> None:
    with analytics_scope(user_id=1):
        event = Typed(count=1, ratio=1.0, label="x", tags=["ok", 2])  # type: ignore[list-item]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "tags"
    assert str(error) == "Typed.tags: expected list[str], got list (2 items)"
    with pytest.raises(PropertyError) as info:
        to_message(event)
    assert info.value is error


def test_strict_mode_checks_list_items_at_construction() -> None:
    strict()
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


def test_a_scope_id_of_the_wrong_type_is_a_scope_error_at_construction() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3.5):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert (error.field, error.scope) == ("cluster_id", "cluster")
    assert "got float" in str(error)
    assert "3.5" not in str(error)
    with pytest.raises(ScopeError):
        to_message(event)


def test_a_scope_id_of_the_wrong_type_raises_at_construction_in_strict_mode() -> None:
    strict()
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
    strict()
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


@pytest.mark.parametrize("name", ["scope", "properties", "validation_error", "analytics_scope", "_private"])
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
        describe(ClusterBase)
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


def test_a_malformed_scope_or_an_unknown_class_keyword_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match=r"unknown scope \['project'\]"):
        type("Listed", (Track,), {}, event="Listed Thing Happened", scope=["project"])
    with pytest.raises(TrackDefinitionError, match=r"unexpected class keyword\(s\) \['scop'\]"):
        type("Typo", (Track,), {}, event="Typo Thing Happened", scop="project")


# -- scope bases: the constructor takes exactly its scope's fields -------------------------------------


class OnCluster(instrument.ClusterTrack, event="On Cluster Happened"):
    size: int


class OnApplication(instrument.ApplicationTrack, event="On Application Happened"):
    pass


def test_a_track_on_a_scope_base_gets_that_scope_and_its_fields_as_keywords() -> None:
    strict()
    with analytics_scope(user_id=1, project_id=2):
        event = OnCluster(size=3, cluster_id=4)
    assert describe(OnCluster).scope == "cluster"
    assert event.scope == {"user_id": 1, "project_id": 2, "cluster_id": 4}
    assert event.cluster_id == 4
    assert list(inspect.signature(OnCluster).parameters) == ["size", "user_id", "project_id", "cluster_id"]


def test_a_field_of_another_scope_is_a_scope_error_at_run_time_too() -> None:
    strict()
    with analytics_scope(user_id=1, project_id=2, cluster_id=3), pytest.raises(ScopeError, match="registry_id"):
        OnCluster(size=3, registry_id=5)  # type: ignore[call-arg]


def test_a_user_defined_scope_base_defines_its_scope_with_typed_fields() -> None:
    class StackTrack(instrument.ProjectTrack, defines_scope="records_stack"):
        stack_name: str | None = None
        stack_id: instrument.ScopeId | None = field(default=None, key="stk")

    class StackBuilt(StackTrack, event="Stack Built"):
        ok: bool

    strict()
    scope = instrument._scopes.get_scope("records_stack")
    assert scope.fields == ("user_id", "project_id", "stack_name", "stack_id")
    assert scope.id_fields == {"user_id", "project_id", "stack_id"}
    with StackTrack.analytics_scope(user_id=1, project_id=2, stack_name="s", stack_id=9):
        message = to_message(StackBuilt(ok=True))
    assert message["properties"] == {"ok": True, "project_id": 2, "stack_name": "s", "stk": 9}
    with analytics_scope(user_id=1, project_id=2), pytest.raises(ScopeError, match="'stack_name' must be str"):
        StackBuilt(ok=True, stack_name=5, stack_id=1)  # type: ignore[arg-type]


def test_a_scope_base_analytics_scope_refuses_a_field_of_another_scope() -> None:
    with pytest.raises(ScopeError, match="registry_id"):
        instrument.ClusterTrack.analytics_scope(registry_id=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "body",
    [
        {"__annotations__": {"x": "int"}, "x": None},  # not Optional
        {"__annotations__": {"x": "int | None"}},  # no default None
    ],
)
def test_a_scope_base_field_must_be_optional_with_default_none(body: dict[str, Any]) -> None:
    with pytest.raises(TrackDefinitionError, match=re.escape("is declared `x: T | None = None`")):
        type("BadScope", (instrument.ProjectTrack,), body, defines_scope=f"bad_{len(body)}")


def test_a_string_scope_must_nest_in_the_scope_of_its_base() -> None:
    with pytest.raises(TrackDefinitionError, match="does not nest"):
        type("Wrong", (instrument.ClusterTrack,), {}, event="Wrong Thing Happened", scope="registry")


def test_application_scope_strings_are_checked_at_run_time() -> None:
    strict()
    with analytics_scope(user_id=1, project_id=2, cluster_id=3, app_name="a", app_namespace="n", chart_name="c"):
        assert OnApplication().validation_error is None
        for bad in (5, ["x"], {"k": "v"}):
            with pytest.raises(ScopeError, match="'app_name' must be str"):
                OnApplication(app_name=bad)  # type: ignore[arg-type]


def test_a_wire_key_given_as_a_keyword_names_the_field_it_belongs_to() -> None:
    class Porterish(EventName, wire_keys={"cluster_id": "cc_id"}):
        THING_RENAMED = "Thing Renamed Happened"

    class Renamed2(instrument.ClusterTrack, event=Porterish.THING_RENAMED):
        pass

    strict()
    with analytics_scope(user_id=1, project_id=2, cluster_id=3), pytest.raises(ScopeError) as raised:
        Renamed2(cc_id=4)  # type: ignore[call-arg]
    assert "'cc_id' is the wire key of scope field 'cluster_id'" in str(raised.value)
    assert raised.value.field == "cluster_id"
    with analytics_scope(user_id=1), pytest.raises(ScopeError, match="scope field 'user_id'"):
        Typed(count=1, ratio=1.0, label="x", userId=2)  # type: ignore[call-arg]


# -- derived and init-only properties ----------------------------------------------------------------


def _full_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}"


class Signed(Track, event="Signed Thing Happened"):
    first_name: InitVar[str]
    last_name: InitVar[str]
    connected: InitVar[bool] = False
    name: str = derived(_full_name)
    github: str = derived(lambda connected: "true" if connected else "false")


def test_derived_properties_are_computed_from_inputs_and_inputs_are_not_sent() -> None:
    strict()
    with analytics_scope(user_id=1):
        message = to_message(Signed(first_name="Ada", last_name="Lovelace", connected=True))
    assert message["properties"] == {"name": "Ada Lovelace", "github": "true"}
    assert [p.name for p in describe(Signed).properties] == ["name", "github"]
    parameters = inspect.signature(Signed).parameters
    assert list(parameters) == ["first_name", "last_name", "connected", "user_id"]
    assert (parameters["first_name"].annotation, parameters["connected"].default) == (str, False)


def test_a_missing_or_mistyped_input_is_a_property_error_naming_the_input() -> None:
    strict()
    with analytics_scope(user_id=1):
        with pytest.raises(PropertyError, match="required input 'last_name'"):
            Signed(first_name="Ada")  # type: ignore[call-arg]
        with pytest.raises(PropertyError, match="last_name: expected str, got int"):
            Signed(first_name="Ada", last_name=3)  # type: ignore[arg-type]
        with pytest.raises(PropertyError, match=re.escape("'name' is derived from ['first_name', 'last_name']")):
            Signed(first_name="Ada", last_name="L", name="x")  # type: ignore[call-arg]


def test_a_derived_result_of_the_wrong_type_or_a_raising_function_is_reported() -> None:
    class Bad(Track, event="Bad Thing Happened"):
        n: InitVar[int]
        label: str = derived(lambda n: n * 2 if n else "zero")
        other: str = derived(lambda n: str(1 // n))

    strict()
    with analytics_scope(user_id=1):
        with pytest.raises(PropertyError, match="label: expected str, got int"):
            Bad(n=1)
        with pytest.raises(PropertyError, match="derived\\(\\) function raised ZeroDivisionError"):
            Bad(n=0)


def test_a_derived_function_naming_no_field_is_refused_at_class_definition() -> None:
    with pytest.raises(TrackDefinitionError, match="'lst' names no input or property"):

        class Bad(Track, event="Bad Thing Happened"):
            first: InitVar[str]
            name: str = derived(lambda first, lst: first + lst)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(), st.integers(), st.booleans(), st.floats(), st.lists(st.text()), st.none()))
def test_an_application_field_is_accepted_exactly_when_it_is_a_str(value: object) -> None:
    instrument.configure(transport=MemoryTransport(), strict=False, sync=True)
    with analytics_scope(user_id=1, project_id=2, cluster_id=3, app_name="a", chart_name="c", app_namespace=None):
        event = OnApplication(app_namespace=value)  # type: ignore[arg-type]
    error = event.validation_error
    if isinstance(value, str):
        assert error is None
    else:  # None leaves the field unbound: missing
        assert isinstance(error, ScopeError)
        assert error.field == "app_namespace"


def _shout(first: int) -> str:
    return str(first)


def _count(first: str) -> int:
    return len(first)


def test_a_derived_function_whose_annotations_disagree_with_the_fields_is_refused_at_class_definition() -> None:
    with pytest.raises(TrackDefinitionError, match="derived\\(\\): parameter 'first' takes int, but gets str"):

        class WrongParameter(Track, event="Bad Thing Happened"):
            first: InitVar[str]
            loud: str = derived(_shout)

    with pytest.raises(TrackDefinitionError, match="derived\\(\\): property is str, but gets int"):

        class WrongResult(Track, event="Bad Thing Happened"):
            first: InitVar[str]
            loud: str = derived(_count)


def test_a_scope_that_passed_before_does_not_let_another_scope_pass() -> None:
    # Each class remembers the last scope dict that passed its checks (the same dict passes again without
    # them): a different dict, missing a field, with an empty id or a bool, is still checked and refused.
    good = analytics_scope(user_id=1, project_id=2)
    bad_scopes = [
        analytics_scope(user_id=1),
        analytics_scope(user_id=1, project_id=""),
        analytics_scope(user_id=1, project_id=True),  # type: ignore[arg-type]
        analytics_scope(project_id=2),
    ]
    for bad in bad_scopes:
        with good:
            assert Renamed(internal_name="a").validation_error is None
            assert Renamed(internal_name="a").validation_error is None
        with bad:
            assert isinstance(Renamed(internal_name="a").validation_error, ScopeError)
        with good:
            assert Renamed(internal_name="a").validation_error is None
