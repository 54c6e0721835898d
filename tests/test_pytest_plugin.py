"""Tests of the pytest plugin: the analytics_events fixture and the analytics_lenient marker.

The pytester runs start a fresh pytest process with no conftest, so the plugin can only come from
the ``pytest11`` entry point of the installed package.
"""

from __future__ import annotations

import json
import math
import textwrap

import pytest

import instrument
from instrument import EncodingError, EventName, ScopeError, Track, analytics_scope
from instrument.testing import CapturedEvents

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(120)

# Hypothesis's plugin imports all of Hypothesis (about 1 s of each child's start); these projects have no
# property tests, and the instrument plugin still comes from its entry point beside the others.
ISOLATED = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")

# The catalog the generated test modules share (imported by each of them from this helper module).
CATALOG = """
from __future__ import annotations

from instrument import EventName, Track


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"
    REPORT_SAVED = "Report Saved"


class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    infra_id: int
    cluster_type: str


class ReportSaved(Track, event=Events.REPORT_SAVED):
    values: list[float]
"""


def make_project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(catalog=CATALOG, test_app=textwrap.dedent(tests))
    assert not (pytester.path / "conftest.py").exists()


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*ISOLATED, *args, timeout=100)


def test_fixture_works_from_the_entry_point_with_no_conftest(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import instrument
        from instrument import analytics_scope
        from instrument.testing import CapturedEvents
        from catalog import ClusterProvisioningSuccess


        def test_emits(analytics_events: CapturedEvents) -> None:
            with analytics_scope(user_id=1, project_id=2, cluster_id=3):
                instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))
            [event] = analytics_events.assert_tracked(ClusterProvisioningSuccess, infra_id=4, project_id=2)
            assert event.user_id == "1"
            assert len(analytics_events) == 1
        """,
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=1)


def test_failing_assertion_prints_the_field_diff(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import instrument
        from instrument import analytics_scope
        from catalog import ClusterProvisioningSuccess


        def test_wrong_infra(analytics_events):
            with analytics_scope(user_id=1, project_id=2, cluster_id=3):
                instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))
            analytics_events.assert_tracked(ClusterProvisioningSuccess, infra_id=5, cluster_type="eks", region="eu")
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AnalyticsAssertionError: expected a track of 'Cluster Provisioning Success' with infra_id=5, "
            "cluster_type='eks', region='eu'; 1 track(s) of 'Cluster Provisioning Success' captured, none matches.",
            "*Closest captured (1 of 1, best first):",
            "*[[]0[]] track 'Cluster Provisioning Success' userId='1' properties=*",
            "*1 of 3 expected field(s) match",
            "*Differing items:",
            "*infra_id: expected 5, got 4",
            "*Missing keys (not in the properties):",
            "*region: expected 'eu'",
        ]
    )
    # The kit's own frames are hidden: the failure points at the test's line.
    result.stdout.no_fnmatch_line("*def assert_tracked(*")


def test_fixture_is_strict_so_violations_fail_the_test(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import math

        import instrument
        from instrument import analytics_scope
        from catalog import ClusterProvisioningSuccess, ReportSaved


        def test_missing_scope_field(analytics_events):
            with analytics_scope(user_id=1, project_id=2):
                instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))


        def test_nan(analytics_events):
            with analytics_scope(user_id=1):
                instrument.track(ReportSaved(values=[1.0, math.nan]))
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*ScopeError*cluster_id*", "*EncodingError*values[[]1[]]*"], consecutive=False)


def test_lenient_marker_drops_violations_into_errors(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import math

        import pytest

        import instrument
        from instrument import ScopeError, EncodingError, analytics_scope
        from catalog import ClusterProvisioningSuccess, ReportSaved


        @pytest.mark.analytics_lenient
        def test_lenient(analytics_events):
            assert instrument.get_client().strict is False
            result = instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))
            assert not result.ok
            with analytics_scope(user_id=1):
                instrument.track(ReportSaved(values=[math.nan]))
            assert [type(e) for e in analytics_events.errors] == [ScopeError, EncodingError]
            analytics_events.assert_nothing_tracked()


        def test_strict_again(analytics_events):
            assert instrument.get_client().strict is True
        """,
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=2)


def test_marker_is_registered_with_a_description(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.analytics_lenient: capture analytics events without strict mode*"])


def test_each_test_starts_from_the_state_before_the_fixture(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import pytest

        import instrument
        from instrument import bind_scope, current_scope
        from catalog import ClusterProvisioningSuccess

        ORIGINAL = instrument.get_client()


        @pytest.mark.parametrize("n", range(6))
        def test_leaky(analytics_events, n):
            assert instrument.get_client() is not ORIGINAL
            assert instrument.get_client().strict is True
            assert dict(current_scope()) == {}
            assert len(analytics_events) == 0
            bind_scope(user_id=n, project_id=n, cluster_id=n)  # never reset
            instrument.track(ClusterProvisioningSuccess(infra_id=n, cluster_type="eks"))
            analytics_events.assert_tracked(ClusterProvisioningSuccess, count=1, infra_id=n, user_id=n)


        @pytest.mark.parametrize("n", range(6))
        def test_without_fixture(n):
            assert instrument.get_client() is ORIGINAL
            assert instrument.get_client().strict is False
            assert dict(current_scope()) == {}
        """,
    )
    run(pytester).assert_outcomes(passed=12)
    # Random order and two xdist workers: still independent.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "randomly", "-p", "xdist", "-n", "2", timeout=100
    )
    result.assert_outcomes(passed=12)


def test_nothing_leaves_the_process_even_with_a_write_key(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import instrument
        from instrument import analytics_scope
        from instrument.testing import SegmentEndpoint
        from catalog import ClusterProvisioningSuccess


        def test_app_configures_itself(analytics_events, monkeypatch):
            monkeypatch.setenv("SEGMENT_WRITE_KEY", "from-env")
            with SegmentEndpoint() as endpoint:
                instrument.configure(host=endpoint.url, flush_interval=0.05)  # the app's start-up code
                with analytics_scope(user_id=1, project_id=2, cluster_id=3):
                    instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))
                assert instrument.flush(5)
                assert endpoint.request_count == 0
            analytics_events.assert_tracked(ClusterProvisioningSuccess, infra_id=4)
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_violation_reported_in_a_failure_path_errors_the_test(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import pytest

        from instrument import analytics_scope, tracks
        from catalog import ClusterProvisioningSuccess, ReportSaved


        @tracks("Report Failed", on_error=ClusterProvisioningSuccess)
        def save():
            raise ValueError("disk full")


        def test_business_error(analytics_events):
            with analytics_scope(user_id=1), pytest.raises(ValueError):
                save()
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_business_error*",
            "1 analytics violation(s) were reported (not raised) while capturing in strict mode*",
            "  PropertyError: ClusterProvisioningSuccess: required property 'infra_id' is missing (int)",
            "*analytics_lenient*",
        ]
    )


def test_async_tests_use_the_fixture(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import asyncio

        import instrument
        from instrument import analytics_scope
        from catalog import ClusterProvisioningSuccess


        async def emit(n):
            async with analytics_scope(user_id=n, project_id=n, cluster_id=n):
                await asyncio.sleep(0)
                instrument.track(ClusterProvisioningSuccess(infra_id=n, cluster_type="eks"))


        async def test_tasks(analytics_events):
            await asyncio.gather(*(emit(n) for n in range(3)))
            assert sorted(e.properties["infra_id"] for e in analytics_events) == [0, 1, 2]
        """,
    )
    run(pytester).assert_outcomes(passed=1)


# -- the fixture in this very process (loaded by the same entry point) ---------------------------------


class Events(EventName):
    PROJECT_ARCHIVED = "Project Archived"


class ProjectArchived(Track, event=Events.PROJECT_ARCHIVED, scope="project"):
    reason: str


def test_fixture_in_process_is_strict_and_captures(analytics_events: CapturedEvents) -> None:
    assert instrument.get_client().strict is True
    assert isinstance(instrument.get_client().dispatcher.transport, instrument.MemoryTransport)
    with analytics_scope(user_id=1, project_id=2):
        instrument.track(ProjectArchived(reason="cleanup"))
    analytics_events.assert_tracked(ProjectArchived, exact=True, reason="cleanup", project_id=2)
    with pytest.raises(ScopeError):
        instrument.track(ProjectArchived(reason="no scope"))


@pytest.mark.analytics_lenient
def test_fixture_in_process_lenient(analytics_events: CapturedEvents) -> None:
    assert instrument.get_client().strict is False
    with analytics_scope(user_id=1, project_id=2):
        result = instrument.track(ProjectArchived(reason=math.nan))  # type: ignore[arg-type]
    assert not result.ok
    assert len(analytics_events.errors) == 1
    assert not isinstance(analytics_events.errors[0], EncodingError)  # a type error, caught before encoding
    analytics_events.assert_nothing_tracked()


def test_a_violation_in_a_thread_the_test_never_joins_fails_the_test_once_at_teardown(
    pytester: pytest.Pytester,
) -> None:
    make_project(
        pytester,
        """
        import threading
        import time

        import instrument
        from instrument import analytics_scope
        from catalog import ClusterProvisioningSuccess


        def emit_without_scope():
            instrument.track(ClusterProvisioningSuccess(infra_id=4, cluster_type="eks"))  # raises: strict


        def test_fire_and_forget(analytics_events):
            worker = threading.Thread(target=emit_without_scope)
            worker.start()
            deadline = time.monotonic() + 30
            while worker.is_alive() and time.monotonic() < deadline:  # wait without joining or asserting on it
                time.sleep(0.01)
        """,
    )
    result = run(pytester, "-W", "error::pytest.PytestUnhandledThreadExceptionWarning")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_fire_and_forget*",
            "1 analytics violation(s) were reported (not raised) while capturing in strict mode*",
            "  ScopeError: *cluster*",
        ]
    )
    text = result.stdout.str()
    # Once in the report; pytest's own one-line summary repeats it (in full when CI is set), which is fine.
    report = text.split("short test summary info")[0]
    assert report.count("analytics violation(s) were reported") == 1
    assert "During handling of the above exception" not in text
    assert "Exception in thread" not in text + result.stderr.str()


def test_instrument_shutdown_in_the_fixture_keeps_capturing(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import instrument
        from instrument import analytics_scope
        from catalog import ClusterProvisioningSuccess


        def test_app_lifespan_shuts_down(analytics_events):
            with analytics_scope(user_id=1, project_id=2, cluster_id=3):
                instrument.track(ClusterProvisioningSuccess(infra_id=1, cluster_type="eks"))
                assert instrument.shutdown() == 0  # e.g. the app's lifespan ending inside the test
                result = instrument.track(ClusterProvisioningSuccess(infra_id=2, cluster_type="eks"))
            assert result.ok, result.error
            analytics_events.assert_tracked(ClusterProvisioningSuccess, infra_id=2)
            assert len(analytics_events) == 2
        """,
    )
    run(pytester).assert_outcomes(passed=1)


RECORDED = """
import pytest

from instrument import analytics_scope, track
from catalog import ClusterProvisioningSuccess, ReportSaved


@pytest.mark.parametrize("n", range(4))
def test_emit(analytics_events, n):
    with analytics_scope(user_id=n, project_id=1, cluster_id=2):
        track(ClusterProvisioningSuccess(infra_id=n, cluster_type="eks"))
        track(ReportSaved(values=[1.0]))


def test_silent(analytics_events):
    pass
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_the_record_option_writes_what_each_test_emitted_afresh_each_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: tuple[str, ...]
) -> None:
    make_project(pytester, RECORDED)
    record = pytester.path / "record.jsonl"
    record.write_text('{"type": "track", "event": "Stale From Last Run", "test": "old"}\n')
    monkeypatch.setenv("INSTRUMENT_RECORD_EVENTS", str(record))
    run(pytester, *workers).assert_outcomes(passed=5)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 8
    assert sorted({(line["type"], line["event"]) for line in lines}) == [
        ("track", "Cluster Provisioning Success"),
        ("track", "Report Saved"),
    ]
    assert {line["test"] for line in lines} == {f"test_app.py::test_emit[{n}]" for n in range(4)}


def test_without_the_option_nothing_is_recorded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, RECORDED)
    monkeypatch.delenv("INSTRUMENT_RECORD_EVENTS", raising=False)
    run(pytester, "--analytics-record=").assert_outcomes(passed=5)
    assert sorted(p.name for p in pytester.path.iterdir() if p.suffix == ".jsonl") == []
