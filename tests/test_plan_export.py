"""`instrument plan export`: the schema rules of issue 11, checked with the jsonschema library."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import json
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import instrument
from examples.porter.service import Applications, Projects, Request, Users, handle
from instrument import EventName, Track, analytics_scope, field, to_message
from instrument.plan import load_plan, plan_of_module, render
from instrument.plan._types import Inexpressible, annotation_schema
from instrument.plan._validate import DATATYPE_MISMATCH, REQUIRED_MISSING, Checker
from instrument.testing import capture_events

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
pytestmark = pytest.mark.timeout(120)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    label: str | None


class Span(NamedTuple):
    start: dt.date
    days: int


class Events(EventName):
    RICH_THING_SENT = "Rich Thing Sent"


class RichThingSent(Track, event=Events.RICH_THING_SENT):
    """Every supported annotation, to check the schema against what the encoder sends."""

    when: dt.datetime
    day: dt.date
    clock: dt.time
    ident: uuid.UUID
    took: dt.timedelta
    price: Decimal
    blob: bytes
    color: Color
    level: Level
    choice: Literal["a", "b", 3]
    tags: set[str]
    counts: dict[str, int]
    maybe: int | None
    ratios: list[float]
    pair: tuple[int, str]
    nested: list[dict[str, bool]]
    anything: Any
    point: Point
    span: Span
    note: Annotated[str, instrument.Truncatable] = "n/a"
    renamed: int = field(default=0, key="renamedKey", doc="Sent under another key.")


def _export(module: str, fmt: str = "segment") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render(plan_of_module(module), fmt))
    return loaded


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (str, {"type": "string"}),
        (int | None, {"type": ["integer", "null"]}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (dt.date, {"type": "string", "format": "date"}),
        (dt.time, {"type": "string", "format": "time"}),
        (uuid.UUID, {"type": "string", "format": "uuid"}),
        (dt.datetime | None, {"type": ["string", "null"], "format": "date-time"}),
        (dt.timedelta, {"type": "number"}),
        (Decimal, {"type": "number"}),
        (bytes, {"type": "string", "contentEncoding": "base64"}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (Literal["x", "y"], {"type": "string", "enum": ["x", "y"]}),
        (Literal["x"] | None, {"type": ["null", "string"], "enum": ["x", None]}),
        (set[str], {"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        (frozenset[int], {"type": "array", "uniqueItems": True, "items": {"type": "integer"}}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (int | str, {"type": ["integer", "string"]}),
        (Any, {}),
        (Annotated[str, instrument.Truncatable], {"type": "string"}),
        (
            Point,
            {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "label": {"type": ["string", "null"]}},
                "required": ["x", "label"],
                "additionalProperties": False,
            },
        ),
        (
            Span,
            {
                "type": "object",
                "properties": {"start": {"type": "string", "format": "date"}, "days": {"type": "integer"}},
                "required": ["start", "days"],
                "additionalProperties": False,
            },
        ),
    ],
    ids=repr,
)
def test_annotations_map_to_the_schema_of_what_the_encoder_sends(annotation: Any, schema: dict[str, Any]) -> None:
    assert annotation_schema(annotation) == schema
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (list[object], "object admits values the encoder cannot send"),
        (dict[int, str], "mapping keys of type int (JSON object keys are str)"),
        (complex, "complex has no JSON encoding"),
    ],
    ids=repr,
)
def test_annotations_without_a_json_form_are_refused(annotation: Any, message: str) -> None:
    with pytest.raises(Inexpressible, match=re.escape(message)):
        annotation_schema(annotation)


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


def _porter_payloads() -> list[dict[str, Any]]:
    with capture_events() as events:
        with analytics_scope(user_id=42):
            Users().login("ada@example.com", github=True)
            project_id = Projects().create("demo")
        request = Request(user_id=42, project_id=project_id)
        for action in ("provision-cluster", "provision-unsupported", "provision-registry", "launch-app"):
            handle(request, action)
        handle(request, "build-stack")
        with analytics_scope(project_id=project_id):
            Applications().redeploy_from_webhook(cluster_id=3, app_name="web", app_namespace="default", image_uri="i:1")
        handle(request, "delete-project")
    return [dict(m) for m in events.messages]


def test_every_payload_the_porter_example_sends_validates_against_its_rule() -> None:
    rules = {(r["type"], r["key"]): r["jsonSchema"] for r in _export(PORTER)["rules"]}
    payloads = _porter_payloads()
    assert len(payloads) >= 10
    checked = 0
    for message in payloads:
        key = ("TRACK", message["event"]) if message["type"] == "track" else ("IDENTIFY", "UserTraits")
        jsonschema.validate(message, rules[key], cls=jsonschema.Draft7Validator)
        checked += 1
    assert checked == len(payloads)
    assert Checker(plan_of_module(PORTER)).check(payloads[0]) == []


def test_dropping_any_required_property_of_any_payload_is_required_missing_at_that_property() -> None:
    plan = plan_of_module(PORTER)
    checker = Checker(plan)
    dropped = 0
    for message in _porter_payloads():
        kind, body_key = ("TRACK", "properties") if message["type"] == "track" else ("IDENTIFY", "traits")
        rule = plan.find(kind, message["event"] if kind == "TRACK" else "UserTraits")
        assert rule is not None
        assert checker.check(message) == []
        for key in rule.body["required"]:
            broken = copy.deepcopy(message)
            del broken[body_key][key]
            violations = checker.check(broken)
            assert [(v.kind, v.field) for v in violations] == [(REQUIRED_MISSING, f"/{body_key}/{key}")]
            dropped += 1
    assert dropped >= 30


def test_a_wrong_type_is_a_datatype_mismatch_without_the_value() -> None:
    [message] = [m for m in _porter_payloads() if m.get("event") == "Cluster Provisioning Success"]
    message["properties"]["infra_id"] = "secret-text"
    [violation] = Checker(plan_of_module(PORTER)).check(message)
    assert (violation.kind, violation.field) == (DATATYPE_MISMATCH, "/properties/infra_id")
    assert "secret-text" not in violation.reason


def _rich_values() -> st.SearchStrategy[dict[str, Any]]:
    text = st.text(max_size=8)
    return st.fixed_dictionaries(
        {
            "when": st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9000, 1, 1)),
            "day": st.dates(),
            "clock": st.times(),
            "ident": st.uuids(),
            "took": st.timedeltas(),
            "price": st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20),
            "blob": st.binary(max_size=16),
            "color": st.sampled_from(Color),
            "level": st.sampled_from(Level),
            "choice": st.sampled_from(["a", "b", 3]),
            "tags": st.sets(text, max_size=4),
            "counts": st.dictionaries(text, st.integers(), max_size=3),
            "maybe": st.none() | st.integers(),
            "ratios": st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
            "pair": st.tuples(st.integers(), text),
            "nested": st.lists(st.dictionaries(text, st.booleans(), max_size=2), max_size=2),
            "anything": st.none() | st.integers() | text,
            "point": st.builds(Point, x=st.integers(), label=st.none() | text),
            "span": st.builds(Span, start=st.dates(), days=st.integers()),
        }
    )


RICH_SCHEMA = next(r for r in plan_of_module(__name__).rules if r.key == "Rich Thing Sent").message_schema()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=_rich_values())
def test_every_encodable_value_validates_against_the_exported_schema(values: dict[str, Any]) -> None:
    with analytics_scope(user_id=1):
        message = to_message(RichThingSent(**values))
    validator = jsonschema.Draft7Validator(RICH_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(message)] == []
    assert "renamedKey" in message["properties"]


def test_optional_and_defaulted_properties_are_not_required() -> None:
    [rule] = [r for r in plan_of_module(__name__).rules if r.key == "Rich Thing Sent"]
    required = rule.body["required"]
    assert "maybe" not in required  # X | None
    assert "note" not in required
    assert "renamedKey" not in required
    assert "when" in required
    assert rule.body["properties"]["renamedKey"] == {"type": "integer", "description": "Sent under another key."}
    assert "renamed" not in rule.body["properties"]


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


def test_the_jsonschema_format_holds_one_draft_07_schema_per_event() -> None:
    document = _export(PORTER, "jsonschema")
    payloads = _porter_payloads()
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


def test_an_exported_file_loads_back_to_the_same_plan(tmp_path: Path) -> None:
    plan = plan_of_module(PORTER)
    for fmt in ("segment", "jsonschema"):
        path = tmp_path / f"{fmt}.json"
        path.write_text(render(plan, fmt))
        loaded = load_plan(str(path))
        assert [(r.type, r.key, r.body, r.doc) for r in loaded.rules] == [
            (r.type, r.key, r.body, r.doc) for r in plan.rules
        ]


def test_the_committed_example_plan_is_in_step_with_the_code() -> None:
    committed = (ROOT / "examples" / "porter" / "plan.json").read_text()
    assert committed == render(plan_of_module(PORTER), "segment"), (
        "examples/porter/plan.json is stale: run "
        "`python -m instrument plan export examples.porter.analytics -o examples/porter/plan.json`"
    )
