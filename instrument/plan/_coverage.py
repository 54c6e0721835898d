"""Plan coverage: which planned events were never seen, in the collector's store or in a test run's record.

A test run's record is what the pytest plugin writes with ``--analytics-record=PATH`` (or the
``INSTRUMENT_RECORD_EVENTS`` variable): one JSON object per line, ``{"type", "event", "test"}``. The
collector's store is the SQLite file of ``instrument collect --db PATH``, read through its query methods.
An identify carries no name on the wire: any identify seen covers every IDENTIFY rule (and any group, page,
screen or alias call every rule of its type).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from instrument.plan._model import Plan, PlanError, Rule

Seen = tuple[str, str]  # (message type, event name or "")


@dataclass(frozen=True)
class Coverage:
    """Planned rules seen and never seen, and track events seen that the plan does not name."""

    planned: int
    unseen: tuple[str, ...]
    unplanned: tuple[str, ...]

    @property
    def seen(self) -> int:
        """How many planned rules were seen."""
        return self.planned - len(self.unseen)

    def as_dict(self) -> dict[str, object]:
        """The coverage as ``plan coverage --json`` prints it."""
        return {
            "planned": self.planned,
            "seen": self.seen,
            "unseen": list(self.unseen),
            "unplanned": list(self.unplanned),
        }


def seen_in_record(path: Path) -> set[Seen]:
    """(type, event) of every message in a test run's record. Raises PlanError naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise PlanError(f"{path}: cannot read: {error.strerror or error}") from None
    seen: set[Seen] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise PlanError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise PlanError(f'{path}:{number}: expected {{"type": ..., "event": ...}}')
        event = item.get("event")
        seen.add((item["type"], event if isinstance(event, str) else ""))
    return seen


def seen_in_store(path: Path, plan: Plan) -> set[Seen]:
    """Which of the plan's rules the collector's store (``instrument collect --db PATH``) holds an event of."""
    if not path.is_file():
        raise PlanError(f"{path}: no such collector store (the file of `instrument collect --db`)")
    from instrument.plan._collect import Store

    store = Store(str(path))
    try:
        seen: set[Seen] = set()
        for rule in plan.rules:
            if rule.type == "TRACK" and store.events(type="track", event=rule.key, limit=1):
                seen.add(("track", rule.key))
        for kind in ("identify", "group", "page", "screen", "alias"):
            if store.events(type=kind, limit=1):
                seen.add((kind, ""))
        return seen
    finally:
        store.close()


def _is_seen(rule: Rule, seen: set[Seen]) -> bool:
    if rule.type == "TRACK":
        return ("track", rule.key) in seen
    if rule.type in ("IDENTIFY", "GROUP", "PAGE", "SCREEN", "ALIAS"):  # any call of its type covers it
        return any(kind == rule.type.lower() for kind, _ in seen)
    return True  # a COMMON rule applies to every message


def coverage(plan: Plan, seen: Iterable[Seen]) -> Coverage:
    """Which of ``plan``'s rules no seen message matches, and which seen tracks the plan does not name."""
    seen = set(seen)
    rules = [r for r in plan.rules if r.type != "COMMON"]
    unseen = tuple(r.label() for r in rules if not _is_seen(r, seen))
    planned = {r.key for r in rules if r.type == "TRACK"}
    unplanned = tuple(sorted({event for kind, event in seen if kind == "track" and event not in planned}))
    return Coverage(len(rules), unseen, unplanned)
