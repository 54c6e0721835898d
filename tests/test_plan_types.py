"""Annotations as draft-07 JSON Schema: what the encoder sends, checked with the jsonschema library."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import instrument
from instrument import EventName, Track, analytics_scope, field, to_message
from instrument.plan import plan_of_module
from instrument.plan._types import Inexpressible, annotation_schema
from instrument.plan._validate import FORMAT_CHECKER


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    label: str | None


class Span(NamedTuple):
    start: dt.date
    days: int


class Events(EventName):
    RICH_THING_SENT = "Rich Thing Sent"


class RichThingSent(Track, event=Events.RICH_THING_SENT):
    """Every supported annotation, to check the schema against what the encoder sends."""

    when: dt.datetime
    day: dt.date
    clock: dt.time
    ident: uuid.UUID
    took: dt.timedelta
    price: Decimal
    blob: bytes
    color: Color
    level: Level
    choice: Literal["a", "b", 3]
    tags: set[str]
    counts: dict[str, int]
    maybe: int | None
    ratios: list[float]
    pair: tuple[int, str]
    nested: list[dict[str, bool]]
    anything: Any
    point: Point
    span: Span
    note: Annotated[str, instrument.Truncatable] = "n/a"
    renamed: int = field(default=0, key="renamedKey", doc="Sent under another key.")


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (str, {"type": "string"}),
        (int | None, {"type": ["integer", "null"]}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (dt.date, {"type": "string", "format": "date"}),
        (dt.time, {"type": "string", "format": "time"}),
        (uuid.UUID, {"type": "string", "format": "uuid"}),
        (dt.datetime | None, {"type": ["string", "null"], "format": "date-time"}),
        (dt.timedelta, {"type": "number"}),
        (Decimal, {"type": "number"}),
        (bytes, {"type": "string", "contentEncoding": "base64"}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Literal["x", "y"], {"type": "string", "enum": ["x", "y"]}),
        (Literal["x"] | None, {"type": ["null", "string"], "enum": ["x", None]}),
        (set[str], {"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        (frozenset[int], {"type": "array", "uniqueItems": True, "items": {"type": "integer"}}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (int | str, {"type": ["integer", "string"]}),
        (Any, {}),
        (Annotated[str, instrument.Truncatable], {"type": "string"}),
        (
            Point,
            {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "label": {"type": ["string", "null"]}},
                "required": ["x", "label"],
                "additionalProperties": False,
            },
        ),
        (
            Span,
            {
                "type": "object",
                "properties": {"start": {"type": "string", "format": "date"}, "days": {"type": "integer"}},
                "required": ["start", "days"],
                "additionalProperties": False,
            },
        ),
    ],
    ids=repr,
)
def test_annotations_map_to_the_schema_of_what_the_encoder_sends(annotation: Any, schema: dict[str, Any]) -> None:
    assert annotation_schema(annotation) == schema
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (list[object], "object admits values the encoder cannot send"),
        (dict[int, str], "mapping keys of type int (JSON object keys are str)"),
        (complex, "complex has no JSON encoding"),
    ],
    ids=repr,
)
def test_annotations_without_a_json_form_are_refused(annotation: Any, message: str) -> None:
    with pytest.raises(Inexpressible, match=re.escape(message)):
        annotation_schema(annotation)


def _rich_values() -> st.SearchStrategy[dict[str, Any]]:
    text = st.text(max_size=8)
    return st.fixed_dictionaries(
        {
            "when": st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9000, 1, 1)),
            "day": st.dates(),
            "clock": st.times(),
            "ident": st.uuids(),
            "took": st.timedeltas(),
            "price": st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20),
            "blob": st.binary(max_size=16),
            "color": st.sampled_from(Color),
            "level": st.sampled_from(Level),
            "choice": st.sampled_from(["a", "b", 3]),
            "tags": st.sets(text, max_size=4),
            "counts": st.dictionaries(text, st.integers(), max_size=3),
            "maybe": st.none() | st.integers(),
            "ratios": st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
            "pair": st.tuples(st.integers(), text),
            "nested": st.lists(st.dictionaries(text, st.booleans(), max_size=2), max_size=2),
            "anything": st.none() | st.integers() | text,
            "point": st.builds(Point, x=st.integers(), label=st.none() | text),
            "span": st.builds(Span, start=st.dates(), days=st.integers()),
        }
    )


RICH_SCHEMA = next(r for r in plan_of_module(__name__).rules if r.key == "Rich Thing Sent").message_schema()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=_rich_values())
def test_every_encodable_value_validates_against_the_exported_schema(values: dict[str, Any]) -> None:
    with analytics_scope(user_id=1):
        message = to_message(RichThingSent(**values))
    validator = jsonschema.Draft7Validator(RICH_SCHEMA, format_checker=FORMAT_CHECKER)  # the collector's formats
    assert [e.message for e in validator.iter_errors(message)] == []
    assert "renamedKey" in message["properties"]


def test_optional_and_defaulted_properties_are_not_required() -> None:
    [rule] = [r for r in plan_of_module(__name__).rules if r.key == "Rich Thing Sent"]
    required = rule.body["required"]
    assert "maybe" not in required  # X | None
    assert "note" not in required
    assert "renamedKey" not in required
    assert "when" in required
    assert rule.body["properties"]["renamedKey"] == {"type": "integer", "description": "Sent under another key."}
    assert "renamed" not in rule.body["properties"]
