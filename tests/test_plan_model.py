"""The plan model: rules from a module's classes (via describe()) or from an exported file."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instrument.plan import PlanError, load_plan, plan_of_module, render
from instrument.plan._model import apply_residual, residual

PORTER = "examples.porter.analytics"


def test_an_exported_file_loads_back_to_the_same_plan(tmp_path: Path) -> None:
    plan = plan_of_module(PORTER)
    for fmt in ("segment", "jsonschema"):
        path = tmp_path / f"{fmt}.json"
        path.write_text(render(plan, fmt))
        loaded = load_plan(str(path))
        assert [(r.type, r.key, r.body, r.doc) for r in loaded.rules] == [
            (r.type, r.key, r.body, r.doc) for r in plan.rules
        ]


SHOP_EVENTS = '''\
from instrument import EventName, Identify, Track


class Events(EventName):
    CART_VIEWED = "Cart Viewed"
    CART_EMPTIED = "Cart Emptied"


class CartViewed(Track, event=Events.CART_VIEWED):
    """A cart was viewed."""

    items: int


class Base(Track):
    """An abstract base (no event): not a rule."""

    items: int
'''

SHOP_MORE = '''\
from instrument import Identify, Track
from modelshop.events import CartViewed, Events


class CartEmptied(Track, event=Events.CART_EMPTIED):
    """A cart was emptied."""


class Shopper(Identify):
    """Who shops."""

    plan: str | None = None
'''


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "modelshop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "events.py").write_text(SHOP_EVENTS)
    (package / "more.py").write_text(SHOP_MORE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("modelshop")]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


def test_a_package_is_walked_with_its_submodules_each_class_once(shop: Path) -> None:
    plan = plan_of_module("modelshop")
    assert [(r.type, r.key, r.cls_name) for r in plan.rules] == [
        ("TRACK", "Cart Emptied", "CartEmptied"),
        ("TRACK", "Cart Viewed", "CartViewed"),  # imported into modelshop.more too: one rule
        ("IDENTIFY", "Shopper", "Shopper"),
    ]
    shopper = plan.find("IDENTIFY", "Shopper")
    assert shopper is not None
    assert shopper.body == {
        "type": "object",
        "properties": {"plan": {"type": ["string", "null"]}},
        "required": [],
        "x-scope": "user",
        "additionalProperties": False,
    }
    assert plan.find("TRACK", "Cart Viewed") == load_plan("modelshop.events").find("TRACK", "Cart Viewed")


def test_two_classes_for_one_event_that_disagree_are_a_plan_error(shop: Path) -> None:
    (shop / "modelshop" / "clash.py").write_text(
        "from instrument import Track\n"
        "from modelshop.events import Events\n"
        "class CartViewedAgain(Track, event=Events.CART_VIEWED):\n"
        "    '''Other properties.'''\n"
        "    total: float\n"
    )
    message = "events.py:9: CartViewed: 'Cart Viewed' is also declared by CartViewedAgain with other properties"
    with pytest.raises(PlanError, match=re.escape(message)):
        plan_of_module("modelshop")


def test_a_source_is_a_file_when_it_names_one_or_ends_in_json(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=re.escape("missing.json: cannot read")):
        load_plan(str(tmp_path / "missing.json"))
    path = tmp_path / "plan"
    path.write_text(render(plan_of_module(PORTER), "segment"))
    assert load_plan(str(path)).origin == str(path)
    assert load_plan(PORTER).origin == PORTER


CATALOG_ONLY = '''\
from instrument import EventName, tracks


class Events(EventName, wire_keys={"project_id": "proj_id"}):
    ROBOT_STARTED = "Robot Started"
    ROBOT_STOPPED = "Robot Stopped"
    ROBOT_PARKED = "Robot Parked"


@tracks(Events.ROBOT_STOPPED, scope="project")
def stop(project_id: int) -> None:
    """Stops a robot."""
'''


def test_catalog_events_without_a_class_get_a_rule_from_their_tracks_use_or_their_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "robots.py").write_text(CATALOG_ONLY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "robots", raising=False)
    plan = plan_of_module("robots")
    assert [(r.type, r.key) for r in plan.rules] == [
        ("TRACK", "Robot Parked"),
        ("TRACK", "Robot Started"),
        ("TRACK", "Robot Stopped"),
    ]
    # Only the entry is known: any property.
    parked = plan.find("TRACK", "Robot Parked")
    assert parked is not None
    assert parked.body == {"type": "object", "properties": {}, "required": []}
    assert parked.scope is None
    # Sent by @tracks(..., scope="project"): the scope's field under its wire key is required, others allowed.
    stopped = plan.find("TRACK", "Robot Stopped")
    assert stopped is not None
    assert stopped.scope == "project"
    assert stopped.body["required"] == ["proj_id"]
    assert "additionalProperties" not in stopped.body


def test_porter_plans_every_event_of_its_catalog() -> None:
    plan = plan_of_module(PORTER)
    assert len([r for r in plan.rules if r.type == "TRACK"]) == 47
    # Events without a Track class are planned from the catalog, with what is known of them.
    verified = plan.find("TRACK", "User Verified Email")
    assert verified is not None
    assert verified.cls_name is None


JSON = st.recursive(
    st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=3)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
SCHEMA_OBJECTS = st.dictionaries(st.sampled_from(["type", "properties", "required", "x", "labels"]), JSON, max_size=5)


@given(SCHEMA_OBJECTS, SCHEMA_OBJECTS)
@settings(max_examples=300, deadline=None)
def test_a_residual_turns_the_derived_schema_into_the_source(derived: dict[str, Any], source: dict[str, Any]) -> None:
    # What plan import keeps in __plan__: applied to what the class implies, it gives the plan back.
    over = residual(derived, source, ("properties",))
    assert apply_residual(derived, over, ("properties",)) == source
    assert residual(source, source, ("properties",)) == {}


def test_the_public_api_list_answer_reads_as_its_rules(tmp_path: Path) -> None:
    rules = json.loads(render(plan_of_module(PORTER), "segment"))["rules"]
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"data": {"rules": rules, "pagination": {"current": "MA==", "totalEntries": 48}}}))
    loaded = load_plan(str(answer))
    assert [(r.type, r.key, r.body) for r in loaded.rules] == [
        (r.type, r.key, r.body) for r in plan_of_module(PORTER).rules
    ]
