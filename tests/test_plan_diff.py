"""`instrument plan diff` and `plan check`: every breaking and compatible change, and malformed input."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_instrument import run_instrument

from instrument.plan import plan_of_module, render
from instrument.plan._cli import main
from instrument.plan._diff import CHANGE_KINDS, diff, relation

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
SUCCESS = "Cluster Provisioning Success"
pytestmark = pytest.mark.timeout(120)

Document = dict[str, Any]


@functools.cache
def _base_text() -> str:
    # Exporting reads the catalog's source (about 0.25 s): once per worker; each case gets its own copy.
    return render(plan_of_module(PORTER), "segment")


def _base() -> Document:
    loaded: Document = json.loads(_base_text())
    return loaded


def _body(doc: Document, key: str = SUCCESS) -> dict[str, Any]:
    rule = next(r for r in doc["rules"] if r["key"] == key)
    body: dict[str, Any] = rule["jsonSchema"]["properties"]["properties" if rule["type"] == "TRACK" else "traits"]
    return body


OPEN = "User Verified Email"  # a catalog-only rule: any property allowed


def _remove_event(doc: Document) -> None:
    doc["rules"] = [r for r in doc["rules"] if r["key"] != SUCCESS]


def _remove_property(doc: Document) -> None:
    body = _body(doc)
    del body["properties"]["infra_id"]
    body["required"].remove("infra_id")


def _optional_to_required(doc: Document) -> None:
    _body(doc)["required"].remove("infra_id")  # on the OLD side: optional then, required now


def _type_changed(doc: Document) -> None:
    _body(doc)["properties"]["infra_id"] = {"type": "string"}


def _as_number(doc: Document) -> None:
    _body(doc)["properties"]["infra_id"] = {"type": "number"}


def _nullable(doc: Document) -> None:
    _body(doc)["properties"]["infra_id"] = {"type": ["integer", "null"]}


def _with_format(doc: Document) -> None:
    _body(doc)["properties"]["cluster_type"] = {"type": "string", "format": "uuid"}


def _with_max_length(length: int) -> Mutation:
    def mutate(doc: Document) -> None:
        _body(doc)["properties"]["cluster_type"] = {"type": "string", "maxLength": length}

    return mutate


def _enum_value_removed(doc: Document) -> None:
    _body(doc, "UserTraits")["properties"]["github"]["enum"].append("unknown")  # old had one more value


def _new_required_property(doc: Document) -> None:
    body = _body(doc)
    del body["properties"]["cluster_type"]
    body["required"].remove("cluster_type")


def _scope_changed(doc: Document) -> None:
    _body(doc)["x-scope"] = "project"


def _event_added(doc: Document) -> None:
    _remove_event(doc)  # old lacks it: the code adds it


def _optional_property_added(doc: Document) -> None:
    body = _body(doc)
    body["properties"]["region"] = {"type": "string"}  # not in "required": optional


def _open_optional_property(doc: Document) -> None:
    _body(doc, OPEN)["properties"]["region"] = {"type": "string"}


def _opened(doc: Document) -> None:
    del _body(doc)["additionalProperties"]


def _enum_value_added(doc: Document) -> None:
    _body(doc, "UserTraits")["properties"]["github"]["enum"].remove("false")


def _identify_renamed(doc: Document) -> None:
    rule = next(r for r in doc["rules"] if r["type"] == "IDENTIFY")
    rule["key"] = "PorterUser"  # the class is renamed: the wire carries no class name


Mutation = Callable[[Document], None]

# (change, applied to the OLD plan, applied to the NEW plan, expected (severity, schemaver, change), next version)
MATRIX: list[tuple[str, Mutation | None, Mutation | None, list[tuple[str, str, str]], str | None]] = [
    ("event removed", None, _remove_event, [("breaking", "MODEL", "event removed")], None),
    ("event added", _event_added, None, [("compatible", "ADDITION", "event added")], "1-0-0"),
    (
        "required property removed",
        None,
        _remove_property,
        [("breaking", "MODEL", "required property removed")],
        "2-0-0",
    ),
    (
        "optional property removed (closed rule)",
        _optional_property_added,
        None,
        [("compatible", "REVISION", "optional property removed")],
        "1-1-0",
    ),
    (
        "optional property removed (open rule)",
        _open_optional_property,
        None,
        [("compatible", "ADDITION", "optional property removed")],
        "1-0-1",
    ),
    ("new required property", _new_required_property, None, [("breaking", "MODEL", "new required property")], "2-0-0"),
    (
        "optional property added (closed rule)",
        None,
        _optional_property_added,
        [("compatible", "ADDITION", "optional property added")],
        "1-0-1",
    ),
    (
        "optional property added (open rule)",
        None,
        _open_optional_property,
        [("compatible", "REVISION", "optional property added")],
        "1-1-0",
    ),
    ("optional to required", _optional_to_required, None, [("breaking", "MODEL", "optional to required")], "2-0-0"),
    (
        "required to optional",
        None,
        _optional_to_required,
        [("compatible", "ADDITION", "required to optional")],
        "1-0-1",
    ),
    ("type widened (int -> float)", None, _as_number, [("compatible", "ADDITION", "type widened")], "1-0-1"),
    ("type narrowed (float -> int)", _as_number, None, [("breaking", "MODEL", "type narrowed")], "2-0-0"),
    ("type widened (null allowed)", None, _nullable, [("compatible", "ADDITION", "type widened")], "1-0-1"),
    ("type narrowed (null refused)", _nullable, None, [("breaking", "MODEL", "type narrowed")], "2-0-0"),
    ("type narrowed (format added)", None, _with_format, [("breaking", "MODEL", "type narrowed")], "2-0-0"),
    ("type changed", None, _type_changed, [("breaking", "MODEL", "type changed")], "2-0-0"),
    ("enum value removed", _enum_value_removed, None, [("breaking", "MODEL", "enum value removed")], "2-0-0"),
    ("enum value added", _enum_value_added, None, [("compatible", "ADDITION", "enum value added")], "1-0-1"),
    (
        "size relaxed",
        _with_max_length(10),
        _with_max_length(20),
        [("compatible", "ADDITION", "size relaxed")],
        "1-0-1",
    ),
    (
        "size tightened",
        _with_max_length(20),
        _with_max_length(10),
        [("compatible", "REVISION", "size tightened")],
        "1-1-0",
    ),
    ("scope changed", _scope_changed, None, [("breaking", "MODEL", "scope changed")], "2-0-0"),
    ("rule closed", _opened, None, [("compatible", "REVISION", "rule closed")], "1-1-0"),
    ("rule opened", None, _opened, [("compatible", "ADDITION", "rule opened")], "1-0-1"),
    ("identify class renamed", None, _identify_renamed, [], None),
    ("no change", None, None, [], None),
]


@pytest.mark.parametrize(
    ("name", "old_change", "new_change", "expected", "version"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_diff_classes_each_change_as_schemaver_suggests_the_next_version_and_exits_1_on_model(
    tmp_path: Path,
    name: str,
    old_change: Mutation | None,
    new_change: Mutation | None,
    expected: list[tuple[str, str, str]],
    version: str | None,
) -> None:
    old, new = _base(), _base()
    for doc, change in ((old, old_change), (new, new_change)):
        if change is not None:
            change(doc)
    exit_code, out, err = _run(
        "plan", "diff", _write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new), "--json"
    )
    assert err == ""
    report = json.loads(out)
    assert [(c["severity"], c["schemaver"], c["change"]) for c in report["changes"]] == expected
    breaking = any(c["schemaver"] == "MODEL" for c in report["changes"])
    assert exit_code == (1 if breaking else 0)
    assert report["breaking"] is breaking
    assert [v["to"] for v in report["versions"]] == ([version] if version else [])
    for change in report["changes"]:
        assert change["pointer"] == "" or change["pointer"].startswith("/properties/")


def test_the_matrix_covers_every_change_kind() -> None:
    assert {e[2] for m in MATRIX for e in m[3]} == set(CHANGE_KINDS)


def test_warehouse_caveats_are_stated_where_they_apply(tmp_path: Path) -> None:
    new = _base()
    _optional_to_required(new)
    _as_number(new)
    _, out, _ = _run("plan", "diff", PORTER, _write(tmp_path / "new.json", new), "--json")
    caveats = {c["change"]: c.get("caveat") for c in json.loads(out)["changes"]}
    assert caveats["required to optional"].startswith("Redshift: breaking")
    assert "type" in caveats["type widened"]
    done = run_instrument("plan", "diff", PORTER, str(tmp_path / "new.json"))
    assert "note: Redshift: breaking" in done.stdout
    assert f"next version of {SUCCESS}: 1-0-0 -> 1-0-1 (ADDITION)" in done.stdout


def test_the_next_version_starts_from_the_committed_rule_version(tmp_path: Path) -> None:
    old = _base()
    next(r for r in old["rules"] if r["key"] == SUCCESS)["version"] = 3
    new = _base()
    _type_changed(new)
    _, out, _ = _run("plan", "diff", _write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new), "--json")
    assert json.loads(out)["versions"] == [{"rule": SUCCESS, "from": "3-0-0", "to": "4-0-0", "schemaver": "MODEL"}]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _write(path: Path, doc: Document) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_breaking_change_names_the_rule_and_a_json_pointer(tmp_path: Path) -> None:
    new = _base()
    _type_changed(new)
    _, out, _ = _run("plan", "diff", PORTER, _write(tmp_path / "new.json", new), "--json")
    [change] = json.loads(out)["changes"]
    assert change["rule"] == SUCCESS
    assert change["pointer"] == "/properties/properties/properties/infra_id"
    assert change["detail"] == "infra_id: integer -> string"


def test_a_file_and_a_module_with_the_same_plan_have_no_changes() -> None:
    code, out, _ = _run("plan", "diff", str(ROOT / "examples/porter/plan.json"), PORTER)
    assert (code, out) == (0, "no changes\n")


def test_human_output_is_a_table_without_colour_on_a_pipe(tmp_path: Path) -> None:
    _event_added_doc = _base()
    _remove_event(_event_added_doc)
    done = run_instrument("plan", "diff", _write(tmp_path / "old.json", _event_added_doc), PORTER)
    assert done.returncode == 0
    assert "compatible  ADDITION   event added" in done.stdout
    assert "\033[" not in done.stdout
    assert done.stdout.endswith("0 breaking, 1 compatible\n")


BAD_FILES: list[tuple[str, str, str]] = [
    ("not json", "{not json", "not JSON"),
    ("not a plan", '{"hello": 1}', "not a plan"),
    (
        "unknown draft",
        json.dumps({"rules": [{"key": "A B", "type": "TRACK", "jsonSchema": {"$schema": "x:draft-99"}}]}),
        "unknown JSON Schema draft 'x:draft-99'",
    ),
    (
        "duplicate rule",
        json.dumps({"rules": [{"key": "A B", "type": "TRACK", "jsonSchema": {}}] * 2}),
        "duplicate rule TRACK 'A B'",
    ),
    (
        "bad rule type",
        json.dumps({"rules": [{"key": "A B", "type": "PAGEVIEW", "jsonSchema": {}}]}),
        "rule type 'PAGEVIEW' is not one of TRACK, IDENTIFY, GROUP, PAGE, SCREEN, ALIAS, COMMON",
    ),
    ("rule not an object", json.dumps({"rules": [3]}), "rules[0]: a rule must be an object"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_malformed_plan_file_is_a_clear_error_and_exit_2(tmp_path: Path, name: str, text: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    for argv in (("plan", "diff", str(bad), PORTER), ("plan", "check", PORTER, "--against", str(bad))):
        code, out, err = _run(*argv)
        assert (code, out) == (2, "")
        assert str(bad) in err
        assert message in err
        assert "Traceback" not in err


def test_a_missing_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    code, _, err = _run("plan", "diff", str(tmp_path / "gone.json"), PORTER)
    assert code == 2
    assert "gone.json: cannot read" in err


def test_check_passes_on_the_committed_plan_and_fails_when_it_is_stale(tmp_path: Path) -> None:
    code, out, _ = _run("plan", "check", PORTER, "--against", str(ROOT / "examples/porter/plan.json"))
    assert (code, out) == (0, f"{ROOT / 'examples/porter/plan.json'} is up to date\n")
    old = _base()
    _remove_property(old)  # the committed plan lacks a property the code now sends
    stale = _write(tmp_path / "plan.json", old)
    code, out, _ = _run("plan", "check", PORTER, "--against", stale)
    assert code == 1
    assert "is stale" in out
    assert "new required property" in out
    code, out, _ = _run("plan", "check", PORTER, "--against", stale, "--json")
    assert json.loads(out)["stale"] is True


def test_check_notices_a_changed_description(tmp_path: Path) -> None:
    doc = _base()
    next(r for r in doc["rules"] if r["key"] == SUCCESS)["jsonSchema"]["description"] = "old words"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    code, out, _ = _run("plan", "check", PORTER, "--against", str(path))
    assert code == 1
    assert "descriptions or formatting changed" in out


def test_check_accepts_a_committed_jsonschema_export(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(render(plan_of_module(PORTER), "jsonschema"))
    assert _run("plan", "check", PORTER, "--against", str(path))[0] == 0


def test_a_segment_plan_with_a_common_rule_loads_and_diffs(tmp_path: Path) -> None:
    doc = _base()
    common = {"type": "object", "properties": {"context": {}, "properties": {"type": "object"}}}
    doc["rules"].append({"key": "", "type": "COMMON", "version": 1, "jsonSchema": common})
    code, out, _ = _run("plan", "diff", _write(tmp_path / "old.json", doc), PORTER, "--json")
    assert json.loads(out)["changes"] == [
        {
            "severity": "breaking",
            "schemaver": "MODEL",
            "change": "event removed",
            "rule": "common",
            "pointer": "",
            "detail": "",
        }
    ]
    assert code == 1


PROPERTY_SCHEMAS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "null"])
        | st.lists(st.sampled_from(["string", "integer", "number", "null"]), min_size=1, max_size=3, unique=True),
        "format": st.sampled_from(["date-time", "uuid"]),
        "maxLength": st.integers(0, 5),
        "minimum": st.integers(-2, 2),
        "items": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["string", "integer", "number"])}),
    },
)


@given(PROPERTY_SCHEMAS, PROPERTY_SCHEMAS)
@settings(max_examples=400, deadline=None)
def test_widening_one_way_is_narrowing_the_other(old: dict[str, Any], new: dict[str, Any]) -> None:
    forward, backward = relation(old, new), relation(new, old)
    mirror = {"same": "same", "wider": "narrower", "narrower": "wider", "other": "other"}
    assert backward == mirror[forward]
    assert relation(old, old) == "same"


# -- group, page, screen and alias rules ------------------------------------------------------------------


def _with_rule(plan: Any, rule_type: str, **changes: Any) -> Any:
    rules = list(plan.rules)
    index = next(i for i, r in enumerate(rules) if r.type == rule_type)
    rules[index] = dataclasses.replace(rules[index], **changes)
    return dataclasses.replace(plan, rules=tuple(rules))


def test_diff_reports_a_page_property_made_required_as_breaking_naming_the_page() -> None:
    plan = plan_of_module("calls_app")
    page = plan.find("PAGE", "Pricing")
    assert page is not None
    changed = _with_rule(plan, "PAGE", body={**page.body, "required": [*page.body["required"], "referrer"]})
    [change] = diff(plan, changed)
    assert (change.severity, change.what, change.rule, change.detail) == (
        "breaking",
        "optional to required",
        "page Pricing",
        "referrer",
    )


def test_a_renamed_group_or_alias_class_is_no_change_its_messages_are_the_same() -> None:
    plan = plan_of_module("calls_app")
    renamed = _with_rule(_with_rule(plan, "GROUP", key="ProjectMember"), "ALIAS", key="SignedUp")
    assert diff(plan, renamed) == []
    screen = plan.find("SCREEN", "Home")
    assert screen is not None
    moved = _with_rule(plan, "SCREEN", key="Start")  # a screen's name is on the wire: removed and added
    assert {c.rule for c in diff(plan, moved)} == {"screen Home", "screen Start"}
