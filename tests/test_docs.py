"""Every Python block of the README and the docs site runs in the suite, and shows what it prints.

A page's blocks run in order, in one namespace, in a fresh interpreter whose working directory is the
page's own temporary directory (as a reader pasting them one after the other would). The first line of
a block says how it is taken:

- ``# file: path/name.py``: written to that path (importable by the later blocks); a ``test_*.py`` file
  is then run with pytest, and must pass.
- ``# not run: reason``: needs what the suite cannot give a snippet (a broker, a production endpoint,
  your own app); it is compiled, and the reason is shown on the page.
- anything else: executed. Lines ``# -> text`` are the output: the page's printed lines must be exactly
  the ``# -> `` lines of its executed blocks, in order (each block is flushed before the next one runs).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"# file: ([\w./-]+\.py)$")
NOT_RUN = re.compile(r"# not run: (\S.*)$")
OUTPUT = "# -> "
UNSET = ("SEGMENT_WRITE_KEY", "SEGMENT_CLIENT_KEY", "INSTRUMENT_STRICT")

# Runs the blocks (JSON on stdin) in one namespace; flushes after each so output keeps block order.
# __main__'s own namespace, so what the blocks define pickles by reference (process pools).
RUNNER = """
import json as _json, sys as _sys
for _name, _source in _json.load(_sys.stdin):
    exec(compile(_source, _name, "exec"), _sys.modules["__main__"].__dict__)
    if "instrument" in _sys.modules:
        _sys.modules["instrument"].flush(timeout=10)
    _sys.stdout.flush()
"""


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    source: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def first(self) -> str:
        return self.source.splitlines()[0] if self.source.strip() else ""

    @property
    def file(self) -> str | None:
        match = FILE.match(self.first)
        return match.group(1) if match else None

    @property
    def not_run(self) -> str | None:
        match = NOT_RUN.match(self.first)
        return match.group(1) if match else None


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    rel = str(page.relative_to(ROOT))
    return [Block(rel, text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
RUN_PAGES = [p for p in PAGES if any(b.not_run is None for b in blocks_of(p))]


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_docs_have_python_blocks_and_most_of_them_run() -> None:
    assert len(ALL_BLOCKS) >= 30
    skipped = [b for b in ALL_BLOCKS if b.not_run is not None]
    assert len(skipped) * 2 < len(ALL_BLOCKS), [b.name for b in skipped]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.name)
def test_every_block_compiles(block: Block) -> None:
    compile(block.source, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


@pytest.mark.parametrize("page", RUN_PAGES, ids=_rel)
def test_the_blocks_of_a_page_run_and_print_what_they_show(page: Path, tmp_path: Path) -> None:
    blocks = [b for b in blocks_of(page) if b.not_run is None]
    tests = []
    for block in blocks:
        if block.file is not None:
            target = tmp_path / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.source, encoding="utf-8")
            if target.name.startswith("test_"):
                tests.append(block.file)
    executed = [b for b in blocks if b.file is None]
    expected = [
        line.removeprefix(OUTPUT) for b in executed for line in b.source.splitlines() if line.startswith(OUTPUT)
    ]
    env = {
        k: v for k, v in os.environ.items() if k not in ("SEGMENT_WRITE_KEY", "SEGMENT_CLIENT_KEY", "INSTRUMENT_STRICT")
    }
    env["PYTHONPATH"] = str(tmp_path)

    def python(*args: str, given: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            input=given,
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )

    if executed:
        run = python("-c", RUNNER, given=json.dumps([[b.name, b.source] for b in executed]))
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == expected, run.stderr
    if tests:
        # No page's tests use Hypothesis, whose plugin imports all of it (about 1 s of the child's start).
        run = python(
            "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *tests
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert " passed" in run.stdout, run.stdout


def test_the_architecture_page_names_every_module_of_the_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "instrument"
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if f"`{rel}`" not in text:
            missing.append(str(rel))
    assert missing == [], f"docs/architecture.md misses these modules: {missing}"


def test_benchmark_figures_in_the_docs_come_from_the_results() -> None:
    """A ratio quoted outside bench/RESULTS.md (``0.08x``, ``4.8-6.7x``) must be one RESULTS.md states."""
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    quoted = {
        figure: page
        for page in PAGES
        for figure in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?x(?!\w)", page.read_text(encoding="utf-8"))
    }
    stale = {figure: _rel(page) for figure, page in quoted.items() if figure not in results}
    assert stale == {}, "figures quoted in the docs that bench/RESULTS.md does not state"


def test_the_files_the_docs_cite_exist() -> None:
    cited = re.compile(r"`((?:tests|bench|examples|instrument|docs)/[\w./-]+\.\w+)`")
    missing = {
        (path, _rel(page))
        for page in PAGES
        for path in cited.findall(page.read_text(encoding="utf-8"))
        if "_x." not in path and "/out/" not in path and not (ROOT / path).exists()  # out/: what the example writes
    }
    assert missing == set()
