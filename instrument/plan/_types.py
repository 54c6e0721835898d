"""Property annotations as JSON Schema (draft-07), mirroring what the encoder sends.

A dict in ``Annotated`` metadata adds keywords no Python type says (``Annotated[str, {"format": "email"}]``,
as ``instrument plan import`` writes them).

The encoder (``instrument._encoding``) decides the wire form, so the schema says what arrives: a
``datetime`` is an ISO string (``format: date-time``), a ``timedelta`` and a ``Decimal`` are numbers,
``bytes`` are base64 text, a ``set`` is an array of unique items, an ``Enum`` is its values.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from decimal import Decimal
from typing import Any

Schema = dict[str, Any]

# Order matters: datetime is a date subclass.
_STRING_FORMATS: tuple[tuple[type, str], ...] = (
    (dt.datetime, "date-time"),
    (dt.date, "date"),
    (dt.time, "time"),
    (uuid.UUID, "uuid"),
)
_SEQUENCES = (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection)
_SETS = (set, frozenset, cabc.Set, cabc.MutableSet)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


class Inexpressible(TypeError):
    """The annotation has no JSON Schema form the encoder's output would match."""


def _wire_value(value: object) -> object:
    """An enum or Literal value as the encoder sends it: members by their value, scalars as they are."""
    while isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise Inexpressible(f"enum value of type {type(value).__name__} is not a JSON scalar")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise Inexpressible(f"enum value of type {type(value).__name__} is not a JSON scalar")


def _enum_schema(values: list[object]) -> Schema:
    # Each value's JSON type, so that the schema says integer or string as well as which values.
    kinds = sorted({_json_type(v) for v in values})
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _class_schema(tp: type) -> Schema:
    if tp is bool:
        return {"type": "boolean"}
    if issubclass(tp, enum.Enum):
        return _enum_schema([_wire_value(member) for member in tp])
    if issubclass(tp, int):
        return {"type": "integer"}
    if issubclass(tp, (float, Decimal, dt.timedelta)):
        return {"type": "number"}
    for klass, fmt in _STRING_FORMATS:
        if issubclass(tp, klass):
            return {"type": "string", "format": fmt}
    if issubclass(tp, str):
        return {"type": "string"}
    if issubclass(tp, (bytes, bytearray, memoryview)):
        return {"type": "string", "contentEncoding": "base64"}
    if tp in _SEQUENCES or (issubclass(tp, (list, tuple)) and not hasattr(tp, "_fields")):
        return {"type": "array"}
    if tp in _SETS:
        return {"type": "array", "uniqueItems": True}
    if tp in _MAPPINGS:
        return {"type": "object"}
    if dataclasses.is_dataclass(tp) or (issubclass(tp, tuple) and hasattr(tp, "_fields")):
        return _record_schema(tp)
    raise Inexpressible(f"{getattr(tp, '__qualname__', tp)!s} has no JSON encoding")


def _record_schema(tp: type) -> Schema:
    """A dataclass or NamedTuple: sent as an object of its fields."""
    hints = typing.get_type_hints(tp, include_extras=True)
    names = [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else list(tp._fields)  # type: ignore[attr-defined]
    return {
        "type": "object",
        "properties": {name: annotation_schema(hints.get(name, Any)) for name in names},
        "required": names,
        "additionalProperties": False,
    }


def _with_null(schema: Schema) -> Schema:
    if not schema:
        return schema
    kind = schema.get("type")
    if "enum" in schema:
        kinds = [kind] if isinstance(kind, str) else list(kind or [])
        return {**schema, "type": sorted({*kinds, "null"}), "enum": [*schema["enum"], None]}
    if isinstance(kind, str):  # keywords such as format and items apply to their own type only
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list) and "anyOf" not in schema:
        return {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def annotation_schema(tp: Any) -> Schema:
    """The JSON Schema of the values an annotation admits, once encoded. Raises Inexpressible."""
    if tp is Any:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp is object:
        raise Inexpressible("object admits values the encoder cannot send (use Any, or a concrete type)")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        # A dict among the metadata is JSON Schema the type cannot say (``Annotated[str, {"format": "email"}]``).
        schema = annotation_schema(args[0])
        for extra in tp.__metadata__:
            if isinstance(extra, dict):
                schema = {**schema, **extra}
        return schema
    if origin is typing.Union or origin is types.UnionType:
        real = [a for a in args if a is not type(None)]
        inner = annotation_schema(real[0]) if len(real) == 1 else _union([annotation_schema(a) for a in real])
        return _with_null(inner) if len(real) < len(args) else inner
    if origin is typing.Literal:
        return _enum_schema([_wire_value(a) for a in args])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": annotation_schema(args[0])}
        if not args:
            return {"type": "array"}
        return {
            "type": "array",
            "items": [annotation_schema(a) for a in args],
            "additionalItems": False,
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in _SEQUENCES:
        items = annotation_schema(args[0]) if args else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    if origin in _SETS:
        unique: Schema = {"type": "array", "uniqueItems": True}
        if args and annotation_schema(args[0]):
            unique["items"] = annotation_schema(args[0])
        return unique
    if origin in _MAPPINGS:
        if not args:
            return {"type": "object"}
        key = args[0]
        if not (key is str or (isinstance(key, type) and issubclass(key, str))):
            raise Inexpressible(f"mapping keys of type {getattr(key, '__name__', key)!s} (JSON object keys are str)")
        values = annotation_schema(args[1])
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return annotation_schema(supertype)
    if isinstance(tp, type):
        return _class_schema(tp)
    raise Inexpressible(f"{tp!r} is not a supported annotation")


def _union(parts: list[Schema]) -> Schema:
    if any(not p for p in parts):
        return {}
    if all(set(p) == {"type"} and isinstance(p["type"], str) for p in parts):
        kinds: list[str] = []
        for p in parts:
            if p["type"] not in kinds:
                kinds.append(p["type"])
        return {"type": kinds[0] if len(kinds) == 1 else kinds}
    return {"anyOf": parts}


def type_text(schema: Schema) -> str:
    """A short readable form of a schema, for tables: ``integer``, ``string (date-time)``, ``array of string``."""
    if not schema:
        return "any"
    if set(schema) == {"not"} and schema["not"] == {"type": "null"}:
        return "any but null"
    if "anyOf" in schema:
        return " | ".join(type_text(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    text = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in schema:
        text = "one of " + ", ".join(_scalar(v) for v in schema["enum"])
    elif "format" in schema:
        text += f" ({schema['format']})"
    elif "contentEncoding" in schema:
        text += f" ({schema['contentEncoding']})"
    items = schema.get("items")
    if isinstance(items, dict):
        text += f" of {type_text(items)}"
    elif isinstance(items, list):
        text = "[" + ", ".join(type_text(i) for i in items) + "]"
    if schema.get("uniqueItems"):
        text += " (unique)"
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        text += f" of {type_text(extra)}"
    return text


def _scalar(value: object) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value).lower()
