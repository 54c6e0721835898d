"""The one deterministic encoder: property values to JSON-native values, and message sizes.

Rules (documented in the README):

- ``None``, ``bool``, ``int``, ``str`` as they are; ``float`` as it is when finite.
- ``Enum`` members by their value (encoded again by these rules).
- ``datetime``: timezone-aware ones converted to UTC; naive ones are taken to *be* UTC (never guessed
  from the local clock). ISO 8601 with microseconds dropped to milliseconds: ``2026-11-28T13:00:00.123Z``.
- ``date`` as ``YYYY-MM-DD``; ``time`` as ISO 8601; ``timedelta`` as total seconds (float).
- ``UUID`` as its canonical string.
- ``Decimal``: finite ones as float (what Segment's own client does); NaN, infinity and values beyond the
  float range are errors.
- ``bytes``/``bytearray``/``memoryview`` as standard base64 text.
- ``list``, ``tuple`` as lists; ``set``/``frozenset`` as lists sorted by their encoded JSON text
  (so the same set always encodes the same way).
- ``dict`` and any ``Mapping`` as objects: keys must be ``str`` (or str-valued Enum members).
- dataclass instances, named tuples (``_asdict``) and objects with ``model_dump()`` as objects.
- Anything else, NaN and infinities, and non-str keys are an EncodingError naming the path.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from instrument._errors import EncodingError

JSONValue = Any

#: Segment's limits: one message, and one batch (the Segment client cuts batches at 475,000 bytes).
MAX_MESSAGE_BYTES = 32 << 10
MAX_BATCH_BYTES = 500_000

_UTC = _dt.timezone.utc


def _fail(value: object, path: str, track: str | None, why: str) -> EncodingError:
    where = f"{track}.{path}" if track else path
    return EncodingError(
        f"{where}: cannot encode {type(value).__name__} value {_short(value)}: {why}",
        track=track,
        field=path,
        value_type=type(value).__name__,
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_datetime(value: _dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``; naive datetimes are taken to be UTC."""
    value = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def format_timestamp(epoch_seconds: float) -> str:
    """ISO 8601 UTC text of a ``time.time()`` value, as sent in a message's ``timestamp``."""
    return _dt.datetime.fromtimestamp(epoch_seconds, _UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def encode(value: object, path: str, track: str | None = None) -> JSONValue:
    """Return ``value`` as JSON-native data by the module's rules.

    ``path`` names the value in errors (``tags[2]``). Raises EncodingError.
    """
    cls = value.__class__
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise _fail(value, path, track, "NaN and infinity are not valid JSON")
    if isinstance(value, enum.Enum):
        return encode(value.value, path, track)
    # str and int subclasses that are not enums go out as the plain type.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return encode(float(value), path, track)
    if isinstance(value, _dt.datetime):
        try:
            return format_datetime(value)
        except OverflowError:  # an aware datetime whose UTC form is before year 1 or after 9999
            raise _fail(value, path, track, "out of range once converted to UTC") from None
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        if value.is_finite():
            as_float = float(value)
            if math.isfinite(as_float):
                return as_float
            raise _fail(value, path, track, "too large for a JSON number (a float)")
        raise _fail(value, path, track, "NaN and infinity are not valid JSON")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return _encode_mapping(value, path, track)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name), f"{path}.{f.name}", track) for f in dataclasses.fields(value)}
    as_dict = getattr(value, "_asdict", None)
    if isinstance(value, tuple) and callable(as_dict):
        return _encode_mapping(as_dict(), path, track)
    if isinstance(value, (list, tuple)):
        return [encode(item, f"{path}[{i}]", track) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [encode(item, f"{path}[]", track) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _encode_mapping(dump(mode="python"), path, track)
    raise _fail(value, path, track, "no encoding rule for this type")


def _encode_mapping(value: Mapping[Any, Any], path: str, track: str | None) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for raw_key, item in value.items():
        key = raw_key.value if isinstance(raw_key, enum.Enum) and isinstance(raw_key.value, str) else raw_key
        if not isinstance(key, str):
            raise _fail(key, f"{path}[{key!r}]", track, "mapping keys must be str")
        out[str(key)] = encode(item, f"{path}.{key}" if path else key, track)
    return out


def encoded_size(message: Mapping[str, Any]) -> int:
    """Bytes of ``message`` as the Segment client measures it (``json.dumps``, UTF-8)."""
    return len(json.dumps(message).encode())


def largest_fields(fields: Mapping[str, Any], top: int = 3) -> list[tuple[str, int]]:
    """The ``top`` biggest entries of ``fields`` by encoded size, biggest first."""
    sizes = [(key, len(json.dumps(value).encode())) for key, value in fields.items()]
    sizes.sort(key=lambda pair: pair[1], reverse=True)
    return sizes[:top]
