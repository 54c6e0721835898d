"""The documentation site builds with warnings as errors, and its API reference covers the public names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import instrument
import instrument.destinations
import instrument.plan
import instrument.testing

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    return out


@pytest.mark.parametrize(
    ("module", "page"),
    [
        (instrument, "reference"),
        (instrument.testing, "reference/testing"),
        (instrument.plan, "reference/plan"),
        (instrument.destinations, "reference/destinations"),
    ],
    ids=["instrument", "instrument.testing", "instrument.plan", "instrument.destinations"],
)
def test_every_public_name_has_a_rendered_reference_entry(site: Path, module: object, page: str) -> None:
    html = (site / page / "index.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([\w.]+)"', html))
    prefix = module.__name__  # type: ignore[attr-defined]
    missing = [name for name in module.__all__ if f"{prefix}.{name}" not in anchors]  # type: ignore[attr-defined]
    assert missing == []


def test_the_collector_page_screenshot_is_in_the_site(site: Path) -> None:
    assert (site / "images" / "collector.png").stat().st_size > 10_000
    assert "images/collector.png" in (site / "plan" / "index.html").read_text(encoding="utf-8")
