"""Property values survive the whole trip: encoder, worker, Segment transport, HTTP, endpoint.

One endpoint and one client serve every example (module scope) so each example costs one flush.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instrument import AnalyticsError, Client, EncodingError, EventName, SegmentTransport, Track
from instrument._encoding import encode
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(120)

WRITE_KEY = "wk-roundtrip"


class Events(EventName):
    SAMPLE_SENT = "Sample Sent"


class Sample(Track, event=Events.SAMPLE_SENT):
    k: int
    value: Any


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Pipeline:
    def __init__(self, endpoint: SegmentEndpoint) -> None:
        self.endpoint = endpoint
        self.errors: list[AnalyticsError] = []
        transport = SegmentTransport(WRITE_KEY, host=endpoint.url, timeout=2.0, flush_interval=0.05)
        self.client = Client(transport, flush_interval=0.05, on_error=self.errors.append)
        self._keys = itertools.count()
        self._seen = 0
        self._by_key: dict[int, dict[str, Any]] = {}

    def send(self, value: Any) -> int:
        key = next(self._keys)
        assert self.client.track(Sample(k=key, value=value, user_id="u1")).ok
        return key

    def received(self) -> dict[int, dict[str, Any]]:
        messages = self.endpoint.messages
        for message in messages[self._seen :]:
            self._by_key[message["properties"]["k"]] = message
        self._seen = len(messages)
        return self._by_key


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    with SegmentEndpoint() as endpoint:
        pipe = Pipeline(endpoint)
        try:
            yield pipe
        finally:
            pipe.client.shutdown(2.0)


utc_offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.none() | utc_offsets
    ),
    st.dates(),
    st.uuids(),
    st.sampled_from(Color),
    st.sampled_from(Level),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30),
    st.timedeltas(),
    st.times(),
    st.binary(max_size=16),
    st.frozensets(st.integers(), max_size=4),
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


rejected = st.one_of(
    st.just(float("nan")),
    st.just(float("-inf")),
    st.just(Decimal("NaN")),
    st.builds(Opaque),
    st.builds(lambda v: [v, float("nan")], trees),
    st.builds(lambda v: {"ok": v, "bad": Opaque()}, trees),
    st.just({1: "a non-str key"}),
)


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(encode(value, "value")))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=trees)
def test_accepted_values_arrive_equal_to_their_encoding(pipeline: Pipeline, value: Any) -> None:
    key = pipeline.send(value)

    assert pipeline.client.flush(5.0)
    message = pipeline.received()[key]
    assert message["properties"]["value"] == as_json(value)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(st.booleans(), trees, rejected), min_size=1, max_size=8))
def test_rejected_values_are_reported_clearly_and_every_other_event_arrives(
    pipeline: Pipeline, values: list[tuple[bool, Any, Any]]
) -> None:
    pipeline.errors.clear()
    good: dict[int, Any] = {}
    bad: list[int] = []
    for is_good, accepted, refused in values:
        if is_good:
            good[pipeline.send(accepted)] = accepted
        else:
            bad.append(pipeline.send(refused))

    assert pipeline.client.flush(5.0)
    received = pipeline.received()
    for key, value in good.items():
        assert received[key]["properties"]["value"] == as_json(value)
    assert not any(key in received for key in bad)
    assert len(pipeline.errors) == len(bad)
    for error in pipeline.errors:
        assert isinstance(error, EncodingError)
        assert error.track == "Sample"
        assert error.field.startswith("value")
        assert str(error).startswith(f"Sample.{error.field}: cannot encode ")


def test_a_finite_decimal_too_large_for_a_float_is_rejected_not_sent_as_infinity(pipeline: Pipeline) -> None:
    pipeline.errors.clear()
    big = Decimal("1e400")
    key = pipeline.send(big)
    ok_key = pipeline.send(1)

    assert pipeline.client.flush(5.0)
    received = pipeline.received()
    assert ok_key in received
    sent = received.get(key)
    # Sent as a float it would be Infinity: not JSON (a strict endpoint refuses the whole batch).
    assert sent is None or math.isfinite(sent["properties"]["value"])


def test_an_aware_datetime_out_of_range_in_utc_is_an_encoding_error_naming_the_field(pipeline: Pipeline) -> None:
    pipeline.errors.clear()
    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # UTC form is in year 0
    key = pipeline.send({"at": early})

    assert pipeline.client.flush(5.0)
    assert key not in pipeline.received()
    [error] = pipeline.errors
    assert isinstance(error, EncodingError)
    assert error.field == "value.at"
