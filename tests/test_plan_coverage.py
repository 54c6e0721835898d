"""`instrument plan coverage`: planned events never seen, from a test run's record and a collector's store."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path

import pytest
import requests
from run_instrument import run_instrument

from instrument.plan import Collector, plan_of_module

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(180)

PORTER = "examples.porter.analytics"
PLAN_FILE = Path(__file__).resolve().parent.parent / "examples/porter/plan.json"
AUTH = "Basic " + base64.b64encode(b"wk-coverage:").decode()


def _track(event: str) -> dict[str, object]:
    return {"type": "track", "event": event, "userId": "42", "properties": {}}


def test_a_collector_store_shows_the_planned_events_never_seen(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    sent = ["Cluster Deleted", "New User", "Not In The Plan"]
    with Collector(plan=plan_of_module(PORTER), db=str(db)) as running:
        batch = {"batch": [*map(_track, sent), {"type": "identify", "userId": "42", "traits": {}}]}
        response = requests.post(
            running.url + "/v1/batch",
            data=json.dumps(batch),
            headers={"Content-Type": "application/json", "Authorization": AUTH},
            timeout=30,
        )
        assert response.status_code == 200
    done = run_instrument("plan", "coverage", PORTER, "--db", str(db), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["planned"] == 49
    assert report["seen"] == 3  # two planned tracks and the identify
    assert "Cluster Deleted" not in report["unseen"]
    assert "New User" not in report["unseen"]
    assert "identify UserTraits" not in report["unseen"]
    assert "Cluster Provisioning Success" in report["unseen"]
    assert "group ProjectMembership" in report["unseen"]  # no group call was sent
    assert len(report["unseen"]) == 46
    assert report["unplanned"] == []  # the store is asked about planned events only


CATALOG = '''
from instrument import EventName, Track


class Events(EventName):
    REPORT_SAVED = "Report Saved"
    REPORT_SHARED = "Report Shared"
    REPORT_DELETED = "Report Deleted"


class ReportSaved(Track, event=Events.REPORT_SAVED):
    """A report was saved."""

    pages: int
'''

TESTS = """
from instrument import analytics_scope, track, tracks
from covcatalog import Events, ReportSaved


@tracks(Events.REPORT_SHARED)
def share() -> None:
    pass


@tracks("Report Printed")
def print_report() -> None:
    pass


def test_save(analytics_events):
    with analytics_scope(user_id=1):
        track(ReportSaved(pages=3))
        share()


def test_unplanned(analytics_events):
    with analytics_scope(user_id=1):
        print_report()


def test_nothing():
    pass
"""


def test_a_test_run_record_shows_the_planned_events_the_suite_never_emitted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(covcatalog=textwrap.dedent(CATALOG), test_cov=textwrap.dedent(TESTS))
    record = pytester.path / "record.jsonl"
    # No Hypothesis plugin: it imports all of Hypothesis (about 1 s) for a project without properties.
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:hypothesispytest", f"--analytics-record={record}", timeout=100
    )
    result.assert_outcomes(passed=3)
    done = run_instrument("plan", "coverage", "covcatalog", "--events", str(record), cwd=pytester.path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "2 of 3 planned events seen",
        "never seen (1):",
        "  Report Deleted",
        "seen but not planned (1):",
        "  Report Printed",
    ]


def test_full_coverage_exits_0(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    lines = [{"type": "track", "event": r.key, "test": "t"} for r in plan_of_module(PORTER).rules if r.type == "TRACK"]
    lines.append({"type": "identify", "event": "", "test": "t"})
    lines.append({"type": "group", "event": "", "test": "t"})
    record.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = run_instrument("plan", "coverage", PORTER, "--events", str(record))
    assert (done.returncode, done.stdout) == (0, "49 of 49 planned events seen\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "needs --events RECORD"),
        (("--events", "missing.jsonl"), "missing.jsonl: cannot read"),
        (("--db", "missing.db"), "missing.db: no such collector store"),
        (("--events", "bad.jsonl"), "bad.jsonl:2: not a JSON line"),
    ],
)
def test_bad_sources_are_exit_2_naming_them(tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"type": "track", "event": "New User"}\n{oops\n')
    done = run_instrument("plan", "coverage", str(PLAN_FILE), *argv, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
