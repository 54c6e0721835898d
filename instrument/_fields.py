"""Declaring a property: ``field()``, the ``Truncatable`` marker, ``MISSING``, and the ``ScopeId`` alias."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from instrument._errors import TrackDefinitionError
from instrument._scopes import ScopeId

__all__ = ["MISSING", "FieldInfo", "ScopeId", "Truncatable", "derived", "field"]

_T = TypeVar("_T")


class _Missing:
    """The marker for "no default" (``describe(...).properties[i].default``) and "not given"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Truncatable:
    """Marker for ``Annotated[str, Truncatable]``: the field may be cut to make a message fit."""

    def __repr__(self) -> str:
        return "Truncatable"


Truncatable = _Truncatable()


@dataclass(frozen=True)
class FieldInfo:
    """What ``field()`` (or a plain default) declares about one property."""

    default: Any = MISSING
    default_factory: Callable[[], Any] | Any = MISSING
    key: str | None = None
    truncatable: bool = False
    doc: str | None = None
    #: For a derived property: the function computing it from inputs and properties, by parameter name.
    derive: Callable[..., Any] | None = None


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | Any = MISSING,
    key: str | None = None,
    truncatable: bool = False,
    doc: str | None = None,
) -> Any:
    """Declare a property with a default, a default factory, another wire ``key``, as truncatable, or a doc.

    A truncatable ``str`` property is cut (with a marker) when the message would exceed 32 KB. ``doc``
    describes the property for ``describe()`` and the tracking plan (as does a string literal right
    after the annotated assignment). Raises TrackDefinitionError for both a default and a factory, a
    factory that is not callable, or a key or doc that is not a str.
    """
    if default is not MISSING and default_factory is not MISSING:
        raise TrackDefinitionError("field(): give default or default_factory, not both")
    if default_factory is not MISSING and not callable(default_factory):
        raise TrackDefinitionError(f"field(): default_factory must be callable, got {type(default_factory).__name__}")
    if key is not None and (not isinstance(key, str) or not key):
        raise TrackDefinitionError(f"field(): key must be a non-empty str, got {type(key).__name__}")
    if doc is not None and not isinstance(doc, str):
        raise TrackDefinitionError(f"field(): doc must be a str, got {type(doc).__name__}")
    return FieldInfo(default, default_factory, key, truncatable, doc)


def derived(
    compute: Callable[..., _T],
    *,
    key: str | None = None,
    doc: str | None = None,
    init: Literal[False] = False,
) -> _T:
    """Declare a property computed from the track's other fields: ``name: str = derived(full_name)``.

    ``compute`` is called with the init-only inputs (``first_name: InitVar[str]``) and properties its
    parameters name, when the track is made; its result is checked against the property's annotation
    and sent like any property. The property is no constructor argument (``init`` is for type
    checkers, which see that). Raises TrackDefinitionError for a ``compute`` that is not callable or a
    key or doc that is not a str; a parameter naming no field is refused when the class is defined.
    """
    if not callable(compute):
        raise TrackDefinitionError(f"derived(): compute must be callable, got {type(compute).__name__}")
    info = field(key=key, doc=doc)
    return cast("_T", FieldInfo(info.default, info.default_factory, info.key, info.truncatable, info.doc, compute))
