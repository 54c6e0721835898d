"""Personal properties: the marker is found in Annotated metadata (the class or an instance)."""

from __future__ import annotations

from typing import Annotated

from instrument import Personal
from instrument._personal import is_personal


def test_annotated_with_personal_is_personal_and_nothing_else_is() -> None:
    assert is_personal(Annotated[str, Personal])
    assert is_personal(Annotated[str, "doc", Personal()])
    assert not is_personal(str)
    assert not is_personal(Annotated[str, "personal"])
