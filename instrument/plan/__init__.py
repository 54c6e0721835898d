"""Tracking-plan tools: export, lint, diff and check the plan the Track and Identify classes declare,
and a local Segment-compatible collector (``instrument collect``).

Not imported by ``import instrument``; the collector's validation needs the ``collect`` extra (jsonschema).
"""

from __future__ import annotations

from instrument.plan._diff import Change, diff
from instrument.plan._export import FORMATS, render
from instrument.plan._lint import Finding, lint
from instrument.plan._model import Plan, PlanError, Rule, load_plan, plan_of_module

__all__ = [
    "FORMATS",
    "Change",
    "Finding",
    "Plan",
    "PlanError",
    "Rule",
    "diff",
    "lint",
    "load_plan",
    "plan_of_module",
    "render",
]
