"""Record -> Segment message: the exact wire form of a record (any of the six calls) that passed validation."""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any

import orjson

from instrument import _context, _encoding, _scopes
from instrument._codegen import make_function
from instrument._encoding import (
    MAX_MESSAGE_BYTES,
    dumps,
    encode,
    encode_mapping,
    encoded_size,
    format_timestamp,
    largest_fields,
    message_id,
    timestamp_bytes,
)
from instrument._errors import AnalyticsError, EncodingError, OversizeError, PropertyError
from instrument._records import _NO_OVER, _Record, _spec
from instrument._spec import Spec
from instrument._validate import merge_scope, value_summary
from instrument.transports._base import EncodedBatch, cut


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
    message, body_key, spec = _build(rec, options)
    size = _measured(message, spec.cls_name)
    if size > MAX_MESSAGE_BYTES:
        _shrink(message, body_key, spec, size)
    return message


def _measured(message: dict[str, Any], name: str) -> int:
    """Segment's measure of ``message``; EncodingError for a value that only claims to be encodable."""
    try:
        return encoded_size(message)
    except Exception as error:  # a value that claims to be encodable (a lying __class__)
        raise EncodingError(
            f"{name}: serialising the message raised {type(error).__name__}", track=name, field="", value_type=None
        ) from error


#: A message whose compact UTF-8 JSON is at most this long is under 32 KB as Segment's client measures
#: it (``json.dumps``: ASCII escapes make a character at most 3x its UTF-8 bytes, ", "/": " 2x a separator).
_SURELY_SMALL = MAX_MESSAGE_BYTES // 3


def to_wire(rec: _Record | dict[str, Any], options: EncodeOptions = DEFAULT_OPTIONS) -> tuple[bytes, str]:
    """``to_message`` serialised once: the message's JSON bytes (what is sent) and its messageId.

    ``rec`` may also be a message built already (strict mode builds it on the caller's thread). The
    size is known from the bytes; only a message near the limit is measured the way Segment's client
    measures it (and cut or refused as ``to_message`` does). Raises as ``to_message``.
    """
    if rec.__class__ is dict:
        return dumps(rec), rec["messageId"]
    record: _Record = rec  # type: ignore[assignment]  # what the test above leaves (no call per message)
    if record._error is not None:
        raise record._error
    # Each record class has its own __instrument_spec__ (None until compiled): no inherited one is read.
    spec = type(record).__instrument_spec__ or _spec(type(record))
    fast = spec.wire
    if fast is None:
        fast = _compile_wire(spec, type(record))
    if fast:
        wired: tuple[bytes, str] | None = fast(record, options)
        if wired is not None:
            return wired
    message, body_key = (spec.builder or _compile_builder(spec, type(record)))(record, options)
    try:
        data = orjson.dumps(message)
    except TypeError:  # what orjson refuses but JSON allows: dumps' standard-library path
        data = dumps(message, spec.cls_name)
    if len(data) > _SURELY_SMALL:
        size = _measured(message, spec.cls_name)
        if size > MAX_MESSAGE_BYTES:
            _shrink(message, body_key, spec, size)
            data = dumps(message, spec.cls_name)
    return data, message["messageId"]


def wire_batches(
    items: list[Any],
    limit: int,
    failed: Callable[[Any, Exception], None],
    options: EncodeOptions = DEFAULT_OPTIONS,
) -> Iterator[EncodedBatch]:
    """``to_wire`` of each item (a record, a track packed by ``track()``, or a message strict mode built)
    cut into batches under ``limit`` (``transports.cut``); an item that cannot be encoded goes to
    ``failed`` with its error (a packed one as its record).

    The worker's loop: a run of one class's packed tracks goes through that class's generated loop,
    and a record through its direct path here, not through ``to_wire``: no call per delivered event.
    """
    data: list[bytes] = []
    ids: list[str] = []
    own = not (options.wire_keys or options.redact is not None)  # the generated loops' options
    n = len(items)
    i = 0
    while i < n:
        rec = items[i]
        if rec.__class__ is tuple:
            if own:
                taken = rec[0].__instrument_spec__.run(items, i, n, data, ids)
                if taken > i:
                    i = taken
                    continue
            rec = unpack(rec)  # one the loop does not cover (a value, its size): the record's way
        i += 1
        spec = getattr(rec.__class__, "__instrument_spec__", None)  # None: a dict, or not compiled yet
        try:
            fast = spec.wire if spec is not None and rec._error is None else None
            wired = (fast(rec, options) if fast else None) or to_wire(rec, options)
        except Exception as error:
            failed(rec, error)
            continue
        data.append(wired[0])
        ids.append(wired[1])
    return cut(data, ids, limit)


def unpack(item: tuple[Any, ...]) -> _Record:
    """The record a packed track (``_pack_source``: what ``track()`` queues) was made from, as ``to_wire``
    reads it."""
    cls = item[0]
    rec = cls.__new__(cls)
    rec._ctx, rec._over, rec._ts = item[1], _NO_OVER, item[2]
    for p, value in zip(cls.__instrument_spec__.properties, item[3:], strict=True):
        setattr(rec, p.name, value)
    return rec  # type: ignore[no-any-return]


def _build(rec: _Record, options: EncodeOptions) -> tuple[dict[str, Any], str, Spec]:
    """The message of ``rec`` before its size check, the key of its body, and its spec."""
    if rec._error is not None:
        raise rec._error
    spec = _spec(type(rec))
    builder = spec.builder or _compile_builder(spec, type(rec))
    message, body_key = builder(rec, options)
    return message, body_key, spec


def _encode_field(value: object, path: str, name: str) -> Any:
    """``encode`` of one property or scope value: what it raises becomes an EncodingError naming ``path``."""
    try:
        return encode(value, path, name)
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
    except Exception as error:  # a value whose __class__, __repr__, model_dump or iteration raises
        raise EncodingError(
            f"{name}.{path}: encoding the {value_summary(value)} value raised {type(error).__name__}",
            track=name,
            field=path,
            value_type=type(value).__name__,
        ) from error


def _free_form(props: Mapping[str, object], name: str) -> dict[str, Any]:
    """A free-form record's properties, each encoded."""
    return {path: _encode_field(value, path, name) for path, value in props.items()}


def _renamed_scope(
    props: dict[str, Any], merged: Mapping[str, object], spec: Spec, overrides: Mapping[str, str]
) -> None:
    """Add the scope fields to ``props`` under a client's (deprecated) wire keys."""
    name = spec.cls_name
    for path, default_key in spec.scope_keys.items():
        key = overrides.get(path) or default_key
        if key in props:
            raise PropertyError(
                f"{name}: property key {key!r} is sent by both a property and scope field {path!r}",
                track=name,
                field=path,
            )
        props[key] = _encode_field(merged[path], path, name)


def _redacted(options: EncodeOptions, spec: Spec, props: dict[str, Any]) -> dict[str, Any]:
    """What the redact hook makes of ``props``, encoded again (a bad value is this event's error)."""
    name = spec.cls_name
    try:
        redacted = options.redact(spec.event or "", props)  # type: ignore[misc]  # checked by the caller
    except Exception as error:  # a user hook: its failure is this event's, never the caller's
        raise EncodingError(
            f"{name}: the redact hook raised {type(error).__name__}", track=name, field="", value_type=None
        ) from error
    return encode_mapping(redacted, "", name)


def _plain(var: str) -> str:
    # str, int and bool go to the serialiser as they are (their type, not a claimed __class__).
    return f"(t := type({var})) is str or t is int or t is bool"


def _builder_source(spec: Spec) -> tuple[str, dict[str, Any]]:
    """The source of ``spec``'s message builder: its keys, event and call type written in as constants."""
    lines = [
        "def build(rec, options):",
        "    merged = rec._ctx",
        "    if rec._over:",
        "        merged = merge_scope(merged, rec._over)",
    ]
    # Every value is read before any is encoded, in the order the general loop had (properties, then scope).
    entries: list[str] = []
    if spec.free_form:
        lines.append("    props = free_form(rec.properties, NAME)")
    else:
        for i, p in enumerate(spec.properties):
            read = (
                f"rec.{p.name}"
                if p.name.isidentifier() and not keyword.iskeyword(p.name)
                else f"getattr(rec, {p.name!r})"
            )
            lines.append(f"    v{i} = {read}")
            entries.append(f"{p.key!r}: v{i} if {_plain(f'v{i}')} else encode_field(v{i}, {p.name!r}, NAME)")
    lines.append(f"    props = {{{', '.join(entries)}}}" if not spec.free_form else "")
    if spec.scope_keys:
        lines += [
            "    overrides = options.wire_keys",
            "    if overrides:",
            "        renamed_scope(props, merged, SPEC, overrides)",
            "    else:",
        ]
        for path, key in spec.scope_keys.items():
            lines.append(f"        v = merged[{path!r}]")
            lines.append(f"        props[{key!r}] = v if {_plain('v')} else encode_field(v, {path!r}, NAME)")
    if spec.kind in ("track", "page", "screen"):
        lines += ["    if options.redact is not None:", "        props = redacted(options, SPEC, props)"]
    lines += [
        f"    u = merged.get({_scopes.USER_ID!r})",
        f"    a = merged.get({_scopes.ANONYMOUS_ID!r})",
    ]
    if spec.kind == "track":
        lines += [
            "    message = {'type': 'track'}",
            f"    if u is not None: message[{_scopes.USER_WIRE_KEY!r}] = str(u)",
            f"    if a is not None: message[{_scopes.ANONYMOUS_WIRE_KEY!r}] = str(a)",
            f"    message['event'] = {spec.event!r}",
            "    message['properties'] = props",
            "    body_key = 'properties'",
        ]
    else:
        lines += [
            "    ids = {}",
            f"    if u is not None: ids[{_scopes.USER_WIRE_KEY!r}] = str(u)",
            f"    if a is not None: ids[{_scopes.ANONYMOUS_WIRE_KEY!r}] = str(a)",
            "    message, body_key = call_message(rec, SPEC, merged, ids, props)",
        ]
    lines += [
        "    context = rec._context",
        "    if context:",
        "        merge_into(message, context)",
        "    message['timestamp'] = format_timestamp(rec._ts)",
        "    message['messageId'] = message_id()",
        "    return message, body_key",
    ]
    namespace = {
        "NAME": spec.cls_name,
        "SPEC": spec,
        "merge_scope": merge_scope,
        "free_form": _free_form,
        "encode_field": _encode_field,
        "renamed_scope": _renamed_scope,
        "redacted": _redacted,
        "call_message": _call_message,
        "merge_into": _context.merge_into,
        "format_timestamp": format_timestamp,
        "message_id": message_id,
    }
    return "\n".join(line for line in lines if line) + "\n", namespace


def _compile_builder(spec: Spec, cls: type) -> Callable[[_Record, EncodeOptions], tuple[dict[str, Any], str]]:
    """Compile (once per class) the function that builds the messages of ``cls`` (whose spec is ``spec``)."""
    source, namespace = _builder_source(spec)
    builder: Callable[[_Record, EncodeOptions], tuple[dict[str, Any], str]] = _generated(
        "build", source, namespace, cls, "message builder", f"Build the Segment message of a {spec.cls_name} record"
    )
    spec.builder = builder
    return builder


def _generated(name: str, source: str, namespace: dict[str, Any], cls: type, what: str, doc: str) -> Any:
    """``make_function`` for one of ``cls``'s generated functions (named after the class in tracebacks)."""
    return make_function(
        name,
        source,
        namespace,
        what=what,
        module=cls.__module__,
        qualname=cls.__qualname__,
        doc=f"{doc} (generated from its spec).",
    )


#: A track's bytes after its properties object: its timestamp's key; then its messageId's.
_TIMESTAMP_KEY = b',"timestamp":"'
_ID_KEY = b'","messageId":"'
_END = b'"}'
#: Scopes whose message fragments one class keeps (the scopes of the requests in flight, typically).
_FRAGMENTS_KEPT = 256


def _fragments(spec: Spec, kept: dict[int, tuple[Any, ...]], merged: Mapping[str, object]) -> tuple[Any, ...] | None:
    """The bytes a track of ``spec`` sends from the scope ``merged`` (the same for each of its events):
    ``(merged, head, tail)``, the head up to the properties object, the tail from the scope's properties
    to the timestamp's key; None if a value in it is not a plain str/int/bool (the builder's path).

    Kept in ``kept`` by the scope dict's id, with the dict itself: held there, it cannot be freed and its
    id reused by another dict while the entry lives; and a bound scope dict is never mutated (``_scopes``).
    """
    scope: dict[str, object] = {}
    for path, key in spec.scope_keys.items():
        value = merged.get(path)
        if type(value) not in _PLAIN:
            return None
        scope[key] = value
    head: dict[str, object] = {"type": "track"}
    for path, key in ((_scopes.USER_ID, _scopes.USER_WIRE_KEY), (_scopes.ANONYMOUS_ID, _scopes.ANONYMOUS_WIRE_KEY)):
        value = merged.get(path)
        if value is not None:
            if type(value) is not str and type(value) is not int:
                return None
            head[key] = str(value)
    head["event"] = spec.event
    head["properties"] = None
    try:
        start, scope_json = orjson.dumps(head)[: -len(b"null}")], orjson.dumps(scope)
    except TypeError:  # text orjson refuses (a lone surrogate): the builder's path
        return None
    if spec.properties:  # the record's properties come first, then the scope's
        tail = (b"," + scope_json[1:] if scope else b"}") + _TIMESTAMP_KEY
    else:
        start, tail = start + scope_json + _TIMESTAMP_KEY, b""
    entry = (merged, start, tail)
    if len(kept) >= _FRAGMENTS_KEPT:
        kept.clear()
    kept[id(merged)] = entry
    return entry


_PLAIN = (str, int, bool)
#: No scope's entry (its dict is None, which no record's scope is).
_NO_ENTRY: tuple[Any, ...] = (None, b"", b"")
#: Every track class's kept fragments and last entry: what ``forget_scopes`` empties.
_kept_by_class: list[tuple[dict[int, tuple[Any, ...]], list[tuple[Any, ...]]]] = []


def forget_scopes() -> None:
    """Drop every scope's serialised fragments (they hold its ids): ``instrument.forget`` leaves none
    of a user's ids in these caches; they are made again from the next record's scope."""
    for kept, last in _kept_by_class:
        kept.clear()
        last[0] = _NO_ENTRY


def _names(spec: Spec) -> list[str]:
    """How generated code reads each property of a record (a name that is not an identifier too)."""
    return [
        f"rec.{p.name}" if p.name.isidentifier() and not keyword.iskeyword(p.name) else f"getattr(rec, {p.name!r})"
        for p in spec.properties
    ]


def _encode_lines(spec: Spec, give_up: str, pad: str) -> list[str]:
    """The direct path's steps once the properties are in ``v0``, ``v1``... and the scope in ``merged``,
    ending with the message in ``data`` and its id in ``mid``; ``give_up`` where the builder must do it."""
    lines: list[str] = []
    if spec.properties:
        plain = " and ".join(f"({_plain(f'v{i}')})" for i in range(len(spec.properties)))
        entries = ", ".join(f"{p.key!r}: v{i}" for i, p in enumerate(spec.properties))
        lines += [
            f"if not ({plain}):",
            f"    {give_up}",
            "try:",
            f"    props = dumps({{{entries}}})",
            "except TypeError:  # what orjson refuses (an int past 64 bits): the builder's path",
            f"    {give_up}",
        ]
    lines += [
        "if entry[0] is not merged:  # another scope than the last record's",
        "    entry = kept_get(id(merged)) or fragments(SPEC, KEPT, merged)",
        "    if entry is None:",
        f"        {give_up}",
        "    LAST[0] = entry",
        "if not lo <= ts < hi:",
        "    when = timestamp(ts)",
        "    lo, hi = LAST_MS[0][:2]",
        "try:",
        "    mid = pop_id()",
        "except IndexError:",
        "    mid = message_id()",
        "data = join((entry[1], props[:-1], entry[2], when, ID_KEY, mid.encode(), END))"
        if spec.properties
        else "data = join((entry[1], when, ID_KEY, mid.encode(), END))",
        "if len(data) > SURELY_SMALL:",
        f"    {give_up}",
    ]
    return [pad + line for line in lines]


def _wire_source(spec: Spec) -> str:
    """The source of a track class's direct path to its bytes: the scope's part of the message made
    once per scope (``_fragments``), the record's properties serialised and joined to it. It returns
    None, for the builder to do the message, for what it does not cover: a value that is not a plain
    str/int/bool, scope overrides, context, a redact hook or wire key overrides, a message near 32 KB.
    """
    lines = [
        "def wire(rec, options):",
        "    if rec._over or rec._context is not None or options.wire_keys or options.redact is not None:",
        "        return None",
        "    merged = rec._ctx",
        *(f"    v{i} = {read}" for i, read in enumerate(_names(spec))),
        "    entry = LAST[0]",
        "    ts = rec._ts",
        "    lo, hi, when = LAST_MS[0]",
        *_encode_lines(spec, "return None", "    "),
        "    return data, mid",
    ]
    return "\n".join(lines) + "\n"


def _pack_source(spec: Spec) -> str:
    """The source of what ``track()`` queues for a record of the class: the tuple ``(class, scope, time,
    *properties)`` (the state its message is made from, read now: a record may change after ``track()``),
    or the record itself when it overrides a scope field."""
    values = "".join(f", {read}" for read in _names(spec))
    return f"def pack(rec):\n    if rec._over:\n        return rec\n    return (CLS, rec._ctx, rec._ts{values})\n"


def _run_source(spec: Spec) -> str:
    """The source of the worker's loop over packed tracks of the class: from ``items[i]``, each one's
    bytes and id appended to ``out`` and ``ids``, until an item of another kind, or one the direct path
    does not cover; it returns the index of that item (``n``: all were taken)."""
    unpacked = "".join(f", v{i}" for i in range(len(spec.properties)))
    lines = [
        "def run(items, i, n, out, ids):",
        "    entry = LAST[0]",
        "    lo, hi, when = LAST_MS[0]",
        "    put, put_id = out.append, ids.append",
        "    while i < n:",
        "        item = items[i]",
        "        if item.__class__ is not tuple or item[0] is not CLS:",
        "            break",
        f"        _, merged, ts{unpacked} = item",
        *_encode_lines(spec, "break", "        "),
        "        put(data)",
        "        put_id(mid)",
        "        i += 1",
        "    return i",
    ]
    return "\n".join(lines) + "\n"


def _compile_wire(spec: Spec, cls: type) -> Callable[[_Record, EncodeOptions], tuple[bytes, str] | None] | bool:
    """Compile (once per class) the direct path of a track class to its bytes, its packer and its loop
    over packed records; False for other kinds and free-form tracks (the builder makes their messages)."""
    if spec.kind != "track" or spec.free_form:
        spec.wire = False
        return False
    kept: dict[int, tuple[Any, ...]] = {}
    last: list[tuple[Any, ...]] = [_NO_ENTRY]  # the last entry used, swapped whole
    _kept_by_class.append((kept, last))
    namespace = {
        "CLS": cls,
        "SPEC": spec,
        "KEPT": kept,
        "LAST": last,
        "kept_get": kept.get,
        "fragments": _fragments,
        "dumps": orjson.dumps,
        "join": b"".join,
        "message_id": message_id,
        "pop_id": _encoding.pool.pop,  # the pool is one list for good (a forked child clears it)
        "timestamp": timestamp_bytes,
        "LAST_MS": _encoding.last_millisecond,
        "ID_KEY": _ID_KEY,
        "END": _END,
        "SURELY_SMALL": _SURELY_SMALL,
    }
    name = spec.cls_name
    wire: Callable[[_Record, EncodeOptions], tuple[bytes, str] | None] = _generated(
        "wire", _wire_source(spec), namespace, cls, "wire path", f"The bytes of a {name} record, or None"
    )
    spec.run = _generated("run", _run_source(spec), namespace, cls, "wire loop", f"Encode a run of packed {name}s")
    spec.wire = wire
    if not spec.inputs:  # (a record's inputs are not in its tuple)
        pack = _generated("pack", _pack_source(spec), namespace, cls, "packer", f"What track() queues for a {name}")
        cls._pack = staticmethod(pack)  # type: ignore[attr-defined]
    return wire


def _call_message(
    rec: _Record, spec: Spec, merged: Mapping[str, object], ids: dict[str, str], props: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The message of an identify, group, page, screen or alias call (every id checked at construction)."""
    kind = spec.kind
    if kind == "identify":
        return {"type": "identify", **ids, "traits": props}, "traits"
    if kind == "group":
        group_id = merged[spec.group_field] if spec.group_field is not None else rec.__dict__["group_id"]
        # Segment's groupId is a string, as its userId is (the official client stringifies only the latter).
        return {"type": "group", **ids, "groupId": str(group_id), "traits": props}, "traits"
    if kind == "alias":
        # Only the user's id: the previous id is the one being aliased (often the anonymous id itself).
        user = {k: v for k, v in ids.items() if k == _scopes.USER_WIRE_KEY}
        return {"type": "alias", **user, "previousId": str(rec.__dict__["previous_id"])}, "properties"
    named: dict[str, Any] = {"type": kind, **ids}
    if spec.event is not None:
        named["name"] = spec.event
    if spec.category is not None:
        named["category"] = spec.category
    named["properties"] = props
    return named, "properties"


_CUT_MARK = "...[truncated]"


def _shrink(message: dict[str, Any], body_key: str, spec: Spec, size: int) -> None:
    body: dict[str, Any] = message.get(body_key, {})  # an alias has no body: nothing to cut
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
