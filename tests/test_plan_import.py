"""`instrument plan import`: Segment rules, Typewriter's plan.json, Iglu schemas and rudder-cli YAML to a typed
module of Track classes that `plan export` writes back unchanged; the module passes `mypy --strict`."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from run_instrument import run_instrument

from instrument.plan import import_plan
from instrument.plan._import import annotation_of, declared_rules
from instrument.plan._types import annotation_schema

pytestmark = pytest.mark.timeout(300)

FIXTURES = Path(__file__).resolve().parent / "plan_fixtures"
PORTER = "examples.porter.analytics"
# (name, fixture, format): each fixture is written from the format's public documentation (see make.py).
CASES = [
    ("segment", FIXTURES / "segment.json", "segment"),
    ("typewriter", FIXTURES / "typewriter-plan.json", "typewriter"),
    ("iglu", FIXTURES / "iglu", "iglu"),
    ("rudder", FIXTURES / "rudder.yaml", "rudder"),
]


def _events(fixture: Path, fmt: str) -> int:
    if fmt == "segment":
        return sum(r["type"] == "TRACK" for r in json.loads(fixture.read_text())["rules"])
    if fmt == "typewriter":
        return len(json.loads(fixture.read_text())["rules"]["events"])
    if fmt == "iglu":
        return len([p for p in fixture.rglob("*") if p.is_file()])
    return len(next(d for d in yaml.safe_load_all(fixture.read_text()) if d["kind"] == "events")["spec"]["events"])


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each fixture imported into its own module, in one directory."""
    out = tmp_path_factory.mktemp("imported")
    for name, fixture, _fmt in CASES:
        done = run_instrument("plan", "import", str(fixture), "-o", str(out / f"{name}_plan.py"))
        assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def mypy_strict(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``mypy --strict`` on ``modules``, run in ``cwd``, with a cache of this module's own (new, so nothing
    stale): the standard library and instrument are analysed by the first run only (~1 s a run saved)."""
    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(cwd: Path, *modules: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), *modules],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    return run


@pytest.mark.parametrize(("name", "fixture", "fmt"), CASES, ids=[c[0] for c in CASES])
def test_import_then_export_gives_the_same_plan(imported: Path, name: str, fixture: Path, fmt: str) -> None:
    assert _events(fixture, fmt) >= 40
    target = imported / f"out-{name}"
    done = run_instrument("plan", "export", f"{name}_plan", "--format", fmt, "-o", str(target), cwd=imported)
    assert done.returncode == 0, done.stderr
    if fmt == "iglu":
        assert _files(target) == _files(fixture)
    else:
        assert target.read_text() == fixture.read_text()


def test_the_generated_modules_pass_mypy_strict(
    imported: Path, mypy_strict: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    modules = sorted(str(p) for p in imported.glob("*_plan.py"))
    assert len(modules) == len(CASES)
    done = mypy_strict(imported, *modules)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_generated_module_is_typed_classes_with_wire_keys_and_docs(imported: Path) -> None:
    source = (imported / "segment_plan.py").read_text()
    assert "class OrderCompleted(PlannedTrack, event=Events.ORDER_COMPLETED):" in source
    # What every rule says beyond its properties (no scope keyword, other properties allowed), kept once.
    assert "SHARED_PLAN: dict[str, Any] = {'body': {'x-scope': None, 'additionalProperties': None}}" in source
    assert '    """An order was completed."""' in source
    assert "    order_id: str\n" in source
    assert "    invitee_email: Annotated[str, {'format': 'email'}] = field(key='invitee email')" in source
    assert "    class_: str = field(default=\"\", key='class', doc='A Python keyword as a key')" in source
    assert "    image_url: str = field(default=\"\", key='imageURL', doc='Image of the product')" in source
    # An optional property defaults to its type's empty value only where that value meets the plan.
    assert "    price: Annotated[float, {'minimum': 0}] = field(default=0.0, doc='Price in dollars')" in source
    assert "    quantity: Annotated[int | None, {'minimum': 1}] = None" in source
    # A name outside the "[Noun] [Verb]" convention is kept as the plan spells it.
    assert "LEGACY: frozenset[str] = frozenset([\n    'Product Added to Wishlist',\n" in source


def test_a_plan_export_imports_back_to_the_same_export(tmp_path: Path) -> None:
    for fmt, suffix in (("segment", ".json"), ("typewriter", ".json"), ("rudder", ".yaml")):
        first = tmp_path / f"porter-{fmt}{suffix}"
        done = run_instrument("plan", "export", "examples.porter.analytics", "--format", fmt, "-o", str(first))
        assert done.returncode == 0, done.stderr
        module = tmp_path / f"porter_{fmt}.py"
        done = run_instrument("plan", "import", str(first), "-o", str(module))
        assert done.returncode == 0, done.stderr
        if fmt != "rudder":  # rudder-cli has no scope: its events stay unscoped, their fields plain properties
            source = module.read_text()
            assert "class Events(EventName, legacy=LEGACY, wire_keys={'project_id': 'proj_id'}):" in source
            assert (
                'class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):'
                in source
            )
        again = tmp_path / f"again-{fmt}"
        done = run_instrument("plan", "export", f"porter_{fmt}", "--format", fmt, "-o", str(again), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert again.read_text() == first.read_text()


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("{}", ".json", "not a plan"),
        ('{"rules": {"events": 3}}', ".json", "rules.events is not a list"),
        ('{"self": {"vendor": "v"}}', ".json", "self needs vendor, name and version"),
        ("kind: events\n", ".yaml", "expected one document each of kind events, properties and tp"),
        ("a: [", ".yaml", "not YAML"),
    ],
)
def test_a_bad_plan_is_exit_2_naming_the_file(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(text)
    done = run_instrument("plan", "import", str(bad))
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_importing_instrument_or_its_plan_tools_does_not_import_yaml() -> None:
    code = "import sys, instrument, instrument.plan; assert 'yaml' not in sys.modules, 'yaml imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_plan_check_and_diff_read_a_typewriter_plan_and_rudder_yaml(tmp_path: Path) -> None:
    for fmt, suffix in (("typewriter", ".json"), ("rudder", ".yaml")):
        path = tmp_path / f"porter{suffix}"
        assert run_instrument("plan", "export", PORTER, "--format", fmt, "-o", str(path)).returncode == 0
        if fmt == "typewriter":
            done = run_instrument("plan", "check", PORTER, "--against", str(path))
            assert (done.returncode, done.stdout) == (0, f"{path} is up to date\n"), done.stderr
        done = run_instrument("plan", "diff", str(path), PORTER, "--json")
        assert done.returncode == 0, done.stderr
        changes = json.loads(done.stdout)["changes"]
        # rudder-cli has no identify rules and no scope keyword: the code adds those, nothing else.
        assert all(c["schemaver"] != "MODEL" for c in changes), changes


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
LEAF = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])
        | st.lists(st.sampled_from(["string", "integer", "number", "null"]), min_size=1, max_size=3, unique=True),
        "format": st.sampled_from(["date-time", "date", "time", "uuid", "email", "uri"]),
        "enum": st.lists(JSON_SCALARS, min_size=1, max_size=3, unique=True),
        "maxLength": st.integers(0, 9),
        "minimum": st.integers(-3, 3),
    },
)
SCHEMAS = st.recursive(
    LEAF,
    lambda inner: (
        st.fixed_dictionaries({"type": st.just("array")}, optional={"items": inner})
        | st.fixed_dictionaries({"type": st.just("object")}, optional={"additionalProperties": inner})
    ),
    max_leaves=4,
)


@given(SCHEMAS)
@settings(max_examples=300, deadline=None)
def test_every_property_schema_gets_an_annotation_that_says_it_exactly(schema: dict[str, Any]) -> None:
    kind, extra = annotation_of(schema)
    assert {**annotation_schema(kind.obj), **extra} == schema


HOSTILE = ['"""', "\\", "'", "\n", "\x00", "os.system('x')", "{", "}", "#", "\u2028", "😀", " ", "A"]
TEXTS = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=3), min_size=1, max_size=5).map("".join).filter(bool)


@given(TEXTS, TEXTS, TEXTS)
@settings(max_examples=60, deadline=None)
def test_hostile_names_keys_and_descriptions_stay_data_in_the_module(event: str, key: str, description: str) -> None:
    body = {"type": "object", "properties": {key: {"type": "string", "description": description}}, "required": [key]}
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"context": {}, "traits": {}, "properties": body},
        "required": ["properties"],
        "description": description,
    }
    document = {"rules": [{"key": event, "type": "TRACK", "version": 1, "jsonSchema": schema}]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.json"
        path.write_text(json.dumps(document))
        _fmt, source = import_plan(str(path), "hostile_plan")  # raises unless it exports back unchanged
    # The module runs and declares exactly the plan's texts: none of them became code.
    [rule] = declared_rules(source, "hostile_plan").values()
    assert rule.key == event
    assert rule.message_schema() == schema


@pytest.mark.parametrize(("fmt", "suffix"), [("segment", ".json"), ("typewriter", ".json"), ("rudder", ".yaml")])
def test_group_page_screen_and_alias_rules_become_classes_that_export_back_and_type_check(
    tmp_path: Path, fmt: str, suffix: str, mypy_strict: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    source = tmp_path / f"plan{suffix}"
    done = run_instrument("plan", "export", "calls_app", "--format", fmt, "-o", str(source), cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr
    _, text = import_plan(str(source), f"calls_{fmt}")  # raises unless the module exports the same plan back
    classes = {line.split("(")[1].split(",")[0].rstrip("):") for line in text.splitlines() if line.startswith("class")}
    # rudder-cli keeps no scope: its group is a Group whose groupId is given.
    expected = {"segment": {"ProjectGroup", "Page", "Screen"}, "typewriter": {"ProjectGroup"}}
    assert expected.get(fmt, {"Group", "Page", "Screen"}) <= classes
    module = tmp_path / f"calls_{fmt}.py"
    module.write_text(text)
    checked = mypy_strict(tmp_path, str(module))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = tmp_path / f"again{suffix}"
    done = run_instrument("plan", "export", f"calls_{fmt}", "--format", fmt, "-o", str(again), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert again.read_text() == source.read_text()


def test_an_alias_rule_becomes_an_alias_class() -> None:
    from calls_app import Signup  # noqa: F401 - the module declares all six calls

    from instrument.plan import plan_of_module, render

    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "plan.json"
        source.write_text(render(plan_of_module("calls_app"), "jsonschema"))
        _, text = import_plan(str(source), "calls_jsonschema")
    assert "class Signup(Alias):" in text
