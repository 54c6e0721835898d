"""describe(): the public description of Track and Identify classes (what the tracking plan is built from)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, Optional

import pytest

import instrument
from examples.porter.analytics import ApplicationLaunchSuccess, ClusterProvisioningSuccess, UserTraits
from instrument import (
    MISSING,
    ConfigurationError,
    EventName,
    EventSchema,
    Identify,
    Personal,
    PropertySchema,
    ScopeFieldSchema,
    ScopeId,
    Track,
    TrackDefinitionError,
    Truncatable,
    define_scope,
    describe,
    field,
    tracks_of,
)


class Catalog(EventName):
    ORDER_PLACED = "Order Placed"
    REPORT_EXPORTED = "Report Exported"


class RenamedCatalog(EventName, wire_keys={"project_id": "proj_id"}):
    WIDGET_MOVED = "Widget Moved"


class OrderPlaced(Track, event=Catalog.ORDER_PLACED, scope="project"):
    """An order was placed.

    Sent once per order.
    """

    order_id: int
    """The order's id."""
    note: str | None = None
    total: float = field(default=0.0, key="order_total", doc="Sum of the lines.")
    tags: list[str] = field(default_factory=list)
    log: Annotated[str, Truncatable] = ""
    "A literal after the assignment, without triple quotes."


class WidgetMoved(Track, event=RenamedCatalog.WIDGET_MOVED, scope="cluster"):
    widget: str


class Undocumented(Track, event="Undocumented Thing Happened"):
    count: int
    anything: Any = None
    maybe: Optional[int] = None  # noqa: UP045 - the Optional form is what is tested


class Base(Track):
    base_field: str
    """From the base."""


class Derived(Base, event="Derived Thing Happened"):
    own: int


def test_describe_gives_the_event_scope_and_class_doc() -> None:
    schema = describe(OrderPlaced)
    assert isinstance(schema, EventSchema)
    assert schema.cls is OrderPlaced
    assert schema.kind == "track"
    assert schema.event == "Order Placed"
    assert schema.scope == "project"
    assert schema.doc == "An order was placed.\n\nSent once per order."
    assert schema.free_form is False


def test_describe_lists_properties_in_declaration_order_with_keys_defaults_and_docs() -> None:
    props = describe(OrderPlaced).properties
    assert [p.name for p in props] == ["order_id", "note", "total", "tags", "log"]
    order_id, note, total, tags, log = props
    assert order_id == PropertySchema(
        name="order_id",
        key="order_id",
        annotation=int,
        required=True,
        default=MISSING,
        default_factory=None,
        nullable=False,
        truncatable=False,
        doc="The order's id.",
    )
    assert (note.nullable, note.required, note.default, note.doc) == (True, False, None, None)
    assert (total.key, total.default, total.doc) == ("order_total", 0.0, "Sum of the lines.")
    assert (tags.default, tags.default_factory, tags.required) == (MISSING, list, False)
    assert (log.truncatable, log.annotation) == (True, Annotated[str, Truncatable])
    assert log.doc == "A literal after the assignment, without triple quotes."


def test_nullable_follows_the_annotation() -> None:
    props = {p.name: p for p in describe(Undocumented).properties}
    assert not props["count"].nullable
    assert props["anything"].nullable
    assert props["maybe"].nullable
    assert all(p.doc is None for p in props.values())
    assert describe(Undocumented).doc is None


def test_base_class_properties_come_first_with_their_docs() -> None:
    props = describe(Derived).properties
    assert [(p.name, p.doc) for p in props] == [("base_field", "From the base."), ("own", None)]


def test_scope_fields_are_listed_root_first_with_user_id_sent_as_user_id_key() -> None:
    assert describe(OrderPlaced).scope_fields == (
        ScopeFieldSchema(name="user_id", key="userId", is_id=True, is_user_id=True, annotation=ScopeId),
        ScopeFieldSchema(name="project_id", key="project_id", is_id=True, is_user_id=False, annotation=ScopeId),
    )


def test_scope_fields_carry_their_declared_type() -> None:
    types = {f.name: f.annotation for f in describe(ApplicationLaunchSuccess).scope_fields}
    assert types == {
        "user_id": ScopeId,
        "project_id": ScopeId,
        "cluster_id": ScopeId,
        "app_name": str,
        "app_namespace": str,
        "chart_name": str,
    }


def test_a_derived_property_is_described_as_the_property_sent_and_its_inputs_are_not() -> None:
    [email, github] = describe(UserTraits).properties
    assert (email.name, github.name, github.key, github.required) == ("email", "github", "github", True)
    assert github.annotation == Literal["true", "false"]


def test_scope_field_keys_are_the_catalogs_wire_keys() -> None:
    fields = {f.name: f.key for f in describe(WidgetMoved).scope_fields}
    assert fields == {"user_id": "userId", "project_id": "proj_id", "cluster_id": "cluster_id"}
    porter = {f.name: f.key for f in describe(ClusterProvisioningSuccess).scope_fields}
    assert porter["project_id"] == "proj_id"


def test_non_id_scope_fields_are_marked() -> None:
    name = "describe_scope_with_names"
    define_scope(
        name, parent="project", fields={"describe_slot_id": "slot", "describe_label": "label"}, ids=["describe_slot_id"]
    )

    class InSlot(Track, event="Slot Thing Happened", scope=name):
        count: int

    fields = {f.name: (f.key, f.is_id) for f in describe(InSlot).scope_fields}
    assert fields["describe_slot_id"] == ("slot", True)
    assert fields["describe_label"] == ("label", False)


def test_describe_an_identify() -> None:
    schema = describe(UserTraits)
    assert schema.kind == "identify"
    assert schema.event is None
    assert schema.scope == "user"
    assert [f.name for f in schema.scope_fields] == ["user_id"]
    assert {p.name for p in schema.properties} >= {"email"}


def test_source_points_at_the_class_definition() -> None:
    source = describe(OrderPlaced).source
    assert source is not None
    file, line = source
    assert file == __file__
    with open(file, encoding="utf-8") as handle:
        assert handle.read().splitlines()[line - 1].startswith("class OrderPlaced(")


def test_a_class_made_without_source_has_no_docs_and_no_source() -> None:
    namespace: dict[str, Any] = {"Track": Track}
    exec(
        "class NoSource(Track, event='No Source Happened'):\n    count: int\n    'the count'\n",
        namespace,
    )
    schema = describe(namespace["NoSource"])
    assert schema.properties[0].doc is None
    assert schema.source is None


def test_schemas_are_frozen() -> None:
    schema = describe(OrderPlaced)
    with pytest.raises(dataclasses.FrozenInstanceError):
        schema.event = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        schema.properties[0].key = "x"  # type: ignore[misc]


def test_an_adhoc_track_is_free_form() -> None:
    from instrument import tracks

    @tracks(Catalog.REPORT_EXPORTED)
    def export() -> None: ...

    adhoc = next(c for c in Track.__subclasses__() if c.__dict__.get("_event") == "Report Exported")
    schema = describe(adhoc)
    assert schema.free_form
    assert schema.properties == ()


@pytest.mark.parametrize(
    "bad", [Track, Identify, Base, int, "Order Placed", OrderPlaced(order_id=1, user_id=1, project_id=2)]
)
def test_describe_refuses_what_is_not_a_concrete_track_or_identify(bad: Any) -> None:
    with pytest.raises(TrackDefinitionError):
        describe(bad)


def test_describe_refuses_a_class_whose_annotations_do_not_resolve() -> None:
    class Dangling(Track, event="Dangling Thing Happened"):
        value: NowhereDefined  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TrackDefinitionError, match="Dangling"):
        describe(Dangling)


def test_tracks_of_a_catalog_lists_its_declared_tracks_in_member_order() -> None:
    from examples.porter import analytics

    # Other tests may derive from Porter's tracks (same catalog, same event): only the example's here.
    listed = [t for t in tracks_of(analytics.Events) if t.__module__ == analytics.__name__]
    assert [describe(t).event for t in listed] == [
        "New Project Event",
        "Project Deleted",
        "Cluster Provisioning Started",
        "Cluster Provisioning Error",
        "Cluster Provisioning Success",
        "Registry Provisioning Success",
        "Application Launch Success",
        "Triggered Re-deploy via Webhook",
        "Stack Build Failure",
    ]


def test_tracks_of_a_module_lists_its_tracks_and_identifies_in_definition_order() -> None:
    from examples.porter import analytics

    listed = tracks_of(analytics)
    assert listed[0] is analytics.NewProject
    assert listed[-2:] == (analytics.ProjectMembership, analytics.UserTraits)
    assert len(listed) == 11  # not the abstract _Provisioning base


def test_tracks_of_anything_else_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="catalog or a module"):
        tracks_of("examples.porter.analytics")  # type: ignore[arg-type]


def test_describe_gives_each_calls_kind_name_category_and_group_field() -> None:
    class Membership(instrument.ProjectGroup):
        role: str

    class Pricing(instrument.Page, name="Pricing", category="Docs"):
        plan: str

    group = describe(Membership)
    assert (group.kind, group.event, group.group_field, group.scope) == ("group", None, "project_id", "project")
    assert [(f.name, f.key) for f in group.scope_fields] == [("user_id", "userId"), ("project_id", "groupId")]
    assert [p.name for p in group.properties] == ["role"]
    page = describe(Pricing)
    assert (page.kind, page.event, page.category) == ("page", "Pricing", "Docs")

    class Signup(instrument.Alias):
        pass

    assert (describe(Signup).kind, describe(Signup).properties) == ("alias", ())
    for base in (instrument.ProjectGroup, instrument.Alias, instrument.Page):
        with pytest.raises(TrackDefinitionError, match="takes a Track, Identify or other call's subclass"):
            describe(base)


class UserRegistered(Track, event="User Registered"):
    email: Annotated[str, Personal]
    plan: str


def test_a_property_annotated_personal_is_described_as_personal() -> None:
    personal = {p.name: p.personal for p in describe(UserRegistered).properties}
    assert personal == {"email": True, "plan": False}
