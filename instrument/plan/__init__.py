"""Tracking-plan tools: export, import, lint, diff, check and measure the coverage of the plan the Track
and Identify classes declare, and a local Segment-compatible collector (``instrument collect``).

Not imported by ``import instrument``. ``Collector`` and ``Checker`` validate with the jsonschema library
(the ``plan``/``collect`` extra), imported only when one of them is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instrument.plan._coverage import Coverage, coverage
from instrument.plan._diff import Bump, Change, bumps, diff
from instrument.plan._export import FORMATS, render
from instrument.plan._import import import_plan
from instrument.plan._lint import Finding, lint
from instrument.plan._model import Plan, PlanError, Rule, load_plan, plan_of_module

if TYPE_CHECKING:
    from instrument.plan._collect import Collector
    from instrument.plan._validate import Checker, Violation

__all__ = [
    "FORMATS",
    "Bump",
    "Change",
    "Checker",
    "Collector",
    "Coverage",
    "Finding",
    "Plan",
    "PlanError",
    "Rule",
    "Violation",
    "bumps",
    "coverage",
    "diff",
    "import_plan",
    "lint",
    "load_plan",
    "plan_of_module",
    "render",
]


def __getattr__(name: str) -> Any:
    # jsonschema is imported only by what needs it.
    if name == "Collector":
        from instrument.plan._collect import Collector

        return Collector
    if name in ("Checker", "Violation"):
        from instrument.plan import _validate

        return getattr(_validate, name)
    raise AttributeError(f"module 'instrument.plan' has no attribute {name!r}")
