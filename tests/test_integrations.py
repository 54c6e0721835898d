"""The integrations package: importing instrument (or the package) imports no framework, and every
integration has an extra naming its framework, which the test extra also installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("fastapi", "starlette", "flask", "werkzeug", "django", "celery", "kombu", "billiard", "opentelemetry")
# integration module -> (the extra that installs its framework, the framework's distribution)
EXTRAS = {
    "asgi": ("fastapi", "fastapi"),
    "fastapi": ("fastapi", "fastapi"),
    "wsgi": ("flask", "flask"),
    "django": ("django", "django"),
    "celery": ("celery", "celery"),
    "opentelemetry": ("opentelemetry", "opentelemetry-api"),
}


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_importing_instrument_and_the_integrations_package_imports_no_framework() -> None:
    loaded = _imported_after("import instrument, instrument.integrations, instrument.testing")
    assert loaded.isdisjoint(FRAMEWORKS), sorted(loaded & set(FRAMEWORKS))


def test_every_integration_module_is_listed_with_an_extra() -> None:
    modules = {p.stem for p in (ROOT / "instrument" / "integrations").glob("*.py") if not p.stem.startswith("_")}
    assert modules == set(EXTRAS)


@pytest.mark.parametrize(("module", "extra_and_dist"), sorted(EXTRAS.items()))
def test_each_integration_has_an_extra_with_its_framework_also_in_the_test_extra(
    module: str, extra_and_dist: tuple[str, str]
) -> None:
    extra, dist = extra_and_dist
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith(dist) for req in extras[extra]), extras[extra]
    assert any(req.startswith(dist) for req in extras["test"]), f"{dist} missing from the test extra"


#: Vendor SDKs a destination could have pulled in (the official clients' top-level modules).
VENDOR_SDKS = ("segment", "analytics", "posthog", "mixpanel", "amplitude", "rudderstack", "opentelemetry", "requests")


def test_importing_instrument_and_every_destination_imports_no_vendor_sdk() -> None:
    loaded = _imported_after("import instrument, instrument.destinations")
    assert loaded.isdisjoint(VENDOR_SDKS), sorted(loaded & set(VENDOR_SDKS))
