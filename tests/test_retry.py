"""``parse_retry_after``: delta-seconds and HTTP-dates as a bounded delay; anything else is None, never raised."""

from __future__ import annotations

import email.utils
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instrument.transports._retry import MAX_RETRY_AFTER, parse_retry_after

NOW = 1_750_000_000.0  # a fixed "now" for HTTP-dates


@given(st.text())
def test_any_text_is_a_bounded_delay_or_none_never_an_exception(value: str) -> None:
    delay = parse_retry_after(value, now=NOW)
    assert delay is None or (math.isfinite(delay) and 0 <= delay <= MAX_RETRY_AFTER)


@given(st.integers(min_value=0, max_value=10**30), st.sampled_from(["", " ", "\t"]))
def test_delta_seconds_are_read_and_capped(seconds: int, padding: str) -> None:
    assert parse_retry_after(f"{padding}{seconds}{padding}") == min(seconds, MAX_RETRY_AFTER)


@given(st.integers(min_value=-(10**6), max_value=10**6).map(timedelta).map(lambda d: d / 1000))
def test_an_http_date_is_the_time_until_it_bounded(offset: timedelta) -> None:
    offset = timedelta(seconds=round(offset.total_seconds()))  # HTTP-dates have whole seconds
    when = datetime.fromtimestamp(NOW, tz=timezone.utc) + offset
    for text in (email.utils.format_datetime(when, usegmt=True), when.strftime("%a, %d %b %Y %H:%M:%S -0000")):
        assert parse_retry_after(text, now=NOW) == min(max(offset.total_seconds(), 0.0), MAX_RETRY_AFTER)


@pytest.mark.parametrize(
    "value",
    [None, "", "  ", "-5", "+5", "1_0", "1.5", "1e3", "\u0665", "soon", "Mon, 99 Foo 2025 99:99:99 GMT", "9" * 200],
)
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_the_bound_can_be_given() -> None:
    assert parse_retry_after("120", maximum=60.0) == 60.0
    assert parse_retry_after("0") == 0.0


class _Response:
    def __init__(self, value: str) -> None:
        self.headers = {"Retry-After": value}


@given(st.integers(min_value=0, max_value=10**9))
def test_delta_seconds_read_as_the_official_client_reads_them(seconds: int) -> None:
    from segment.analytics.request import parse_retry_after as official  # the wire reference (test extra)

    assert parse_retry_after(str(seconds)) == official(_Response(str(seconds)))
