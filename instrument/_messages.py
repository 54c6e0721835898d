"""Record -> Segment message: the exact wire form of a Track/Identify that passed validation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any

from instrument import _scopes
from instrument._encoding import MAX_MESSAGE_BYTES, encode, encoded_size, format_timestamp, largest_fields
from instrument._errors import AnalyticsError, EncodingError, OversizeError, PropertyError
from instrument._records import _Record, _spec
from instrument._spec import Spec
from instrument._validate import merge_scope, value_summary


@dataclass(frozen=True)
class EncodeOptions:
    """How records become messages: the redact hook, and (deprecated) a client's scope field wire keys.

    Wire keys are declared once, with the catalog (``EventName(..., wire_keys=...)``) or the scope
    (``define_scope(fields={...})``); ``wire_keys`` here overrides them for one client only.
    """

    wire_keys: Mapping[str, str] = _dc_field(default_factory=dict)
    redact: Callable[[str, dict[str, Any]], Mapping[str, Any]] | None = None


DEFAULT_OPTIONS = EncodeOptions()


def to_message(rec: _Record, options: EncodeOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """Build the exact Segment message for ``rec``: encoded, redacted, and checked for size.

    Raises the record's construction error, EncodingError (with the path) for a value the encoder
    refuses, and OversizeError past 32 KB (after cutting truncatable fields).
    """
    if rec._error is not None:
        raise rec._error
    spec = _spec(type(rec))
    name = spec.cls_name
    merged = merge_scope(rec._ctx, rec._over)
    props: dict[str, Any] = {}
    path = ""
    value: object = None
    try:
        if spec.free_form:
            for path, value in rec.properties.items():
                props[path] = encode(value, path, name)
        else:
            for p in spec.properties:
                path, value = p.name, getattr(rec, p.name)
                props[p.key] = encode(value, path, name)
        overrides = options.wire_keys
        for path, key in spec.scope_keys.items():
            value = merged[path]
            if overrides:
                key = overrides.get(path) or key  # noqa: PLW2901 - a client's (deprecated) rename
                if key in props:
                    raise PropertyError(
                        f"{name}: property key {key!r} is sent by both a property and scope field {path!r}",
                        track=name,
                        field=path,
                    )
            props[key] = encode(value, path, name)
    except AnalyticsError:
        raise
    except RecursionError:
        raise EncodingError(
            f"{name}.{path}: the {value_summary(value)} value is nested deeper than the recursion limit "
            "(or contains itself)",
            track=name,
            field=path,
            value_type=type(value).__name__,
        ) from None
    except Exception as error:  # a value whose __repr__, model_dump or iteration raises
        raise EncodingError(
            f"{name}.{path}: encoding the {value_summary(value)} value raised {type(error).__name__}",
            track=name,
            field=path,
            value_type=type(value).__name__,
        ) from error
    user_id = str(merged[_scopes.USER_ID])
    if spec.kind == "track":
        if options.redact is not None:
            try:
                props = dict(options.redact(spec.event or "", props))
            except Exception as error:  # a user hook: its failure is this event's, never the caller's
                raise EncodingError(
                    f"{name}: the redact hook raised {type(error).__name__}", track=name, field="", value_type=None
                ) from error
        message: dict[str, Any] = {"type": "track", "userId": user_id, "event": spec.event, "properties": props}
        body_key = "properties"
    else:
        message = {"type": "identify", "userId": user_id, "traits": props}
        body_key = "traits"
    message["timestamp"] = format_timestamp(rec._ts)
    message["messageId"] = str(uuid.uuid4())
    try:
        size = encoded_size(message)
    except Exception as error:  # a value that claims to be encodable (a lying __class__), redact's output
        raise EncodingError(
            f"{name}: serialising the message raised {type(error).__name__}", track=name, field="", value_type=None
        ) from error
    if size > MAX_MESSAGE_BYTES:
        _shrink(message, body_key, spec, size)
    return message


_CUT_MARK = "...[truncated]"


def _shrink(message: dict[str, Any], body_key: str, spec: Spec, size: int) -> None:
    body: dict[str, Any] = message[body_key]
    cuttable = [p.key for p in spec.properties if p.truncatable and isinstance(body.get(p.key), str)]
    for key in sorted(cuttable, key=lambda k: len(body[k]), reverse=True):
        excess = size - MAX_MESSAGE_BYTES
        text: str = body[key]
        # Cut by encoded bytes: escapes and non-ASCII make a char cost more than one.
        encoded_len = encoded_size({"v": text}) - encoded_size({"v": ""})
        keep = max(0, len(text) - int((excess + len(_CUT_MARK) + 16) * len(text) / max(encoded_len, 1)) - 1)
        while True:
            body[key] = text[:keep] + _CUT_MARK
            size = encoded_size(message)
            if size <= MAX_MESSAGE_BYTES or keep == 0:
                break
            keep = max(0, keep - max(64, (size - MAX_MESSAGE_BYTES)))
        if size <= MAX_MESSAGE_BYTES:
            return
    largest = largest_fields(body)
    raise OversizeError(
        f"{spec.cls_name}: message is {size} bytes, over Segment's {MAX_MESSAGE_BYTES}-byte limit; "
        f"largest fields: {', '.join(f'{k} ({n} bytes)' for k, n in largest)}"
        + ("" if cuttable else " (mark a str field truncatable with field(truncatable=True) to cut it)"),
        track=spec.cls_name,
        size=size,
        limit=MAX_MESSAGE_BYTES,
        largest=largest,
    )
