"""The pytest plugin of instrument, loaded through the ``pytest11`` entry point (no conftest needed).

- ``analytics_events``: a fixture capturing every analytics event of the test in memory
  (``instrument.testing.CapturedEvents``), in strict mode; nothing leaves the process, and the
  previous client, strict mode and bound scope are restored after the test.
- ``@pytest.mark.analytics_lenient``: capture without strict mode; violations are dropped as in
  production and listed in ``analytics_events.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instrument.testing import AnalyticsAssertionError, CapturedEvents, capture_events

LENIENT_MARKER = "analytics_lenient"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``analytics_lenient`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{LENIENT_MARKER}: capture analytics events without strict mode: violations (missing scope field, bad "
        "property, encoding error) are dropped as in production and listed in analytics_events.errors "
        "instead of raising.",
    )


@pytest.fixture
def analytics_events(request: pytest.FixtureRequest) -> Iterator[CapturedEvents]:
    """Capture the analytics events of this test, in memory and in strict mode (see ``capture_events``).

    Mark the test ``@pytest.mark.analytics_lenient`` to turn strict mode off for it.
    """
    lenient = request.node.get_closest_marker(LENIENT_MARKER) is not None
    failure: AnalyticsAssertionError | None = None
    try:
        with capture_events(strict=not lenient) as events:
            yield events
    except AnalyticsAssertionError as error:
        failure = error
    if failure is not None:
        # Violations reported (not raised) during the test: say so once, without the kit's traceback
        # (failing outside the except block, so no "During handling of the above exception" chain).
        pytest.fail(str(failure), pytrace=False)
