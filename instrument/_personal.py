"""Personal properties: ``Annotated[str, Personal]`` marks a property destinations hash or omit."""

from __future__ import annotations

import typing
from typing import Any


class Personal:
    """Marks a property as personal data: ``email: Annotated[str, Personal]``.

    Each destination says what it does with personal properties (``personal="hash"``, ``"omit"`` or
    ``"keep"``); ``describe()`` and the plan export flag them.
    """


def is_personal(annotation: Any) -> bool:
    """True when ``annotation`` is ``Annotated[..., Personal]`` (the class or an instance)."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return False
    return any(meta is Personal or isinstance(meta, Personal) for meta in typing.get_args(annotation)[1:])
