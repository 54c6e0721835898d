"""The pytest plugin of instrument, loaded through the ``pytest11`` entry point (no conftest needed).

- ``analytics_events``: a fixture capturing every analytics event of the test in memory
  (``instrument.testing.CapturedEvents``), in strict mode; nothing leaves the process, and the
  previous client, strict mode and bound scope are restored after the test.
- ``@pytest.mark.analytics_lenient``: capture without strict mode; violations are dropped as in
  production and listed in ``analytics_events.errors``.
- ``--analytics-record=PATH`` (or ``INSTRUMENT_RECORD_EVENTS=PATH``): write what the suite emitted
  through ``analytics_events`` to PATH, one JSON line per message (``{"event", "test", "type"}``),
  for ``instrument plan coverage --events PATH``. The file is started afresh by each run; with
  pytest-xdist every worker appends to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from instrument.testing import AnalyticsAssertionError, CapturedEvents, capture_events

LENIENT_MARKER = "analytics_lenient"
RECORD_OPTION = "--analytics-record"
RECORD_ENV = "INSTRUMENT_RECORD_EVENTS"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--analytics-record=PATH``."""
    parser.getgroup("instrument").addoption(
        RECORD_OPTION,
        dest="analytics_record",
        metavar="PATH",
        default=None,
        help=f"write every analytics message the tests emitted to PATH (JSON lines; also {RECORD_ENV}), "
        "for `instrument plan coverage --events PATH`",
    )


def _record_path(config: pytest.Config) -> Path | None:
    value = config.getoption("analytics_record", None) or os.environ.get(RECORD_ENV)
    return Path(value) if value else None


def _record(path: Path, messages: Sequence[Any], test: str) -> None:
    lines = "".join(
        json.dumps({"event": m.get("event") or "", "test": test, "type": m.get("type")}, sort_keys=True) + "\n"
        for m in messages
    )
    if lines:
        # One append per test: lines of parallel workers never interleave within a line.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``analytics_lenient`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{LENIENT_MARKER}: capture analytics events without strict mode: violations (missing scope field, bad "
        "property, encoding error) are dropped as in production and listed in analytics_events.errors "
        "instead of raising.",
    )
    path = _record_path(config)
    if path is not None and not hasattr(config, "workerinput"):  # the controller, not an xdist worker
        path.write_text("", encoding="utf-8")


@pytest.fixture
def analytics_events(request: pytest.FixtureRequest) -> Iterator[CapturedEvents]:
    """Capture the analytics events of this test, in memory and in strict mode (see ``capture_events``).

    Mark the test ``@pytest.mark.analytics_lenient`` to turn strict mode off for it.
    """
    lenient = request.node.get_closest_marker(LENIENT_MARKER) is not None
    failure: AnalyticsAssertionError | None = None
    record = _record_path(request.config)
    capture = capture_events(strict=not lenient)
    try:
        with capture as events:
            try:
                yield events
            finally:
                if record is not None:
                    _record(record, events.messages, request.node.nodeid)
    except AnalyticsAssertionError as error:
        failure = error
    if failure is not None:
        # Violations reported (not raised) during the test: say so once, without the kit's traceback
        # (failing outside the except block, so no "During handling of the above exception" chain).
        pytest.fail(str(failure), pytrace=False)
