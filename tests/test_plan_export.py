"""`instrument plan export`: the Segment, jsonschema and Markdown formats of the Porter example's plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from instrument.plan import plan_of_module, render

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
pytestmark = pytest.mark.timeout(120)


def _export(module: str, fmt: str = "segment") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render(plan_of_module(module), fmt))
    return loaded


def test_the_porter_export_is_a_valid_segment_plan_of_draft_07_schemas() -> None:
    document = _export(PORTER)
    assert {rule["type"] for rule in document["rules"]} == {"TRACK", "IDENTIFY"}
    for rule in document["rules"]:
        assert set(rule) == {"key", "type", "version", "jsonSchema"}
        assert rule["version"] == 1
        schema = rule["jsonSchema"]
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        jsonschema.Draft7Validator.check_schema(schema)  # against the draft-07 meta-schema
        body = schema["properties"]["properties" if rule["type"] == "TRACK" else "traits"]
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
        label = message["event"] if message["type"] == "track" else "identify UserTraits"
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
