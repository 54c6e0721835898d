"""TEMPORARY adapter: the DESCRIBE-API contract over the current internals, until instrument.describe lands."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from instrument import _scopes
from instrument._tracks import MISSING, Identify, _user_annotations, spec_of


@dataclass(frozen=True)
class PropertySchema:
    name: str
    key: str
    annotation: Any
    required: bool
    default: Any
    default_factory: Callable[[], Any] | None
    nullable: bool
    truncatable: bool
    doc: str | None


@dataclass(frozen=True)
class ScopeFieldSchema:
    name: str
    key: str
    is_id: bool
    is_user_id: bool


@dataclass(frozen=True)
class EventSchema:
    cls: type
    kind: Literal["track", "identify"]
    event: str | None
    scope: str
    doc: str | None
    properties: tuple[PropertySchema, ...]
    scope_fields: tuple[ScopeFieldSchema, ...]
    free_form: bool
    source: tuple[str, int] | None


def _nullable(tp: Any) -> bool:
    if tp is Any:
        return True
    if typing.get_origin(tp) is typing.Annotated:
        return _nullable(typing.get_args(tp)[0])
    return type(None) in typing.get_args(tp) or tp is None or tp is type(None)


def describe(cls: type) -> EventSchema:
    spec = spec_of(cls)
    hints = _user_annotations(cls)
    props = tuple(
        PropertySchema(
            p.name,
            p.key,
            hints[p.name],
            p.required,
            p.default,
            None if p.default_factory is MISSING else p.default_factory,
            _nullable(hints[p.name]),
            p.truncatable,
            None,
        )
        for p in spec.properties
    )
    fields = tuple(
        ScopeFieldSchema(
            f,
            "userId" if f == _scopes.USER_ID else _scopes.default_wire_key(f),
            f in ("user_id", "project_id", "cluster_id", "registry_id"),
            f == _scopes.USER_ID,
        )
        for f in spec.scope.fields
    )
    own = cls.__dict__.get("__doc__")
    try:
        source: tuple[str, int] | None = (inspect.getsourcefile(cls) or "", inspect.getsourcelines(cls)[1])
    except (OSError, TypeError):
        source = None
    return EventSchema(
        cls,
        "identify" if issubclass(cls, Identify) else "track",
        spec.event,
        spec.scope.name,
        inspect.cleandoc(own) if isinstance(own, str) else None,
        props,
        fields,
        spec.free_form,
        source,
    )
