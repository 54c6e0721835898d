"""Declaring a property with ``field()`` (``_fields.py``): its arguments are checked when it is called."""

from __future__ import annotations

import pytest

from instrument import TrackDefinitionError, field


def test_field_rejects_bad_arguments() -> None:
    with pytest.raises(TrackDefinitionError, match="default_factory must be callable"):
        field(default_factory=[])
    with pytest.raises(TrackDefinitionError, match="key must be a non-empty str"):
        field(key="")
    with pytest.raises(TrackDefinitionError, match="doc must be a str"):
        field(doc=3)  # type: ignore[arg-type]


def test_field_with_both_default_and_factory_is_a_definition_error() -> None:
    with pytest.raises(TrackDefinitionError, match="not both"):
        field(default=1, default_factory=list)
