"""The encoder: every documented rule, error paths, and a JSON round trip property."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import threading
import uuid
from collections import OrderedDict, namedtuple
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instrument import EncodingError, PropertyError
from instrument._encoding import (
    MAX_DEPTH,
    dumps,
    encode,
    encode_mapping,
    encoded_size,
    format_datetime,
    format_timestamp,
    largest_fields,
    message_id,
)


class Color(enum.Enum):
    RED = "red"
    NESTED = ("a", 1)


class Level(enum.IntEnum):
    HIGH = 3


class Key(str, enum.Enum):
    NAME = "name"


class Label(str):
    pass


class Count(int):
    pass


@dataclasses.dataclass
class Point:
    x: int
    y: dt.date


class Pair(NamedTuple):
    left: int
    right: str


LegacyPair = namedtuple("LegacyPair", ["a", "b"])


class FrozenMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Model:
    """Looks like a pydantic model."""

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        assert mode == "python"
        return {"when": dt.date(2026, 1, 1)}


@pytest.mark.parametrize("value", [None, True, False, 0, -5, 2**70, "", "text é 😀", 1.5, -0.0])
def test_json_native_values_are_kept_as_they_are(value: object) -> None:
    encoded = encode(value, "v")
    assert encoded == value
    assert type(encoded) is type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2026, 11, 28, 13, 0, 0, 123456, tzinfo=dt.timezone.utc), "2026-11-28T13:00:00.123Z"),
        (
            dt.datetime(2026, 11, 28, 15, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=2, minutes=30))),
            "2026-11-28T13:00:00.000Z",
        ),
        (dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2025-12-31T23:30:00.000Z"),
        (dt.datetime(2026, 11, 28, 13, 0, 0, 999999), "2026-11-28T13:00:00.999Z"),
    ],
)
def test_datetimes_are_utc_iso_with_milliseconds_and_z(value: dt.datetime, expected: str) -> None:
    assert encode(value, "at") == expected
    assert format_datetime(value) == expected


def test_a_naive_datetime_is_taken_as_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        assert encode(dt.datetime(2026, 6, 1, 12, 0), "at") == "2026-06-01T12:00:00.000Z"
    finally:
        monkeypatch.undo()
        if hasattr(time, "tzset"):
            time.tzset()


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_an_aware_datetime_out_of_range_in_utc_is_an_encoding_error(value: dt.datetime) -> None:
    with pytest.raises(EncodingError, match="out of range") as info:
        encode({"at": value}, "meta")
    assert info.value.field == "meta.at"


def test_format_timestamp_of_an_epoch() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2026, 2, 3), "2026-02-03"),
        (dt.time(4, 5, 6), "04:05:06"),
        (dt.time(4, 5, 6, 7000), "04:05:06.007000"),
        (dt.timedelta(minutes=1, milliseconds=500), 60.5),
        (dt.timedelta(0), 0.0),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (Color.RED, "red"),
        (Color.NESTED, ["a", 1]),
        (Level.HIGH, 3),
        (Key.NAME, "name"),
        (Label("x"), "x"),
        (Count(4), 4),
        (Decimal("1.25"), 1.25),
        (Decimal("-3"), -3.0),
        (b"\x00\xffhi", "AP9oaQ=="),
        (bytearray(b"abc"), "YWJj"),
        (memoryview(b"abc"), "YWJj"),
        ((1, "a"), [1, "a"]),
        ([1, (2, 3)], [1, [2, 3]]),
        (Point(1, dt.date(2026, 1, 1)), {"x": 1, "y": "2026-01-01"}),
        (Pair(1, "r"), {"left": 1, "right": "r"}),
        (LegacyPair(1, 2), {"a": 1, "b": 2}),
        (OrderedDict([("b", 1), ("a", 2)]), {"b": 1, "a": 2}),
        (MappingProxyType({"k": Color.RED}), {"k": "red"}),
        (FrozenMapping({"k": (1,)}), {"k": [1]}),
        ({Key.NAME: 1}, {"name": 1}),
        (Model(), {"when": "2026-01-01"}),
    ],
)
def test_each_documented_rule(value: object, expected: object) -> None:
    encoded = encode(value, "v")
    assert encoded == expected
    assert type(encoded) is type(expected)


def test_subclasses_of_str_and_int_go_out_as_the_plain_type() -> None:
    assert type(encode(Label("x"), "v")) is str
    assert type(encode(Count(1), "v")) is int
    assert type(encode(Level.HIGH, "v")) is int


def test_sets_are_sorted_by_encoded_json_so_the_same_set_always_encodes_the_same() -> None:
    assert encode({"b", "a", "c"}, "v") == ["a", "b", "c"]
    assert encode(frozenset({3, 1, 2}), "v") == [1, 2, 3]
    mixed = {1, "1", (1, 2), None}
    assert encode(mixed, "v") == sorted([1, "1", [1, 2], None], key=lambda item: json.dumps(item, sort_keys=True))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinite_floats_are_errors(value: float) -> None:
    with pytest.raises(EncodingError, match="NaN and infinity") as info:
        encode(value, "ratio", "Track")
    assert info.value.field == "ratio"
    assert info.value.value_type == "float"
    assert info.value.track == "Track"
    assert str(info.value).startswith("Track.ratio:")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")])
def test_nan_and_infinite_decimals_are_errors(value: Decimal) -> None:
    with pytest.raises(EncodingError) as info:
        encode(value, "amount")
    assert info.value.value_type == "Decimal"


def test_a_finite_decimal_beyond_float_range_is_an_error_not_infinity() -> None:
    with pytest.raises(EncodingError, match="too large") as info:
        encode(Decimal("1e400"), "amount")
    assert info.value.field == "amount"


def test_errors_name_the_path_in_a_list() -> None:
    with pytest.raises(EncodingError) as info:
        encode([1.0, 2.0, float("nan")], "tags")
    assert info.value.field == "tags[2]"
    assert "tags[2]" in str(info.value)


def test_errors_name_the_path_in_a_mapping() -> None:
    with pytest.raises(EncodingError) as info:
        encode({"x": float("inf")}, "meta")
    assert info.value.field == "meta.x"


def test_errors_name_the_path_deep_inside_nested_containers() -> None:
    with pytest.raises(EncodingError) as info:
        encode({"a": [{"b": object()}]}, "meta", "MyTrack")
    assert info.value.field == "meta.a[0].b"
    assert info.value.value_type == "object"
    assert "MyTrack.meta.a[0].b" in str(info.value)
    assert "no encoding rule" in str(info.value)


def test_errors_name_the_path_inside_a_dataclass() -> None:
    with pytest.raises(EncodingError) as info:
        encode(Point(1, object()), "point")  # type: ignore[arg-type]
    assert info.value.field == "point.y"


@pytest.mark.parametrize("key", [1, None, (1, 2), Level.HIGH])
def test_a_non_str_mapping_key_is_an_error(key: object) -> None:
    with pytest.raises(EncodingError, match="keys must be str") as info:
        encode({key: 1}, "meta")
    assert info.value.field.startswith("meta[")


def test_an_unknown_type_is_an_error() -> None:
    class Opaque:
        pass

    with pytest.raises(EncodingError, match="Opaque") as info:
        encode(Opaque(), "thing")
    assert info.value.value_type == "Opaque"
    assert isinstance(info.value, PropertyError)


def test_encoded_size_is_json_dumps_in_utf8_bytes() -> None:
    message = {"a": "é", "b": [1, 2]}
    assert encoded_size(message) == len(json.dumps(message).encode("utf-8"))


def test_largest_fields_are_biggest_first() -> None:
    assert largest_fields({"a": "x" * 10, "b": "y" * 100, "c": 1, "d": "z" * 50}, top=2) == [("b", 102), ("d", 52)]


# -- property: the JSON round trip -----------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    # Away from year 1 and 9999: an aware datetime there can leave datetime's range once converted to
    # UTC, an EncodingError tested on its own (these strategies are for values that encode).
    st.datetimes(
        min_value=dt.datetime(2, 1, 1),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.one_of(st.none(), st.timezones()),
    ),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12),
    st.binary(max_size=20),
    st.sampled_from(list(Color) + list(Level) + list(Key)),
)
hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.uuids(), st.dates())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
        st.frozensets(hashable, max_size=5),
        st.builds(Pair, st.integers(), st.text(max_size=5)),
    ),
    max_leaves=20,
)


@given(values)
def test_encoded_values_survive_a_json_round_trip_unchanged(value: object) -> None:
    encoded = encode(value, "v")
    assert json.loads(json.dumps(encoded, allow_nan=False)) == encoded


@given(values)
def test_encoding_is_deterministic(value: object) -> None:
    first = encode(value, "v")
    second = encode(value, "v")
    assert json.dumps(first) == json.dumps(second)


@given(st.frozensets(hashable, max_size=8))
def test_a_set_encodes_the_same_whatever_its_iteration_order(value: frozenset[object]) -> None:
    shuffled = frozenset(reversed(list(value)))
    assert json.dumps(encode(value, "v")) == json.dumps(encode(shuffled, "v"))
    assert json.dumps(encode(set(value), "v")) == json.dumps(encode(value, "v"))


# -- encode once: dumps ---------------------------------------------------------------------------------


@given(values)
def test_dumps_writes_the_same_json_value_as_the_standard_library(value: object) -> None:
    message = {"type": "track", "properties": {"v": encode(value, "v")}}
    assert json.loads(dumps(message)) == json.loads(json.dumps(message))


@given(values)
def test_dumps_is_never_longer_than_segments_measure(value: object) -> None:
    # The 32 KB check measures json.dumps; the bytes sent are never more than that.
    message = {"properties": {"v": encode(value, "v")}}
    assert len(dumps(message)) <= encoded_size(message)


@pytest.mark.parametrize("value", [2**70, -(2**80), "lone \udc80 surrogate", ["a", {"b": 2**64}]])
def test_dumps_falls_back_for_what_orjson_refuses_and_stays_valid_ascii_json(value: object) -> None:
    data = dumps({"v": value})
    data.decode("ascii")  # escaped: valid JSON text whatever the content
    assert json.loads(data) == {"v": value}


def test_dumps_refuses_a_message_the_encoder_did_not_make_with_an_encoding_error() -> None:
    with pytest.raises(EncodingError) as info:
        dumps({"event": "A B", "v": object()})
    assert info.value.track == "A B"


def _datetime_text(epoch: float) -> str:
    return (
        dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    )


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_format_timestamp_matches_datetime_fromtimestamp(epoch: float) -> None:
    assert format_timestamp(epoch) == _datetime_text(epoch)


@settings(max_examples=300)
@given(
    base=st.floats(min_value=-2_000_000_000, max_value=4_102_444_800, allow_nan=False),
    steps=st.lists(
        st.tuples(st.integers(min_value=-3_000, max_value=3_000), st.integers(min_value=-4, max_value=4)),
        min_size=1,
        max_size=30,
    ),
)
def test_a_timestamp_near_the_last_one_formatted_is_its_own_millisecond(
    base: float, steps: list[tuple[int, int]]
) -> None:
    # The last millisecond's text is reused for values inside it: values a few microseconds and a few
    # float steps around millisecond edges, after one another, must each get their own text.
    for step, ulp in steps:
        epoch = base + step * 1e-6
        for _ in range(abs(ulp)):
            epoch = math.nextafter(epoch, math.copysign(math.inf, ulp))
        assert format_timestamp(epoch) == _datetime_text(epoch)


def test_message_ids_are_distinct_version_4_uuids() -> None:
    ids = [message_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_forked_child_draws_message_ids_of_its_own() -> None:
    import os

    message_id()  # the pool this thread uses now exists in both processes after the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, message_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != message_id()


# -- errors name path, type and size; never the value -----------------------------------------------------


class Secretive:
    """No encoding rule applies; its repr is personal data."""

    def __repr__(self) -> str:
        return "secret@example.com"


@pytest.mark.parametrize(
    "value",
    [
        ["secret@example.com", float("nan")],
        {"email": Secretive()},
        {("secret@example.com", 1): 1},
        [Decimal("1e400")],
    ],
    ids=["nan-after-a-secret", "unknown-type", "tuple-key", "huge-decimal"],
)
def test_error_texts_never_show_the_value(value: object) -> None:
    with pytest.raises(EncodingError) as info:
        encode(value, "v", "T")
    assert "secret@example.com" not in str(info.value)
    assert "1e400" not in str(info.value).lower()
    assert "secret@example.com" not in info.value.field


def test_an_unencodable_value_is_named_by_path_type_and_size() -> None:
    with pytest.raises(EncodingError) as info:
        encode({"tags": {("a", "b"): 1}}, "meta", "T")
    assert str(info.value) == "T.meta.tags[<tuple key>]: cannot encode tuple value (2 items): mapping keys must be str"


@pytest.mark.parametrize("shape", ["deep", "cyclic-list", "cyclic-dict"])
def test_a_deep_or_cyclic_value_is_an_encoding_error_with_path_and_depth(shape: str) -> None:
    value: Any
    if shape == "deep":
        value = []
        for _ in range(10_000):
            value = [value]
    elif shape == "cyclic-list":
        value = []
        value.append(value)
    else:
        value = {}
        value["me"] = value
    with pytest.raises(EncodingError) as info:
        encode(value, "v", "T")
    step = "[0]" if shape != "cyclic-dict" else ".me"
    assert info.value.field == "v" + step * MAX_DEPTH
    assert f"deeper than {MAX_DEPTH} levels" in str(info.value)


def test_nesting_up_to_the_limit_encodes() -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    assert json.loads(dumps({"v": encode(value, "v")}))["v"] == value


def test_encode_mapping_refuses_a_non_mapping_and_encodes_a_mapping() -> None:
    assert encode_mapping({"a": dt.date(2024, 1, 2)}, "") == {"a": "2024-01-02"}
    with pytest.raises(EncodingError, match="expected a mapping"):
        encode_mapping([1, 2], "", "T")  # type: ignore[arg-type]


def test_a_mapping_key_that_is_not_a_python_name_is_named_by_its_size_in_the_path() -> None:
    # Keys are often data (an email keying a dict): the error path shows the key's size, never its text.
    with pytest.raises(EncodingError) as info:
        encode({"ok": {"alice@example.com": float("nan")}}, "meta", "Tr")
    assert "alice" not in str(info.value)
    assert info.value.field == "meta.ok.<str key, 17 chars>"


def test_a_mapping_key_that_is_a_python_name_is_shown_in_the_path() -> None:
    with pytest.raises(EncodingError) as info:
        encode({"created": float("inf")}, "meta", "Tr")
    assert info.value.field == "meta.created"


def test_threads_drawing_message_ids_at_once_never_share_one() -> None:
    # The pool is one list shared by threads (list.pop is atomic): no id may be handed out twice.
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(message_id() for _ in range(5_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [i for into in drawn for i in into]
    assert len(ids) == 20_000 == len(set(ids))
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


@pytest.mark.parametrize("edge", [999.4e-6, 999.6e-6, 999.8e-6, 1000.3e-6, -0.3e-6, 0.4e-6])
def test_a_timestamp_rounding_into_the_next_millisecond_is_not_given_the_last_ones_text(edge: float) -> None:
    # Microsecond rounding carries a value within half a microsecond of a millisecond's end into the next
    # one: right after a value inside the millisecond, it must still get its own text.
    for second in (1_700_000_000.0, 1_700_000_000.123, 0.0, 4_102_444_799.5):
        format_timestamp(second + 500e-6)
        assert format_timestamp(second + edge) == _datetime_text(second + edge)
