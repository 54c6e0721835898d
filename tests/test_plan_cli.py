"""The `instrument` command line: console script and `python -m`, exit codes, bad input, colour."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from run_instrument import run_instrument

from instrument.plan._cli import main

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
pytestmark = pytest.mark.timeout(120)


def test_the_console_script_and_python_m_give_the_same_export() -> None:
    script = Path(sysconfig.get_path("scripts")) / "instrument"
    assert script.exists(), "pyproject [project.scripts] installs `instrument`"
    by_script = subprocess.run(
        [str(script), "plan", "export", PORTER], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert by_script.stdout == run_instrument("plan", "export", PORTER).stdout
    assert by_script.stdout.startswith('{\n  "rules": [')


@pytest.mark.parametrize(
    "argv",
    [(), ("plan",), ("plan", "export"), ("frobnicate",), ("plan", "check", PORTER)],
    ids=["nothing", "no plan command", "no module", "unknown command", "check without --against"],
)
def test_usage_errors_exit_2_with_the_usage(argv: tuple[str, ...]) -> None:
    done = run_instrument(*argv)
    assert done.returncode == 2
    assert "usage: instrument" in done.stderr
    assert "Traceback" not in done.stderr


MODULES = {
    "raises_at_import": (
        "x = 1\n1 / 0\n",
        "module 'raises_at_import' failed to import: ZeroDivisionError: division by zero (",
    ),
    "broken_syntax": ("def (:\n", "module 'broken_syntax' failed to import: SyntaxError"),
    "object_field": (
        "from instrument import EventName, Track\n"
        "class Events(EventName):\n"
        "    BOX_PACKED = 'Box Packed'\n"
        "class BoxPacked(Track, event=Events.BOX_PACKED):\n"
        "    '''A box.'''\n"
        "    items: list[object]\n",
        "object_field.py:4: BoxPacked: field 'items': type cannot be expressed: object admits values",
    ),
    "forward_ref": (
        "from instrument import EventName, Track\n"
        "class Events(EventName):\n"
        "    BOX_SHIPPED = 'Box Shipped'\n"
        "class BoxShipped(Track, event=Events.BOX_SHIPPED):\n"
        '    """A box."""\n'
        "    items: 'Nope'\n",
        "forward_ref.py:4: BoxShipped.items: cannot resolve the annotation 'Nope'",
    ),
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_bad_modules_are_a_clear_message_and_exit_2(tmp_path: Path, module: str) -> None:
    source, message = MODULES[module]
    (tmp_path / f"{module}.py").write_text(source)
    for command in ("export", "lint"):
        done = run_instrument("plan", command, module, cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_a_module_without_planned_classes_is_exit_2() -> None:
    err = io.StringIO()
    assert main(["plan", "export", "instrument.plan._types"], stderr=err) == 2
    assert err.getvalue() == (
        "instrument: error: module 'instrument.plan._types' (with its submodules) "
        "declares no Track or Identify classes and no event catalog\n"
    )


def test_a_missing_module_and_an_unknown_format_exit_2() -> None:
    done = run_instrument("plan", "export", "no_such_module_here")
    assert (done.returncode, done.stderr) == (
        2,
        "instrument: error: module 'no_such_module_here' failed to import: ModuleNotFoundError: "
        "No module named 'no_such_module_here'\n",
    )
    err = io.StringIO()
    assert main(["plan", "export", PORTER, "--format", "yaml"], stderr=err) == 2
    assert err.getvalue() == (
        "instrument: error: unknown format 'yaml' "
        "(choose from segment, jsonschema, markdown, typewriter, iglu, rudder)\n"
    )


def test_export_writes_the_output_file_and_reports_an_unwritable_one(tmp_path: Path) -> None:
    target = tmp_path / "plan.md"
    assert main(["plan", "export", PORTER, "--format", "markdown", "-o", str(target)]) == 0
    assert target.read_text().startswith("# Tracking plan: examples.porter.analytics\n")
    err = io.StringIO()
    assert main(["plan", "export", PORTER, "-o", str(tmp_path / "missing" / "plan.json")], stderr=err) == 2
    assert "missing/plan.json: cannot write: No such file or directory" in err.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = _Terminal()
    main(["plan", "check", PORTER, "--against", str(ROOT / "examples/porter/plan.json")], stdout=terminal)
    assert "\033[32m" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Terminal()
    main(["plan", "check", PORTER, "--against", str(ROOT / "examples/porter/plan.json")], stdout=plain)
    assert "\033[" not in plain.getvalue()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    dumb = _Terminal()
    main(["plan", "check", PORTER, "--against", str(ROOT / "examples/porter/plan.json")], stdout=dumb)
    assert "\033[" not in dumb.getvalue()


def test_importing_instrument_imports_no_cli_collector_or_jsonschema() -> None:
    code = (
        "import sys, instrument, instrument.testing\n"
        "bad = [m for m in sys.modules if m.startswith(('instrument.plan', 'instrument.__main__', 'jsonschema'))]\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True, env=os.environ
    )
    assert done.stdout == "[]\n"
