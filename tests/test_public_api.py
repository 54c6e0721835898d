"""The public API: __all__ is sorted, complete and importable, and every public object is documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import types
from pathlib import Path

import instrument

INIT = Path(instrument.__file__)


def _names_defined_in_init() -> set[str]:
    """Public names bound at the top level of instrument/__init__.py (imports and assignments)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    public = {n for n in names if not n.startswith("_") or n == "__version__"}
    public.discard("annotations")
    return {n for n in public if not isinstance(getattr(instrument, n, None), types.ModuleType)}


def _isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps __all__ in: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    assert list(instrument.__all__) == sorted(instrument.__all__, key=_isort_style)
    assert len(set(instrument.__all__)) == len(instrument.__all__)


def test_all_equals_the_public_names_of_the_init_module() -> None:
    assert set(instrument.__all__) == _names_defined_in_init()


def test_every_name_in_all_is_importable() -> None:
    module = importlib.import_module("instrument")
    for name in instrument.__all__:
        namespace: dict[str, object] = {}
        exec(f"from instrument import {name}", namespace)
        assert namespace[name] is getattr(module, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from instrument import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(instrument.__all__)


def test_every_public_object_has_a_docstring() -> None:
    undocumented = []
    for name in instrument.__all__:
        obj = getattr(instrument, name)
        if isinstance(obj, (str, int, float)) or name == "ScopeId":  # constants and a type alias
            continue
        if not inspect.getdoc(obj):
            undocumented.append(name)
    assert undocumented == []


def test_public_methods_of_public_classes_have_docstrings() -> None:
    undocumented = []
    for name in instrument.__all__:
        obj = getattr(instrument, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
                continue
            if not inspect.getdoc(value):
                undocumented.append(f"{name}.{attr}")
    assert undocumented == []


def test_the_version_is_a_string() -> None:
    assert isinstance(instrument.__version__, str)
    assert instrument.__version__.count(".") == 2


def test_the_package_ships_py_typed() -> None:
    assert (INIT.parent / "py.typed").exists()


def test_tests_use_the_public_name_wherever_one_exists() -> None:
    # Private modules are for what has no public name; a test that imports a public object from its
    # private home would keep passing if the public export broke.
    import instrument.testing

    public = {
        id(getattr(module, name)): f"{module.__name__}.{name}"
        for module in (instrument, instrument.testing)
        for name in module.__all__
        if name not in ("ReceivedBatch", "SegmentEndpoint")  # lazy: imported from their module is fine too
    }
    offenders: list[str] = []
    for path in sorted(INIT.parent.parent.joinpath("tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("instrument._"):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    public_name = public.get(id(getattr(module, alias.name, None)))
                    if public_name is not None:
                        offenders.append(f"{path.name}: {node.module}.{alias.name} is {public_name}")
    assert not offenders, offenders
