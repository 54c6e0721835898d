"""The README's install (`pip install -e .`) is visible to type checkers in a user's own project.

A real, empty venv gets the package with pip's editable install (built offline by the hatchling of
the test environment: ``--no-build-isolation``); mypy, told to use that venv's interpreter, then type
checks a user module outside the repository against ``instrument``'s own annotations (py.typed).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)

USER_MODULE = """
from instrument import EventName, Track, tracks


class Events(EventName):
    CART_CHECKED_OUT = "Cart Checked Out"


class CartCheckedOut(Track, event=Events.CART_CHECKED_OUT, scope="user"):
    total: int
    coupon: str = ""


@tracks(CartCheckedOut)
def checkout(total: int) -> int:
    return total


event = CartCheckedOut(total=3)
result: int = checkout(3)
"""

WRONG_CALLS = """
from app import CartCheckedOut, checkout

CartCheckedOut(total="3")
checkout("x")
"""


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=90
    )


def _mypy(python: Path, project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    cache = python.parent.parent.parent / ".mypy_cache"  # beside this test's venv: never shared
    return _run(
        sys.executable, "-m", "mypy", "--strict", "--python-executable", python, "--cache-dir", cache, *files,
        cwd=project,
    )  # fmt: skip


@pytest.fixture(scope="module")
def user_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("user-project")
    (project / "app.py").write_text(textwrap.dedent(USER_MODULE))
    (project / "bad.py").write_text(textwrap.dedent(WRONG_CALLS))
    return project


def _empty_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    assert python.exists()
    return python


def test_mypy_finds_the_editable_install_and_checks_user_code_against_it(tmp_path: Path, user_project: Path) -> None:
    python = _empty_venv(tmp_path / "venv")
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    site = Path(purelib.stdout.strip())
    # The README's command, for a venv without pip: the test environment's pip installs into it
    # (--ignore-installed: without it pip would first uninstall the test environment's own copy).
    install = _run(
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--ignore-installed", "--prefix", tmp_path / "venv", "-e", ROOT,
        cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert importlib.metadata.distribution("instrument").files, "the test environment's install was touched"
    # A plain path entry, not an import hook: what type checkers can follow.
    pth = [p.read_text().strip() for p in site.glob("*.pth")]
    assert str(ROOT) in pth, pth
    assert (ROOT / "instrument" / "py.typed").exists()

    ok = _mypy(python, user_project, "app.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Success" in ok.stdout

    wrong = _mypy(python, user_project, "app.py", "bad.py")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert 'Argument "total" to "CartCheckedOut" has incompatible type "str"; expected "int"' in wrong.stdout
    assert 'Argument 1 to "checkout" has incompatible type "str"; expected "int"' in wrong.stdout


def test_without_the_install_mypy_does_not_find_instrument(tmp_path: Path, user_project: Path) -> None:
    # The control: the user project alone does not see the package, so the test above can fail.
    python = _empty_venv(tmp_path / "venv")
    missing = _mypy(python, user_project, "app.py")
    assert missing.returncode == 1
    assert 'Cannot find implementation or library stub for module named "instrument"' in missing.stdout
