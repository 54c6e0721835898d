"""The README's install (`pip install -e .`) is visible to type checkers in a user's own project.

A real, empty venv gets the package with pip's editable install (built offline by the hatchling of
the test environment: ``--no-build-isolation``); mypy, told to use that venv's interpreter, then type
checks a user module outside the repository against ``instrument``'s own annotations (py.typed).
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest
from user_venv import ROOT, empty_venv, install_editable, mypy, run

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


@pytest.fixture(scope="module")
def user_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("user-project")
    (project / "app.py").write_text(textwrap.dedent(USER_MODULE))
    (project / "bad.py").write_text(textwrap.dedent(WRONG_CALLS))
    return project


def test_mypy_finds_the_editable_install_and_checks_user_code_against_it(tmp_path: Path, user_project: Path) -> None:
    python = empty_venv(tmp_path / "venv")
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    site = Path(purelib.stdout.strip())
    install = install_editable(tmp_path / "venv")
    assert install.returncode == 0, install.stderr
    assert importlib.metadata.distribution("instrument").files, "the test environment's install was touched"
    # A plain path entry, not an import hook: what type checkers can follow.
    pth = [p.read_text().strip() for p in site.glob("*.pth")]
    assert str(ROOT) in pth, pth
    assert (ROOT / "instrument" / "py.typed").exists()

    ok = mypy(python, user_project, "app.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Success" in ok.stdout

    wrong = mypy(python, user_project, "app.py", "bad.py")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert 'Argument "total" to "CartCheckedOut" has incompatible type "str"; expected "int"' in wrong.stdout
    assert 'Argument 1 to "checkout" has incompatible type "str"; expected "int"' in wrong.stdout


def test_without_the_install_mypy_does_not_find_instrument(tmp_path: Path, user_project: Path) -> None:
    # The control: the user project alone does not see the package, so the test above can fail.
    python = empty_venv(tmp_path / "venv")
    missing = mypy(python, user_project, "app.py")
    assert missing.returncode == 1
    assert 'Cannot find implementation or library stub for module named "instrument"' in missing.stdout
