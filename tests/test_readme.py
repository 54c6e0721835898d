"""The README's first Python snippet does what its comment says when run as is, with no key set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_python_snippet() -> str:
    match = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert match is not None, "README.md has no python snippet"
    return match.group(1)


def test_the_first_snippet_prints_what_its_comment_shows(tmp_path: Path) -> None:
    snippet = _first_python_snippet()
    expected = [line.removeprefix("# -> ") for line in snippet.splitlines() if line.startswith("# -> ")]
    assert expected, "the snippet shows no output (# -> ...)"
    (tmp_path / "snippet.py").write_text(snippet)
    env = {k: v for k, v in os.environ.items() if k not in ("SEGMENT_WRITE_KEY", "SEGMENT_CLIENT_KEY")}
    env.pop("INSTRUMENT_STRICT", None)
    run = subprocess.run(
        [sys.executable, "snippet.py"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected
    assert run.stderr == ""  # no warning either: it works as shown


def test_the_readme_points_only_inside_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    assert "../" not in text
    for path in re.findall(r"`((?:docs|bench|examples)/[\w./-]+\.md)`", text):
        assert (ROOT / path).exists(), path
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links, "the README links into the docs"
    for link in links:
        assert "://" not in link, link  # inside the repository only
        assert (ROOT / link.split("#")[0]).exists(), link


def test_the_readme_fits_one_screen_and_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 90
    commands = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    assert commands[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m examples.porter",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest",
    ]
    assert (ROOT / "docs" / "architecture.md").exists()
