"""Record -> Segment message: the exact wire form, wire keys, encoding, size limits, Porter parity."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from typing import Annotated, Any

import pytest
from dirty_equals import IsStr
from hypothesis import given, settings
from hypothesis import strategies as st

import instrument
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
from instrument._encoding import dumps, encode
from instrument._messages import EncodeOptions, to_wire, unpack, wire_batches

TIMESTAMP = IsStr(regex=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MESSAGE_ID = IsStr(regex=r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


class Events(EventName):
    STACK_BUILD_FAILURE = "Stack Build Failure"


class StackBuildFailure(Track, event=Events.STACK_BUILD_FAILURE, scope="project"):
    stack_name: str
    error_message: str
    b64_build_logs: Annotated[str, Truncatable] = ""


class Measured(Track, event="Measured Thing Happened"):
    count: int
    ratio: float
    label: str


class Renamed(Track, event="Renamed Thing Happened", scope="project"):
    internal_name: str = field(key="name")
    body: str = field(default="", truncatable=True)


class UserTraits(Identify):
    email: str
    github: str


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
        assert to_message(Measured(count=1, ratio=1.0, label="x"))["userId"] == "0"
    with analytics_scope(user_id="u-1"):
        assert to_message(Measured(count=1, ratio=1.0, label="x"))["userId"] == "u-1"


def test_the_timestamp_is_the_construction_time_in_utc() -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with analytics_scope(user_id=1):
        event = Measured(count=1, ratio=1.0, label="x")
    sent = dt.datetime.fromisoformat(to_message(event)["timestamp"].replace("Z", "+00:00"))
    assert before <= sent <= dt.datetime.now(dt.timezone.utc)


def test_each_message_has_a_fresh_message_id() -> None:
    with analytics_scope(user_id=1):
        event = Measured(count=1, ratio=1.0, label="x")
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


def test_a_raising_redact_hook_is_an_encoding_error_naming_its_exception_type_not_its_text() -> None:
    def redact(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("alice@example.com")  # an exception text often quotes a value

    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        event = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    with pytest.raises(EncodingError) as info:
        to_message(event, EncodeOptions(redact=redact))
    assert str(info.value) == "ClusterProvisioningSuccess: the redact hook raised KeyError"
    assert isinstance(info.value.__cause__, KeyError)


def test_property_values_are_encoded() -> None:
    class Encoded(Track, event="Encoded Thing Happened"):
        at: dt.datetime
        tags: set[str]

    with analytics_scope(user_id=1):
        event = Encoded(at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901), tags={"b", "a"})
    assert to_message(event)["properties"] == {"at": "2026-01-02T03:04:05.678Z", "tags": ["a", "b"]}


def test_an_unencodable_value_is_an_encoding_error_with_the_path() -> None:
    with analytics_scope(user_id=1):
        event = Measured(count=1, ratio=float("nan"), label="x")
    assert event.validation_error is None
    with pytest.raises(EncodingError) as info:
        to_message(event)
    assert info.value.field == "ratio"
    assert info.value.track == "Measured"


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


class _Shouting(str):
    """A str subclass whose text differs from its value: the encoder sends ``str(value)``."""

    def __str__(self) -> str:
        return self.upper()


class _Count(int):
    def __str__(self) -> str:
        return "many"


class AnyValue(Track, event="Any Value Happened", scope="project"):
    value: Any


class FreeForm(Track, event="Free Form Happened", scope="project"):
    """A free-form record (as @tracks makes for a bare event name): every value goes through the encoder."""

    _free_form = True


_wire_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.text(alphabet="abcxyz", min_size=1).map(_Shouting),
    st.integers(min_value=0, max_value=10**6).map(_Count),
    st.sampled_from(list(Events)),
    st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31)),
)
# Plain values on their own as often as containers: the builder's pass-through by type is for them.
_wire_values = _wire_leaves | st.recursive(
    _wire_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=_wire_values, project=st.one_of(st.integers(min_value=0, max_value=2**40), st.text(min_size=1)))
def test_the_generated_builder_sends_every_value_byte_for_byte_as_the_general_encoder(
    value: object, project: object
) -> None:
    # The builder passes plain str/int/bool through by type and calls the encoder for the rest: the
    # bytes must be those of the message with each value encoded by the general rules.
    with analytics_scope(user_id=7, project_id=project):
        typed = AnyValue(value=value)
        free = FreeForm(value=value)
    for record in (typed, free):
        data, message_id = to_wire(record)
        sent = json.loads(data)
        assert sent["messageId"] == message_id
        expected = {**sent, "properties": {"value": encode(value, "value"), "project_id": encode(project, "p")}}
        assert data == dumps(expected)


def test_a_value_whose_class_attribute_raises_is_an_encoding_error_naming_its_field() -> None:
    class Lying:
        @property
        def __class__(self) -> type:  # type: ignore[override]
            raise RuntimeError("secret")

    with analytics_scope(user_id=1, project_id=2):
        record = AnyValue(value=Lying())
    with pytest.raises(EncodingError) as info:
        to_wire(record)
    assert info.value.field == "value"
    assert "secret" not in str(info.value)


def test_an_encoding_error_s_traceback_shows_the_generated_builder_of_its_class() -> None:
    with analytics_scope(user_id=1, project_id=2):
        record = AnyValue(value=float("inf"))
    with pytest.raises(EncodingError) as info:
        to_wire(record)
    frames = [entry.frame.code.raw for entry in info.traceback]
    generated = [code for code in frames if code.co_filename.startswith("<instrument generated message builder")]
    assert [code.co_filename for code in generated] == [
        f"<instrument generated message builder of {__name__}.AnyValue>"
    ]
    assert "def build(rec, options):" in inspect.getsource(generated[0])


# -- the direct path of a track to its bytes (the scope's part made once per scope) --------------


class OnlyScope(Track, event="Only Scope Happened", scope="project"):
    """No property of its own: the whole properties object comes from the scope."""


class NoScopeFields(Track, event="No Scope Fields Happened"):
    label: str
    flag: bool = False


_DIRECT_CLASSES = (StackBuildFailure, Renamed, OnlyScope, NoScopeFields, Measured, ClusterProvisioningSuccess)
# Plain values (the direct path) and a few it leaves to the builder: a str subclass, a big int, a lone
# surrogate (orjson refuses it), None.
_scope_values = st.one_of(
    st.integers(min_value=0, max_value=2**70),
    st.text(min_size=1, max_size=12),
    st.text(alphabet="ab", min_size=1).map(_Shouting),
)
_user_ids = st.one_of(st.none(), st.integers(min_value=0, max_value=2**70), st.text(min_size=1, max_size=8))


def _record_of(cls: type[Track], text: str, number: int, flag: bool, overrides: dict[str, Any]) -> Track:
    values: dict[str, Any] = {
        StackBuildFailure: {"stack_name": text, "error_message": text[:3]},
        Renamed: {"internal_name": text},
        OnlyScope: {},
        NoScopeFields: {"label": text, "flag": flag},
        Measured: {"count": number, "ratio": 0.5, "label": text},
        ClusterProvisioningSuccess: {"cluster_type": text, "infra_id": number},
    }[cls]
    return cls(**values, **overrides)


@settings(max_examples=300, deadline=None)
@given(
    cls=st.sampled_from(_DIRECT_CLASSES),
    user=_user_ids,
    anonymous=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    project=_scope_values,
    cluster=_scope_values,
    text=st.text(max_size=20),
    number=st.integers(min_value=-(2**65), max_value=2**65),
    flag=st.booleans(),
    override=st.booleans(),
)
def test_a_tracks_bytes_are_its_messages_whatever_the_path(
    cls: type[Track],
    user: object,
    anonymous: str | None,
    project: object,
    cluster: object,
    text: str,
    number: int,
    flag: bool,
    override: bool,
) -> None:
    # Whichever path makes the bytes (the direct one, or the builder for what it leaves), they are those
    # of to_message's dict, key order included: the same messageId put in, the same timestamp.
    fields: dict[str, object] = {"project_id": project, "cluster_id": cluster, "anonymous_id": anonymous}
    if user is not None:
        fields["user_id"] = user
    overrides = {"project_id": 99} if override and cls is not NoScopeFields else {}
    with analytics_scope(**fields):  # type: ignore[arg-type]
        record = _record_of(cls, text, number, flag, overrides)
    if record._error is not None:  # e.g. no user id bound: refused the same way on every path
        with pytest.raises(type(record._error)):
            to_wire(record)
        return
    data, message_id = to_wire(record)
    message = to_message(record)
    message["messageId"] = message_id
    assert data == dumps(message)


def test_a_plain_track_in_a_scope_takes_the_direct_path() -> None:
    # The property above holds on either path; this one proves the direct path is the one taken for
    # plain values (the builder would pass the property too, and the speed would be gone unseen).
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        record = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    to_wire(record)
    spec = record.__class__.__dict__["__instrument_spec__"]
    direct = spec.wire(record, EncodeOptions())
    assert direct is not None
    message = to_message(record)
    message["messageId"] = direct[1]
    assert direct[0] == dumps(message)


def test_interleaved_scopes_each_send_their_own_ids_past_the_kept_fragments() -> None:
    # More scopes than one class keeps fragments of (256), interleaved and revisited: a fragment is
    # never sent for a scope it was not made from (it is kept with its scope dict, compared by identity).
    scopes = [analytics_scope(user_id=i, project_id=1000 + i, cluster_id=2000 + i) for i in range(600)]
    records = []
    for _ in range(2):
        for i, scope in enumerate(scopes):
            with scope:
                records.append((i, ClusterProvisioningSuccess(cluster_type=f"t{i}", infra_id=i)))
    for i, record in records:
        _assert_sent_in_scope(to_wire(record)[0], i)


def test_a_scope_that_is_gone_never_lends_its_fragment_to_a_new_one() -> None:
    # Short-lived scopes, each record encoded and dropped: a new scope dict often takes the address of
    # one that is gone. The fragments are kept with their dict, so an id seen before is never a stale hit.
    for i in range(3000):
        with analytics_scope(user_id=i, project_id=1000 + i, cluster_id=2000 + i):
            record = ClusterProvisioningSuccess(cluster_type=f"t{i}", infra_id=i)
        _assert_sent_in_scope(to_wire(record)[0], i)
        del record


def _assert_sent_in_scope(data: bytes, i: int) -> None:
    sent = json.loads(data)
    assert (sent["userId"], sent["properties"]["proj_id"], sent["properties"]["cluster_id"]) == (
        str(i),
        1000 + i,
        2000 + i,
    )
    assert sent["properties"]["cluster_type"] == f"t{i}"


def test_context_redact_and_client_wire_keys_are_sent_on_the_direct_path_too() -> None:
    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        record = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=11)
    renamed = json.loads(to_wire(record, EncodeOptions(wire_keys={"cluster_id": "cid"}))[0])
    assert renamed["properties"]["cid"] == 3
    redacted = json.loads(to_wire(record, EncodeOptions(redact=lambda event, props: {"kept": 1}))[0])
    assert redacted["properties"] == {"kept": 1}


_LOOP_KINDS = ["plain", "nonplain", "invalid", "built", "big"]
# What track() queues for a track whose class has its direct path (``pack``): its values as a tuple.
_PACKED_KINDS = ["packed", "packed other", "packed no properties", "packed big", "packed changed", "packed override"]


def pack(record: Track) -> Any:
    """What track() queues for ``record`` once the worker has compiled its class (done here by to_wire)."""
    to_wire(record)
    packer = type(record)._pack
    assert packer is not None
    return packer(record)


def _packed(kind: str, i: int) -> Any:
    if kind == "packed other":
        return pack(NoScopeFields(label=f"n{i}", flag=i % 2 == 0))
    if kind == "packed no properties":
        return pack(OnlyScope())
    if kind == "packed override":  # overrides a scope field: queued as the record itself
        item = pack(StackBuildFailure(stack_name=f"o{i}", error_message="e", project_id=9))
        assert isinstance(item, StackBuildFailure)
        return item
    record = StackBuildFailure(stack_name="x" * 1_500 if kind == "packed big" else f"p{i}", error_message="e")
    item = pack(record)
    if kind == "packed changed":  # a value the direct path leaves to the builder (set after construction)
        item = (*item[:-2], 2**70, item[-1])
    assert item.__class__ is tuple
    return item


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(_LOOP_KINDS + _PACKED_KINDS), max_size=30),
    limit=st.sampled_from([500_000, 3_000]),
)
def test_the_workers_loop_sends_what_to_wire_sends_and_hands_on_what_cannot_be_sent(
    kinds: list[str], limit: int
) -> None:
    # wire_batches is the worker's loop: each record's bytes are to_wire's (with its own messageId and the
    # same timestamp), in order, batches within the limit; a record to_wire refuses goes to `failed`. A
    # packed track's bytes are those of the record it was packed from, whichever way they are made.
    items: list[Any] = []
    with analytics_scope(user_id=7, project_id=3):
        for i, kind in enumerate(kinds):
            if kind.startswith("packed"):
                items.append(_packed(kind, i))
            elif kind == "plain":
                items.append(StackBuildFailure(stack_name=f"s{i}", error_message="e"))
            elif kind == "nonplain":
                items.append(AnyValue(value=[i, {"k": dt.date(2026, 1, 2)}]))
            elif kind == "invalid":
                items.append(AnyValue(value=float("nan")))  # refused by the encoder
            elif kind == "built":  # strict mode's message, built on the caller's thread
                items.append(to_message(StackBuildFailure(stack_name=f"b{i}", error_message="e")))
            else:
                items.append(StackBuildFailure(stack_name="x" * 1_500, error_message=f"{i}"))
    failed: list[Any] = []
    batches = list(wire_batches(items, limit, lambda item, error: failed.append(item)))
    assert failed == [item for item, kind in zip(items, kinds, strict=True) if kind == "invalid"]
    sent = [json.loads(m) for batch in batches for m in batch.messages]
    ids = [mid for batch in batches for mid in batch.ids]
    kept = [item for item, kind in zip(items, kinds, strict=True) if kind != "invalid"]
    assert [m["messageId"] for m in sent] == ids
    assert len(sent) == len(kept)
    for item, message in zip(kept, sent, strict=True):
        expected = json.loads(to_wire(unpack(item) if item.__class__ is tuple else item)[0])
        if not isinstance(item, dict):  # a record draws a new messageId each time it is encoded
            expected["messageId"] = message["messageId"]
        assert message == expected
    assert all(batch.size <= limit for batch in batches)


def _cached_scopes() -> list[object]:
    from instrument import _messages, _records

    held = [entry[0] for kept, last in _messages._kept_by_class for entry in (*kept.values(), last[0])]
    return held + [remembered[0] for remembered in _records._remembered_scopes]


def test_forget_leaves_no_cached_scope_holding_the_users_ids() -> None:
    # The direct path keeps recent scopes' serialised fragments and each class its last passing scope:
    # both hold the ids. instrument.forget empties them (they are made again from the next scope).
    with analytics_scope(user_id="u-forget", project_id=3, cluster_id=4):
        record = ClusterProvisioningSuccess(cluster_type="EKS", infra_id=1)
    to_wire(record)
    scope = record._ctx
    assert any(held is scope for held in _cached_scopes())  # cached: the check below can fail
    instrument.forget("u-forget")
    assert not any(held is scope for held in _cached_scopes())
    assert json.loads(to_wire(record)[0])["userId"] == "u-forget"  # made again on use
