"""The error tree: one root, context attributes, and messages that name the track, field and scope."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import instrument
from instrument import (
    AnalyticsError,
    ClosedError,
    ConfigurationError,
    DeliveryError,
    EncodingError,
    EventName,
    EventNameError,
    NotConfiguredError,
    OversizeError,
    PropagationError,
    PropertyError,
    PropsError,
    QueueFullError,
    ScopeError,
    Track,
    TrackDefinitionError,
    _errors,
    analytics_scope,
    define_scope,
    to_message,
    tracks,
)


class CartCheckedOut(Track, event="Cart Checked Out", scope="project"):
    total: int


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(_errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == _errors.__name__
    ]


def test_every_error_class_is_exported_and_subclasses_analytics_error() -> None:
    classes = _error_classes()
    assert len(classes) == 16
    for cls in classes:
        assert issubclass(cls, AnalyticsError), cls
        assert getattr(instrument, cls.__name__) is cls
        assert cls.__doc__


def test_errors_that_are_also_builtin_kinds_can_be_caught_as_them() -> None:
    assert issubclass(EventNameError, ValueError)
    assert issubclass(TrackDefinitionError, TypeError)
    assert issubclass(PropertyError, TypeError)
    assert issubclass(EncodingError, PropertyError)


@pytest.mark.parametrize(
    ("error", "attributes"),
    [
        (AnalyticsError("m", track="T"), {"message": "m", "track": "T"}),
        (ConfigurationError("m"), {"message": "m", "track": None}),
        (EventNameError("m", name="bad", catalog="Events"), {"name": "bad", "catalog": "Events", "track": None}),
        (TrackDefinitionError("m", track="T"), {"track": "T"}),
        (ScopeError("m", field="f", scope="s", track="T"), {"field": "f", "scope": "s", "track": "T"}),
        (PropertyError("m", track="T", field="f", value_type="int"), {"field": "f", "value_type": "int"}),
        (EncodingError("m", track="T", field="a[1]", value_type="float"), {"field": "a[1]", "value_type": "float"}),
        (
            OversizeError("m", track="T", size=40000, limit=32768, largest=[("logs", 39000)]),
            {"size": 40000, "limit": 32768, "largest": (("logs", 39000),), "track": "T"},
        ),
        (PropsError("m", track="T"), {"track": "T"}),
        (NotConfiguredError("m"), {"message": "m"}),
        (QueueFullError("m"), {"message": "m"}),
        (ClosedError("m"), {"message": "m"}),
        (PropagationError("m", source="carrier", field="f"), {"source": "carrier", "field": "f", "track": None}),
        (DeliveryError("m", reason="HTTP 400", count=3), {"reason": "HTTP 400", "count": 3}),
        (instrument.SpoolError("m", path="/s/a.seg", count=2), {"path": "/s/a.seg", "count": 2}),
        (instrument.SpoolFullError("m", path="/s", count=50), {"path": "/s", "count": 50}),
    ],
)
def test_each_error_carries_its_context_attributes(error: AnalyticsError, attributes: dict[str, object]) -> None:
    assert str(error) == "m"
    for name, value in attributes.items():
        assert getattr(error, name) == value, name


def test_a_property_error_message_names_the_track_and_field() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = CartCheckedOut(total="ten")  # type: ignore[arg-type]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert "CartCheckedOut.total" in str(error)
    assert "expected int" in str(error)
    assert "str" in str(error)


def test_a_scope_error_message_names_the_track_scope_and_field() -> None:
    with analytics_scope(user_id=1):
        event = CartCheckedOut(total=10)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    for part in ("CartCheckedOut", "'project'", "'project_id'"):
        assert part in str(error)


def test_an_encoding_error_message_names_the_track_and_path() -> None:
    class Tagged(Track, event="Tagged Thing Happened"):
        tags: list[float]

    with analytics_scope(user_id=1):
        event = Tagged(tags=[1.0, 2.0, float("nan")])
    with pytest.raises(EncodingError) as info:
        to_message(event)
    assert "Tagged.tags[2]" in str(info.value)
    assert info.value.field == "tags[2]"


def test_an_event_name_error_message_names_the_catalog_member_and_value() -> None:
    with pytest.raises(EventNameError) as info:

        class Events(EventName):
            GOOD = "Cart Checked Out"
            BAD = "cart abandoned"

    assert "Events.BAD" in str(info.value)
    assert "'cart abandoned'" in str(info.value)
    assert info.value.catalog == "Events.BAD"


def test_a_definition_error_message_names_the_class_and_property() -> None:
    with pytest.raises(TrackDefinitionError) as info:

        class Clashing(Track, event="Clashing Thing Happened"):
            project_id: int

    assert "Clashing.project_id" in str(info.value)
    assert info.value.track is not None
    assert info.value.track.endswith(".Clashing")  # the qualified name of the class


def test_configuration_errors_name_the_offending_argument() -> None:
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        define_scope("orphan_scope_for_errors", parent="nowhere", fields=["orphan_id"])
    with pytest.raises(ConfigurationError, match="scope='cluster'"):
        tracks(CartCheckedOut, scope="cluster")


def test_a_props_error_names_the_track_and_chains_the_cause(memory: instrument.MemoryTransport) -> None:
    instrument.configure(transport=memory, sync=True, strict=True)

    @tracks(CartCheckedOut, props=lambda call: dict[str, Any]()["missing"])
    def checkout(total: int) -> None:
        pass

    with analytics_scope(user_id=1, project_id=2), pytest.raises(PropsError) as info:
        checkout(3)
    assert info.value.track == "CartCheckedOut"
    assert "CartCheckedOut" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


def test_a_failing_redact_hook_is_reported_not_raised_by_track_in_sync_mode() -> None:
    def redact(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("hook bug")

    reported: list[AnalyticsError] = []
    transport = instrument.MemoryTransport()
    instrument.configure(transport=transport, sync=True, redact=redact, on_error=reported.append, strict=False)
    with analytics_scope(user_id=1, project_id=2):
        result = instrument.track(CartCheckedOut(total=3))
    assert not result.ok
    assert isinstance(result.error, AnalyticsError)
    assert len(reported) == 1
    assert transport.messages == []
