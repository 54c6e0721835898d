"""Class-definition errors: property names, mutable defaults, wire keys, forward references."""

from __future__ import annotations

from typing import Any

import pytest

import instrument
from instrument import MemoryTransport, Track, TrackDefinitionError, analytics_scope, describe, field, to_message


@pytest.mark.parametrize("default", [[], {}, set(), bytearray(b"x")])
def test_a_mutable_default_is_a_definition_error(default: object) -> None:
    with pytest.raises(TrackDefinitionError, match=r"mutable default .*default_factory"):
        type("Shared", (Track,), {"__annotations__": {"tags": Any}, "tags": default}, event="Shared Thing Happened")


def test_a_mutable_default_in_field_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match=r"Shared\.tags: mutable default list"):

        class Shared(Track, event="Shared Thing Happened"):
            tags: list[str] = field(default=[])


@pytest.mark.parametrize("override", [[], field(default=[])], ids=["plain", "field"])
def test_a_subclass_giving_an_inherited_property_a_mutable_default_is_a_definition_error(override: Any) -> None:
    class Tagged(Track):
        tags: list[str] = field(default_factory=list)

    with pytest.raises(TrackDefinitionError, match=r"Retagged\.tags: mutable default list"):
        type("Retagged", (Tagged,), {"tags": override}, event="Retagged Thing Happened")


def test_hashable_defaults_are_fine() -> None:
    class Fine(Track, event="Fine Thing Happened"):
        pair: tuple[int, int] = (1, 2)
        names: frozenset[str] = frozenset()

    with analytics_scope(user_id=1):
        assert to_message(Fine())["properties"] == {"pair": [1, 2], "names": []}


@pytest.mark.parametrize("name", ["class", "def", "a b", "1st", "x-y"])
def test_a_property_name_that_is_a_keyword_or_no_identifier_is_refused_clearly(name: str) -> None:
    with pytest.raises(TrackDefinitionError, match=r"not a Python identifier.*field\(key="):
        type("Odd", (Track,), {"__annotations__": {name: int}}, event="Odd Thing Happened")


def test_a_keyword_is_sent_with_field_key() -> None:
    class Classy(Track, event="Classy Thing Happened"):
        class_: str = field(key="class")

    with analytics_scope(user_id=1):
        assert to_message(Classy(class_="x"))["properties"] == {"class": "x"}


class Forward(Track, event="Forward Thing Happened"):
    when: Later  # defined below


class Later:
    pass


def test_a_forward_reference_defined_later_in_the_module_resolves_on_first_use() -> None:
    with analytics_scope(user_id=1):
        assert Forward(when=Later()).validation_error is None


def _dangling() -> type[Track]:
    class Dangling(Track, event="Dangling Thing Happened"):
        count: int
        when: NeverDefined  # type: ignore[name-defined]  # noqa: F821

    return Dangling


def test_an_unresolvable_forward_reference_is_a_definition_error_naming_class_and_field() -> None:
    cls: Any = _dangling()
    with analytics_scope(user_id=1):
        event = cls(count=1, when=2)  # production: kept on the record, never a NameError
    error = event.validation_error
    assert isinstance(error, TrackDefinitionError)
    assert "Dangling.when" in str(error)
    assert "NeverDefined" in str(error)
    with pytest.raises(TrackDefinitionError, match=r"Dangling\.when"):
        to_message(event)
    with pytest.raises(TrackDefinitionError, match=r"Dangling\.when"):
        describe(cls)


def test_a_record_of_a_class_that_never_resolved_still_has_a_repr_and_its_scope() -> None:
    # Business code may log the record: in production nothing may raise from it.
    cls: Any = _dangling()
    with analytics_scope(user_id=1):
        event = cls(count=1, when=2)
    assert repr(event) == "_dangling.<locals>.Dangling(<unresolved annotations>)"
    assert event.scope == {"user_id": 1}
    result = instrument.track(event)
    assert isinstance(result.error, TrackDefinitionError)
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    with analytics_scope(user_id=1), pytest.raises(TrackDefinitionError, match=r"Dangling\.when"):
        cls(count=1, when=2)
