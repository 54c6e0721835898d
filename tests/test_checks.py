"""Runtime checks compiled from annotations (``_checks.py``): the supported forms, and malformed ones refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NewType

import pytest

from instrument import PropertyError, Track, TrackDefinitionError, analytics_scope


def test_an_unsupported_annotation_is_refused_at_definition() -> None:
    with pytest.raises(TrackDefinitionError, match=r"Weird\.x"):

        class Weird(Track, event="Weird Thing Happened"):
            x: Callable[[], int]


class _HostileAnnotation:
    """An annotation object that raises on any attribute look-up it does not define."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


@pytest.mark.parametrize(
    ("annotation", "match"),
    [
        (dict[str], r"dict takes 2 type argument\(s\), got 1"),  # type: ignore[misc]
        (Mapping[str], r"Mapping takes 2 type argument\(s\), got 1"),  # type: ignore[misc]
        (list[int, str], r"list takes 1 type argument\(s\), got 2"),  # type: ignore[misc]
        (_HostileAnnotation(), r"cannot check values against .* \(RuntimeError\)"),
    ],
    ids=["dict-one-arg", "mapping-one-arg", "list-two-args", "hostile-object"],
)
def test_a_malformed_annotation_is_a_definition_error_never_another_exception(annotation: Any, match: str) -> None:
    with pytest.raises(TrackDefinitionError, match=match):
        type("Malformed", (Track,), {"__annotations__": {"value": annotation}}, event="Malformed Thing Happened")


UserId = NewType("UserId", int)


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (tuple[int, ...], (1, 2, 3), (1, "2")),
        (tuple[int, str], (1, "a"), (1, "a", 2)),
        (set[str], {"a"}, {1}),
        (frozenset[int], frozenset({1}), {1}),
        (dict[str, int], {"a": 1}, {1: 1}),
        (Mapping[str, list[int]], {"a": [1]}, {"a": ["1"]}),
        (UserId, 5, "5"),
        (Annotated[int, "meta"], 5, 5.0),
        (Literal[1, "1"], "1", True),
        (int | list[str] | None, ["a"], [1]),
    ],
    ids=str,
)
def test_each_supported_form_accepts_its_values_and_refuses_others(annotation: Any, good: Any, bad: Any) -> None:
    cls: Any = type("Formed", (Track,), {"__annotations__": {"value": annotation}}, event="Formed Thing Happened")
    with analytics_scope(user_id=1):
        assert cls(value=good).validation_error is None
        error = cls(value=bad).validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "value"
