"""`instrument plan export`: the Segment, jsonschema and Markdown formats of the Porter example's plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from calls_app import sent_messages
from run_instrument import run_instrument

from instrument.plan import plan_of_module, render
from instrument.plan._model import plan_of_document

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
pytestmark = pytest.mark.timeout(120)


def _export(module: str, fmt: str = "segment") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render(plan_of_module(module), fmt))
    return loaded


def test_the_porter_export_is_a_valid_segment_plan_of_draft_07_schemas() -> None:
    document = _export(PORTER)
    assert {rule["type"] for rule in document["rules"]} == {"TRACK", "IDENTIFY", "GROUP"}
    for rule in document["rules"]:
        assert set(rule) == {"key", "type", "version", "jsonSchema"}
        assert rule["version"] == 1
        schema = rule["jsonSchema"]
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        jsonschema.Draft7Validator.check_schema(schema)  # against the draft-07 meta-schema
        body = schema["properties"]["properties" if rule["type"] == "TRACK" else "traits"]
        assert "groupId" not in body["properties"]
        assert "userId" not in body["properties"]
        assert "user_id" not in body["properties"]


def test_the_porter_export_uses_wire_keys_and_requires_scope_fields() -> None:
    text = render(plan_of_module(PORTER), "segment")
    assert '"proj_id"' in text
    assert "project_id" not in text
    success = next(r for r in json.loads(text)["rules"] if r["key"] == "Cluster Provisioning Success")
    body = success["jsonSchema"]["properties"]["properties"]
    assert body["required"] == ["cluster_type", "infra_id", "proj_id", "cluster_id"]
    assert body["additionalProperties"] is False
    assert body["properties"]["proj_id"]["type"] == ["integer", "string"]
    assert success["jsonSchema"]["description"] == "A cluster finished provisioning."
    traits = next(r for r in json.loads(text)["rules"] if r["type"] == "IDENTIFY")
    assert traits["key"] == "UserTraits"
    assert traits["jsonSchema"]["properties"]["traits"]["properties"]["github"] == {
        "type": "string",
        "enum": ["true", "false"],
    }


def test_two_exports_are_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for fmt in ("segment", "jsonschema", "markdown"):
        runs = [
            subprocess.run(
                [sys.executable, "-m", "instrument", "plan", "export", PORTER, "--format", fmt],
                cwd=ROOT,
                capture_output=True,
                timeout=60,
                check=True,
                env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            ).stdout
            for seed in ("1", "2")
        ]
        assert runs[0] == runs[1]
        outputs.append(runs[0])
    assert outputs[0] == render(plan_of_module(PORTER), "segment").encode()


def test_the_jsonschema_format_holds_one_draft_07_schema_per_event(porter_messages: list[dict[str, Any]]) -> None:
    document = _export(PORTER, "jsonschema")
    payloads = porter_messages
    for label, schema in document["events"].items():
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["title"] in label
    for message in payloads:
        label = {"track": message.get("event"), "identify": "identify UserTraits"}.get(message["type"])
        label = label or "group ProjectMembership"
        jsonschema.validate(message, document["events"][label], cls=jsonschema.Draft7Validator)
    wrong = {**payloads[1], "event": "Something Else"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, document["events"][payloads[1]["event"]], cls=jsonschema.Draft7Validator)


def test_the_markdown_catalog_lists_events_scope_types_and_docs() -> None:
    text = render(plan_of_module(PORTER), "markdown")
    assert "### Cluster Provisioning Success" in text
    assert "A cluster finished provisioning." in text
    assert "Scope `cluster`, class `ClusterProvisioningSuccess`" in text
    assert "| `infra_id` | integer | yes |  |" in text
    assert "| `github` | one of 'true', 'false' | yes |  |" in text


def test_the_committed_example_plan_is_in_step_with_the_code() -> None:
    committed = (ROOT / "examples" / "porter" / "plan.json").read_text()
    assert committed == render(plan_of_module(PORTER), "segment"), (
        "examples/porter/plan.json is stale: run "
        "`python -m instrument plan export examples.porter.analytics -o examples/porter/plan.json`"
    )


def test_the_iglu_export_names_each_schema_as_iglu_allows_and_validates_as_draft_07(tmp_path: Path) -> None:
    done = run_instrument("plan", "export", PORTER, "--format", "iglu", "--vendor", "dev.porter", "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 47  # one per track; identify and group have no Iglu schema
    success = tmp_path / "dev.porter/cluster_provisioning_success/jsonschema/1-0-0"
    document = json.loads(success.read_text())
    assert document["self"] == {
        "vendor": "dev.porter",
        "name": "cluster_provisioning_success",
        "format": "jsonschema",
        "version": "1-0-0",
    }
    assert document["description"] == "A cluster finished provisioning."
    assert document["required"] == ["cluster_type", "infra_id", "proj_id", "cluster_id"]
    jsonschema.Draft7Validator.check_schema({k: v for k, v in document.items() if k not in ("$schema", "self")})
    done = run_instrument("plan", "export", PORTER, "--format", "iglu", "--vendor", "no/slash", "-o", str(tmp_path))
    assert done.returncode == 2
    assert "is not a reversed domain name" in done.stderr


# -- every call ---------------------------------------------------------------------------------------

CALLS_APP = "calls_app"


def test_a_plan_of_all_six_calls_exports_draft_07_schemas_that_its_messages_satisfy() -> None:
    plan = plan_of_module(CALLS_APP)
    assert [(r.type, r.key) for r in plan.rules] == [
        ("TRACK", "Seat Added"),
        ("IDENTIFY", "Person"),
        ("GROUP", "Membership"),
        ("PAGE", "Pricing"),
        ("SCREEN", "Home"),
        ("ALIAS", "Signup"),
    ]
    segment = json.loads(render(plan, "segment"))
    assert [r["type"] for r in segment["rules"]] == ["TRACK", "IDENTIFY", "GROUP", "PAGE", "SCREEN"]  # no ALIAS
    plain = json.loads(render(plan, "jsonschema"))["events"]
    assert sorted(plain) == sorted(r.label() for r in plan.rules)
    for schema in [r["jsonSchema"] for r in segment["rules"]] + list(plain.values()):
        jsonschema.Draft7Validator.check_schema(schema)  # against the draft-07 meta-schema
    by_type = {r.type.lower(): r for r in plan.rules}
    for message in sent_messages():
        rule = by_type[message["type"]]
        jsonschema.validate(message, plain[rule.label()], cls=jsonschema.Draft7Validator)
        jsonschema.validate(message, rule.message_schema(), cls=jsonschema.Draft7Validator)
    assert plain["group Membership"]["required"] == ["type", "groupId", "userId", "traits"]
    assert plain["page Pricing"]["properties"]["name"] == {"const": "Pricing"}


def test_the_six_calls_round_trip_through_the_segment_and_jsonschema_formats() -> None:
    plan = plan_of_module(CALLS_APP)
    again = plan_of_document(json.loads(render(plan, "jsonschema")), "x")
    assert again.rules == plan.rules
    from_segment = plan_of_document(json.loads(render(plan, "segment")), "x")
    assert from_segment.rules == tuple(r for r in plan.rules if r.type != "ALIAS")


def test_typewriter_rudder_and_markdown_carry_the_group_page_and_screen_rules() -> None:
    plan = plan_of_module(CALLS_APP)
    typewriter = json.loads(render(plan, "typewriter"))["rules"]
    jsonschema.Draft7Validator.check_schema(typewriter["group"])
    assert typewriter["group"]["properties"]["traits"]["required"] == ["role"]
    rudder = render(plan, "rudder")
    for kind in ("group", "page", "screen"):
        assert f"event_type: {kind}" in rudder
    text = render(plan, "markdown")
    for section in ("## Groups", "## Pages", "### Pricing", "## Screens", "## Aliases", "| `role` |"):
        assert section in text


@pytest.mark.parametrize(("fmt", "suffix"), [("rudder", ".yaml"), ("typewriter", ".json")])
def test_the_group_page_and_screen_rules_survive_an_import_and_export(tmp_path: Path, fmt: str, suffix: str) -> None:
    from instrument.plan._import import read_foreign

    plan = plan_of_module(CALLS_APP)
    path = tmp_path / f"plan{suffix}"
    path.write_text(render(plan, fmt))
    again = read_foreign(str(path))[1]
    assert "GROUP" in {r.type for r in again.rules}
    assert render(again, fmt) == render(plan, fmt)


PERSONAL_MODULE = """
from typing import Annotated
from instrument import EventName, Personal, Track

class Events(EventName):
    SIGNED_UP = "Signed Up"

class SignedUp(Track, event=Events.SIGNED_UP):
    email: Annotated[str, Personal]
    plan: str
"""


def test_a_personal_property_is_flagged_in_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "personal_plan.py").write_text(PERSONAL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    plan = plan_of_module("personal_plan")
    segment = json.loads(render(plan, "segment"))
    (rule,) = segment["rules"]
    properties = rule["jsonSchema"]["properties"]["properties"]["properties"]
    assert properties["email"]["x-personal"] is True
    assert "x-personal" not in properties["plan"]
    assert '"x-personal": true' in render(plan, "jsonschema")
    assert "| `email` | string | yes | personal. |" in render(plan, "markdown")
