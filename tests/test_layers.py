"""The package's layers: a module imports only from its own layer or the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "instrument"

# Lowest first (see the README's "Design" table).
LAYERS: list[set[str]] = [
    {"_errors", "_codegen", "_version"},
    {
        "_state",
        "_events",
        "_scopes",
        "_checks",
        "_encoding",
        "_fields",
        "_reporting",
        "_forks",
        "_context",
        "_hints",
        "_consent",
        "_personal",
    },
    {"_settings", "_spec", "_validate"},
    {"transports", "_records", "_dispatch", "_spool"},
    {"_calls"},
    {"_messages", "_describe", "destinations"},
    {"_client"},
    {"_decorator", "_signals", "_propagation", "_shortlived"},
    {"__init__", "testing", "pytest_plugin", "integrations"},
    {"plan", "__main__"},  # the command line and collector: never imported by the package itself
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _module_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("instrument"):
            parts = node.module.split(".")
            if len(parts) > 1:
                names.add(parts[1])
            else:  # from instrument import _client, ...
                names.update(alias.name for alias in node.names if alias.name in LEVEL)
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("instrument."))
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_import_only_from_their_layer_or_below(path: Path) -> None:
    module = _module_of(path)
    assert module in LEVEL, f"{module} is in no layer: add it to LAYERS"
    above = {name for name in _imported(path) - {module} if LEVEL.get(name, -1) > LEVEL[module]}
    assert not above, f"{path.relative_to(PACKAGE)} imports {sorted(above)} from a layer above it"


# transports/ is being rebuilt (issue 10); its tests are test_delivery.py and test_encoding.py for now.
_UNMIRRORED = {"__init__.py": "test_public_api.py", "transports": "test_delivery.py", "__main__.py": "test_plan_cli.py"}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_tests_mirror_the_modules(path: Path) -> None:
    # instrument/_x.py -> tests/test_x.py; instrument/testing/_x.py -> tests/test_testing_x.py.
    relative = path.relative_to(PACKAGE)
    if relative.parts[0] in _UNMIRRORED:
        expected = _UNMIRRORED[relative.parts[0]]
    else:
        expected = "test_" + "_".join(part.lstrip("_") for part in relative.with_suffix("").parts) + ".py"
    assert (PACKAGE.parent / "tests" / expected).exists(), f"{relative} has no tests/{expected}"


def _touches_the_scope_variable(path: Path) -> list[str]:
    # The scope's ContextVar and its bound set/reset, by any spelling: _SCOPE, _scopes._set, _scopes._reset.
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and (
            node.attr == "_SCOPE" or (node.attr in ("_set", "_reset") and getattr(node.value, "id", "") == "_scopes")
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, (ast.Name, ast.alias)) and "_SCOPE" in (
            getattr(node, "id", None),
            getattr(node, "name", None),
        ):
            found.append(f"line {node.lineno}: _SCOPE")
        elif (
            isinstance(node, ast.Call)
            and "ContextVar" in ast.unparse(node.func)
            and any(isinstance(a, ast.Constant) and a.value == "instrument_scope" for a in node.args)
        ):
            found.append(f"line {node.lineno}: a second ContextVar named 'instrument_scope'")
    return found


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE) != Path("_scopes.py")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_scopes_module_assigns_the_scope_variable(path: Path) -> None:
    # One door: everything else binds through _scopes.attach/detach (and the public analytics_scope/bind_scope).
    touches = _touches_the_scope_variable(path)
    assert not touches, f"{path.relative_to(PACKAGE)} reaches the scope's ContextVar directly: {touches}"


def test_the_scope_variable_check_sees_each_spelling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    for line in (
        "_scopes._SCOPE.set({})",
        "_scopes._set({})",
        "_scopes._reset(token)",
        "from instrument._scopes import _SCOPE",
        "x = ContextVar('instrument_scope')",
    ):
        module.write_text(line + "\n")
        assert _touches_the_scope_variable(module), line
    module.write_text("_scopes.attach(fields)\n_scopes.detach(token)\n")
    assert not _touches_the_scope_variable(module)
