"""A user's own venv with the package installed as the README installs it (``pip install -e .``).

Built offline by the test environment's pip and hatchling (``--no-build-isolation``) into a real,
empty venv; type checkers are then pointed at that venv's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run a command with no MYPYPATH/PYTHONPATH (the checkers must find the package by the install)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def empty_venv(where: Path) -> Path:
    """A new venv without pip; returns its interpreter."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    assert python.exists()
    return python


def install_editable(where: Path) -> subprocess.CompletedProcess[str]:
    """The README's command, for a venv without pip: the test environment's pip installs into it.

    ``--ignore-installed``: without it pip would first uninstall the test environment's own copy.
    """
    return run(
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--ignore-installed", "--prefix", where, "-e", ROOT,
        cwd=where.parent,
    )  # fmt: skip


def mypy(python: Path, project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``files`` of ``project``, resolving imports in ``python``'s venv."""
    cache = python.parent.parent.parent / ".mypy_cache"  # beside the venv: never shared
    return run(
        sys.executable, "-m", "mypy", "--strict", "--python-executable", python, "--cache-dir", cache,
        "--show-error-codes", "--no-color-output", *files,
        cwd=project, timeout=240,
    )  # fmt: skip


def pyright(python: Path, project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """Pyright in strict mode (the ``basedpyright`` package, which bundles node) on ``files``, JSON output."""
    (project / "pyrightconfig.json").write_text('{"typeCheckingMode": "strict"}\n')
    checker = Path(sys.executable).parent / "basedpyright"
    return run(checker, "--outputjson", "--pythonpath", python, "-p", project, *files, cwd=project, timeout=240)
