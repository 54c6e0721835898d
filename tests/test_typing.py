"""Static typing: mypy --strict accepts correct use and reports the wrong lines (ParamSpec keeps signatures).

One real mypy run in a subprocess on a sample module; each wrong line carries ``# E: <code>``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """\
from __future__ import annotations

import asyncio

from instrument import ClusterTrack, EventName, Identify, analytics_scope, field, identify, track, tracks


class Events(EventName):
    CLUSTER_CREATED = "Cluster Created"


class ClusterCreated(ClusterTrack, event=Events.CLUSTER_CREATED):
    infra_id: int
    region: str = "us"
    tags: list[str] = field(default_factory=list)


class Traits(Identify):
    email: str


@tracks(ClusterCreated)
def create(infra_id: int, region: str = "us") -> str:
    return region


@tracks(Events.CLUSTER_CREATED, scope="cluster", props=lambda call: {"n": call.result})
async def acreate(infra_id: int) -> int:
    await asyncio.sleep(0)
    return infra_id


class Service:
    @tracks(ClusterCreated)
    def create(self, infra_id: int) -> str:
        return str(infra_id)


with analytics_scope(user_id=1, project_id=2, cluster_id=3):
    result: str = create(1, region="eu")
    ok = ClusterCreated(infra_id=1, cluster_id=9)
    ok2 = ClusterCreated(infra_id=1, region="eu", tags=["a"], project_id="p")
    track(ok)
    identify(Traits(email="a@b", user_id=1))
    n: int = asyncio.run(acreate(1))
    m: str = Service().create(3)
    bad_result: int = create(1)  # E: assignment
    create("1")  # E: arg-type
    create(1, 2)  # E: arg-type
    create(1, colour="x")  # E: call-arg
    Service().create("3")  # E: arg-type
    unknown = ClusterCreated(infra_id=1, colour="red")  # E: call-arg
    wrong = ClusterCreated(infra_id="1")  # E: arg-type
    missing = ClusterCreated()  # E: call-arg
    bad_tags = ClusterCreated(infra_id=1, tags=[1])  # E: list-item
    s: str = asyncio.run(acreate(1))  # E: assignment
    track(Traits(email="x"))  # E: arg-type
"""


def _expected(source: str) -> set[tuple[int, str]]:
    found = set()
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"# E: ([a-z-]+)$", line)
        if match:
            found.add((number, match.group(1)))
    return found


@pytest.mark.timeout(300)
def test_mypy_strict_accepts_good_lines_and_reports_exactly_the_wrong_ones(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT), "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--show-error-codes",
            "--no-color-output",
            "--no-error-summary",
            str(sample),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    output = completed.stdout + completed.stderr
    reported = set()
    for line in completed.stdout.splitlines():
        match = re.match(r".*sample\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        if match:
            reported.add((int(match.group(1)), match.group(2)))
        else:
            assert ": note:" in line, output  # nothing but errors on sample.py and their notes
    assert completed.returncode == 1, output
    assert reported == _expected(SAMPLE), output
