"""``Retry-After`` (RFC 9110, section 10.2.3): delta-seconds or an HTTP-date, as a bounded delay.

Replaces segment-analytics-python's parser (the one thing, with its version string, the runtime
dependency was kept for). The same reading, stricter where that one was loose: delta-seconds are
ASCII digits only (``int()`` also took ``-5``, ``+5``, ``1_0`` and non-ASCII digits), a date in the
past means "now" (0.0) instead of "no header", and nothing logs the header's text.
"""

from __future__ import annotations

import math
import time
from datetime import timezone
from email.utils import parsedate_to_datetime

#: The longest delay a Retry-After can impose, in seconds (segment-analytics-python caps it at 300 too).
MAX_RETRY_AFTER = 300.0

#: Longer values are neither a number of seconds nor an HTTP-date (``Sun, 06 Nov 1994 08:49:37 GMT`` is 29).
_MAX_LENGTH = 64
_MAX_DIGITS = 10  # more digits than that are past any bound anyway (and int() has a digit limit)


def parse_retry_after(value: str | None, *, now: float | None = None, maximum: float = MAX_RETRY_AFTER) -> float | None:
    """The delay a ``Retry-After`` header value asks for, in seconds within ``[0, maximum]``.

    ``value`` is the header's text (None when absent); ``now`` (a ``time.time()``, for tests) is when
    an HTTP-date is measured from. Returns None for an absent, empty or malformed value: garbage never
    raises and never waits. Raises nothing.
    """
    if not isinstance(value, str):
        return None
    text = value.strip(" \t")
    if not text or len(text) > _MAX_LENGTH:
        return None
    if text.isascii() and text.isdigit():
        return maximum if len(text) > _MAX_DIGITS else float(min(int(text), maximum))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" (RFC 5322: UTC, zone unknown): never the host's local zone
        when = when.replace(tzinfo=timezone.utc)
    try:
        delay = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, ValueError, OSError):
        return None
    if not math.isfinite(delay):
        return None
    return min(max(delay, 0.0), maximum)
