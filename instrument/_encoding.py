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
- Anything else, NaN and infinities, non-str keys, and nesting deeper than ``MAX_DEPTH`` (a cycle) are
  an EncodingError naming the path, the type and the size of the value, never its content.

``dumps`` serialises a finished message to bytes once (orjson, compact UTF-8), for the wire and its size.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import json
import math
import os
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from instrument._errors import EncodingError

JSONValue = Any

#: Segment's limits: one message, and one batch (the Segment client cuts batches at 475,000 bytes).
MAX_MESSAGE_BYTES = 32 << 10
MAX_BATCH_BYTES = 500_000

#: Containers nested deeper than this (or a container that holds itself) are an EncodingError.
MAX_DEPTH = 64

_UTC = _dt.timezone.utc


def _fail(value: object, path: str, track: str | None, why: str) -> EncodingError:
    where = f"{track}.{path}" if track else path
    return EncodingError(
        f"{where}: cannot encode {type(value).__name__} value{describe_size(value)}: {why}",
        track=track,
        field=path,
        value_type=type(value).__name__,
    )


def describe_size(value: object) -> str:
    """`` (N chars)``/`` (N items)``/`` (N bytes)`` for a sized value, else ""; never the content."""
    try:
        if isinstance(value, str):
            return f" ({len(value)} chars)"
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f" ({len(value)} bytes)"
        if isinstance(value, (list, tuple, set, frozenset, Mapping)):
            return f" ({len(value)} items)"
    except Exception:  # a hostile __len__: the size is not worth an error of its own
        return ""
    return ""


def format_datetime(value: _dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``; naive datetimes are taken to be UTC."""
    value = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# timestamp_bytes' caches: the text of the last whole second formatted (events come in bursts), and
# the last millisecond's as (lo, hi, text): every value in [lo, hi) has that text. That interval is the
# millisecond narrowed by 2 us at each end, far more than a float's rounding error on a time.time()
# value (0.24 us in this century), so no value inside it formats differently. The tuple is swapped
# whole, so a thread never reads one interval with another's text.
_last_second: tuple[float, bytes] = (math.nan, b"")
last_millisecond: list[tuple[float, float, bytes]] = [(math.inf, -math.inf, b"")]
#: ``.mmmZ`` for every millisecond: a list index instead of a format spec per timestamp.
_MILLIS = [f".{ms:03d}Z".encode("ascii") for ms in range(1000)]
_modf = math.modf


def timestamp_bytes(epoch_seconds: float) -> bytes:
    """ISO 8601 UTC text of a ``time.time()`` value as ASCII bytes: a message's ``timestamp``.

    Milliseconds are those of ``datetime.fromtimestamp`` (rounded to the microsecond, then cut).
    """
    global _last_second
    lo, hi, text = last_millisecond[0]
    if lo <= epoch_seconds < hi:
        return text
    frac, whole = _modf(epoch_seconds)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    cached_whole, prefix = _last_second
    if whole != cached_whole:
        second = _dt.datetime.fromtimestamp(whole, _UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        prefix = second.encode("ascii")
        _last_second = (whole, prefix)
    millis = micros // 1000
    text = prefix + _MILLIS[millis]
    start = whole + millis / 1000
    last_millisecond[0] = (start + 2e-6, start + 998e-6, text)
    return text


def format_timestamp(epoch_seconds: float) -> str:
    """``timestamp_bytes`` as text (what a message dict holds)."""
    return timestamp_bytes(epoch_seconds).decode("ascii")


#: Ready message ids, drawn by ``list.pop`` (atomic under the GIL, so threads may share the pool; a
#: generated encoder pops from it directly and calls ``message_id`` when it is empty).
pool: list[str] = []


def _fresh_ids() -> None:
    # A forked child must never reuse the parent's pool (duplicate messageIds).
    pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_ids)
#: Byte maps that set a random byte's top bits to UUID version 4 (byte 6) and the RFC 4122 variant (byte 8).
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
_POOL_IDS = 256


#: ``bytes.hex("-", 2)`` writes an id's 16 bytes as eight 4-digit groups, each followed by a dash (the
#: last one added): 40 characters. A UUID's text is groups 1-2, 3, 4, 5, 6-8: the dashes after groups
#: 1, 6 and 7 go (marked, then deleted in one pass) and the one after group 8 ends the id.
_ROW = 40
_MARK = b"*" * _POOL_IDS
_ENDS = b" " * _POOL_IDS


def _refill() -> None:
    raw = bytearray(os.urandom(16 * _POOL_IDS))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    text = bytearray(raw.hex("-", 2).encode("ascii"))
    text += b"-"
    text[4::_ROW] = text[29::_ROW] = text[34::_ROW] = _MARK
    text[39::_ROW] = _ENDS
    pool.extend(text.translate(None, b"*").decode("ascii").split())


def message_id() -> str:
    """A random (version 4) UUID as text, like ``str(uuid.uuid4())``, at a fraction of its cost.

    Random bytes are read from ``os.urandom`` 256 ids at a time into a pool shared by threads; a forked
    child starts a new pool.
    """
    while True:
        try:
            return pool.pop()
        except IndexError:
            _refill()


def encode(value: object, path: str, track: str | None = None, depth: int = 0) -> JSONValue:
    """Return ``value`` as JSON-native data by the module's rules.

    ``path`` names the value in errors (``tags[2]``); ``depth`` is how deep in containers it sits.
    Raises EncodingError.
    """
    cls = value.__class__
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise _fail(value, path, track, "NaN and infinity are not valid JSON")
    if depth >= MAX_DEPTH:
        raise _fail(
            value, path, track, f"nested deeper than {MAX_DEPTH} levels, the recursion limit (does it contain itself?)"
        )
    if isinstance(value, enum.Enum):
        return encode(value.value, path, track, depth + 1)
    # str and int subclasses that are not enums go out as the plain type.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return encode(float(value), path, track, depth)
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
    depth += 1
    if isinstance(value, Mapping):
        return _encode_mapping(value, path, track, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode(getattr(value, f.name), f"{path}.{f.name}", track, depth) for f in dataclasses.fields(value)
        }
    as_dict = getattr(value, "_asdict", None)
    if isinstance(value, tuple) and callable(as_dict):
        return _encode_mapping(as_dict(), path, track, depth)
    if isinstance(value, (list, tuple)):
        return [encode(item, f"{path}[{i}]", track, depth) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [encode(item, f"{path}[]", track, depth) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _encode_mapping(dump(mode="python"), path, track, depth)
    raise _fail(value, path, track, "no encoding rule for this type")


def _encode_mapping(value: Mapping[Any, Any], path: str, track: str | None, depth: int = 0) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for raw_key, item in value.items():
        key = raw_key.value if isinstance(raw_key, enum.Enum) and isinstance(raw_key.value, str) else raw_key
        if not isinstance(key, str):
            # The key's type names it, not its repr: a key can be personal data too.
            raise _fail(key, f"{path}[<{type(key).__name__} key>]", track, "mapping keys must be str")
        out[str(key)] = encode(item, _key_path(path, key), track, depth)
    return out


def _key_path(path: str, key: str) -> str:
    # A key that is not a Python name is likely data (an email keying a dict): the path gives its size only.
    step = key if key.isidentifier() else f"<str key, {len(key)} chars>"
    return f"{path}.{step}" if path else step


def key_label(key: str) -> str:
    """How an error text names an undeclared key: quoted when it is a Python name, else by its size only."""
    if key.isidentifier() and len(key) <= 64:
        return repr(key)
    return f"a key that is not a Python name ({len(key)} chars)"


def encode_mapping(value: Mapping[Any, Any], path: str, track: str | None = None) -> dict[str, JSONValue]:
    """``encode`` of a mapping's values by the module's rules (used for a redact hook's output)."""
    if not isinstance(value, Mapping):
        raise _fail(value, path, track, "expected a mapping")
    return _encode_mapping(value, path, track, 1)


def dumps(message: Mapping[str, Any], track: str | None = None) -> bytes:
    """``message`` (already JSON-native, e.g. from ``encode``) as compact UTF-8 JSON bytes, once.

    orjson does it at C speed; what it refuses but JSON allows (ints beyond 64 bits, lone surrogates
    in text) goes through the standard library instead, ASCII-escaped, so the output is always valid
    JSON. Raises EncodingError if neither can (a message that did not come from the encoder, or a
    value that only claims to be a str/int/float through ``__class__``), naming ``track``.
    """
    try:
        return orjson.dumps(message)
    except TypeError:
        pass
    name = track or str(message.get("event") or message.get("type") or "message")
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("ascii")
    except Exception as error:
        raise EncodingError(
            f"{name}: serialising the message raised {type(error).__name__}", track=name, field=""
        ) from None


def encoded_size(message: Mapping[str, Any]) -> int:
    """Bytes of ``message`` as the Segment client measures it (``json.dumps``, UTF-8)."""
    return len(json.dumps(message).encode())


def largest_fields(fields: Mapping[str, Any], top: int = 3) -> list[tuple[str, int]]:
    """The ``top`` biggest entries of ``fields`` by encoded size, biggest first."""
    sizes = [(key, len(json.dumps(value).encode())) for key, value in fields.items()]
    sizes.sort(key=lambda pair: pair[1], reverse=True)
    return sizes[:top]
