"""Static typing: mypy --strict and pyright strict accept correct use and report every wrong line.

A real mypy run on a sample module (each wrong line carries ``# E: <code>``), and a user project with
~40 misuses checked by both mypy --strict and pyright strict (the ``basedpyright`` package) against the
package installed as the README installs it: an error on every misuse line, none elsewhere, and the
project without those lines clean in both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from user_venv import empty_venv, install_editable, mypy, pyright

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """\
from __future__ import annotations

import asyncio

from instrument import ClusterTrack, EventName, Identify, analytics_scope, field, identify, track, tracks


class Events(EventName):
    CLUSTER_CREATED = "Cluster Created"


class ClusterCreated(ClusterTrack, event=Events.CLUSTER_CREATED):
    infra_id: int
    region: str = "us"
    tags: list[str] = field(default_factory=list)


class Traits(Identify):
    email: str


@tracks(ClusterCreated)
def create(infra_id: int, region: str = "us") -> str:
    return region


@tracks(Events.CLUSTER_CREATED, scope="cluster", props=lambda call: {"n": call.result})
async def acreate(infra_id: int) -> int:
    await asyncio.sleep(0)
    return infra_id


class Service:
    @tracks(ClusterCreated)
    def create(self, infra_id: int) -> str:
        return str(infra_id)


with analytics_scope(user_id=1, project_id=2, cluster_id=3):
    result: str = create(1, region="eu")
    ok = ClusterCreated(infra_id=1, cluster_id=9)
    ok2 = ClusterCreated(infra_id=1, region="eu", tags=["a"], project_id="p")
    track(ok)
    identify(Traits(email="a@b", user_id=1))
    n: int = asyncio.run(acreate(1))
    m: str = Service().create(3)
    bad_result: int = create(1)  # E: assignment
    create("1")  # E: arg-type
    create(1, 2)  # E: arg-type
    create(1, colour="x")  # E: call-arg
    Service().create("3")  # E: arg-type
    unknown = ClusterCreated(infra_id=1, colour="red")  # E: call-arg
    wrong = ClusterCreated(infra_id="1")  # E: arg-type
    missing = ClusterCreated()  # E: call-arg
    bad_tags = ClusterCreated(infra_id=1, tags=[1])  # E: list-item
    s: str = asyncio.run(acreate(1))  # E: assignment
    track(Traits(email="x"))  # E: arg-type
"""


def _expected(source: str) -> set[tuple[int, str]]:
    found = set()
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"# E: ([a-z-]+)$", line)
        if match:
            found.add((number, match.group(1)))
    return found


@pytest.mark.timeout(300)
def test_mypy_strict_accepts_good_lines_and_reports_exactly_the_wrong_ones(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT), "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--show-error-codes",
            "--no-color-output",
            "--no-error-summary",
            str(sample),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    output = completed.stdout + completed.stderr
    reported = set()
    for line in completed.stdout.splitlines():
        match = re.match(r".*sample\.py:(\d+): error: .*\[([a-z-]+)\]$", line)
        if match:
            reported.add((int(match.group(1)), match.group(2)))
        else:
            assert ": note:" in line, output  # nothing but errors on sample.py and their notes
    assert completed.returncode == 1, output
    assert reported == _expected(SAMPLE), output


# Every line marked MISUSE must get an error from both checkers; no other line may get one.
USER_PROJECT = """\
from __future__ import annotations

from dataclasses import InitVar

from instrument import (
    Alias,
    ApplicationTrack,
    ClusterTrack,
    EventName,
    Group,
    Identify,
    Page,
    ProjectGroup,
    ProjectTrack,
    ScopeId,
    ScopeResolvers,
    Screen,
    Track,
    alias,
    analytics_scope,
    bind_scope,
    derived,
    extract_scope,
    group,
    identify,
    page,
    reset_scope,
    screen,
    track,
    tracks,
)


class Events(EventName):
    PROJECT_RENAMED = "Project Renamed"
    CLUSTER_CREATED = "Cluster Created"
    APP_DEPLOYED = "App Deployed"
    STACK_BUILT = "Stack Built"
    USER_CREATED = "User Created"
    CHECK_DONE = "Check Done"


def full_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}"


def true_false(github_connected: bool) -> str:
    return "true" if github_connected else "false"


class ProjectRenamed(ProjectTrack, event=Events.PROJECT_RENAMED):
    name: str


class ClusterCreated(ClusterTrack, event=Events.CLUSTER_CREATED):
    infra_id: int


class AppDeployed(ApplicationTrack, event=Events.APP_DEPLOYED):
    image: str


class StackTrack(ProjectTrack, defines_scope="stack"):
    stack_name: str | None = None
    stack_id: ScopeId | None = None


class StackBuilt(StackTrack, event=Events.STACK_BUILT):
    ok: bool


class UserCreated(Track, event=Events.USER_CREATED):
    first_name: InitVar[str]
    last_name: InitVar[str]
    github_connected: InitVar[bool] = False
    name: str = derived(full_name)
    github: str = derived(true_false)


class Mismatched(Track, event=Events.CHECK_DONE):
    first_name: InitVar[str]
    last_name: InitVar[str]
    name: int = derived(full_name)  # MISUSE derived result of the wrong type


class Traits(Identify):
    email: str


class Company(Group):
    company_name: str


class Membership(ProjectGroup):
    role: str


class Pricing(Page, name="Pricing", category="Docs"):
    plan: str


class Home(Screen, name="Home"):
    tab: str


@tracks(ClusterCreated)
def create_cluster(infra_id: int) -> int:
    return infra_id


@tracks(Events.CHECK_DONE, scope="cluster")
def check() -> None:
    pass


def resolve_user(request: object) -> int:
    return 1


resolvers: ScopeResolvers = {"user_id": resolve_user, "project_id": lambda request: "p"}
carried = extract_scope({"instrument-scope": "1:{}"})

with analytics_scope(user_id=1, project_id=2, cluster_id=3, app_name="a", app_namespace="n", chart_name="c"):
    track(ProjectRenamed(name="x"))
    track(ClusterCreated(infra_id=1, cluster_id=4))
    track(AppDeployed(image="i", app_name="b"))
    track(UserCreated(first_name="Ada", last_name="Lovelace", github_connected=True))
    identify(Traits(email="a@b"))
    created: int = create_cluster(3)
    check()
    with StackTrack.analytics_scope(stack_name="s", stack_id=9):
        track(StackBuilt(ok=True))
    token = bind_scope(registry_id=5)
    reset_scope(token)
    with analytics_scope(**carried):
        pass
    user: ScopeId | None = carried.get("user_id")

    ProjectRenamed(name="x", cluster_id=3)  # MISUSE wrong-scope field
    ClusterCreated(infra_id=1, app_name="a")  # MISUSE wrong-scope field
    ClusterCreated(infra_id=1, registry_id=2)  # MISUSE wrong-scope field
    StackBuilt(ok=True, cluster_id=1)  # MISUSE wrong-scope field on a user-defined scope
    analytics_scope(projct_id=7)  # MISUSE misspelled binding
    analytics_scope(user_id=[42])  # MISUSE wrong-typed binding
    analytics_scope(app_name=5)  # MISUSE wrong-typed binding
    analytics_scope(stack_name="s")  # MISUSE a user-defined field through the built-in binder
    bind_scope(clusterid=1)  # MISUSE misspelled binding
    bind_scope(project_id=1.5)  # MISUSE wrong-typed binding
    StackTrack.analytics_scope(stack_nam="s")  # MISUSE misspelled user-defined binding
    StackTrack.analytics_scope(stack_name=5)  # MISUSE wrong-typed user-defined binding
    ProjectTrack.analytics_scope(cluster_id=1)  # MISUSE a field of another scope
    UserCreated(first_name="Ada")  # MISUSE derived input missing
    UserCreated(first_name="Ada", last_name=3)  # MISUSE derived input mistyped
    UserCreated(first_name="Ada", last_name="L", github_connected="yes")  # MISUSE derived input mistyped
    UserCreated(first_name="Ada", last_name="L", name="Ada L")  # MISUSE a derived property given
    ClusterCreated(infra_id="1")  # MISUSE wrong property type
    ClusterCreated()  # MISUSE missing property
    ClusterCreated(infra_id=1, cluster_id=[1])  # MISUSE wrong-typed scope override
    AppDeployed(image="i", app_name=5)  # MISUSE wrong-typed application field
    StackBuilt(ok=True, stack_name=3)  # MISUSE wrong-typed user-defined field
    track(Traits(email="x"))  # MISUSE an identify sent as a track
    Traits(email=1)  # MISUSE wrong trait type
    create_cluster("3")  # MISUSE wrong argument type
    bad_resolvers: ScopeResolvers = {"usr_id": resolve_user}  # MISUSE misspelled resolver
    worse_resolvers: ScopeResolvers = {"user_id": lambda request: [1]}  # MISUSE resolver returns a non-id
    carried["projct_id"]  # MISUSE misspelled extracted field
    group(Company(group_id="acme", company_name="Acme"))
    group(Membership(role="admin"))
    group(Membership(role="admin", project_id=9))
    page(Pricing(plan="pro"))
    screen(Home(tab="feed"))
    alias(Alias(previous_id="anon-1"))
    alias(Alias(previous_id="anon-1", user_id=5))
    group(Company(company_name="Acme"))  # MISUSE a Group without its group id given
    Membership(role="admin", group_id=3)  # MISUSE a group id given where the project is the group
    Membership(role="admin", cluster_id=3)  # MISUSE a field of another scope on a group
    Pricing(plan=3)  # MISUSE mistyped page property
    Home(tab=None)  # MISUSE mistyped screen property
    Alias()  # MISUSE an Alias without a previous id
    Alias(user_id=3)  # MISUSE an Alias without a previous id
    page(Home(tab="x"))  # MISUSE a screen sent as a page
    group(Traits(email="x"))  # MISUSE an identify sent as a group
"""

MISUSE_LINES = {n for n, line in enumerate(USER_PROJECT.splitlines(), start=1) if "# MISUSE" in line}
WITHOUT_MISUSES = "\n".join(line for line in USER_PROJECT.splitlines() if "# MISUSE" not in line) + "\n"
README_FIRST_EXAMPLE = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A venv with the package installed as the README says, a project with misuses, and one without
    (which also holds the README's first example and Porter's analytics module)."""
    root = tmp_path_factory.mktemp("typing")
    python = empty_venv(root / "venv")
    install = install_editable(root / "venv")
    assert install.returncode == 0, install.stderr
    with_misuses, clean = root / "with_misuses", root / "clean"
    for project, source in ((with_misuses, USER_PROJECT), (clean, WITHOUT_MISUSES)):
        project.mkdir()
        (project / "app.py").write_text(source, encoding="utf-8")
    (clean / "readme.py").write_text(README_FIRST_EXAMPLE, encoding="utf-8")
    (clean / "porter.py").write_text((ROOT / "examples" / "porter" / "analytics.py").read_text(), encoding="utf-8")
    return python, with_misuses, clean


def _mypy_error_lines(completed: subprocess.CompletedProcess[str]) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^app\.py:(\d+): error:", completed.stdout, re.MULTILINE)}


def _pyright_error_lines(completed: subprocess.CompletedProcess[str]) -> set[int]:
    report = json.loads(completed.stdout)
    return {d["range"]["start"]["line"] + 1 for d in report["generalDiagnostics"] if d["severity"] == "error"}


def test_the_user_project_has_about_thirty_misuses() -> None:
    assert len(MISUSE_LINES) >= 25


# Each checker: how to run it on files of a project, and the app.py lines its output reports errors on.
CHECKERS = {"mypy": (mypy, _mypy_error_lines), "pyright": (pyright, _pyright_error_lines)}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_strict_checker_reports_an_error_on_every_misuse_line_and_nowhere_else_and_the_readme_is_clean(
    checker: str, installed: tuple[Path, Path, Path]
) -> None:
    run, error_lines = CHECKERS[checker]
    python, with_misuses, clean = installed
    completed = run(python, with_misuses, "app.py")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert error_lines(completed) == MISUSE_LINES, completed.stdout
    without = run(python, clean, "app.py", "readme.py", "porter.py")
    assert without.returncode == 0, without.stdout + without.stderr
    assert not error_lines(without), without.stdout
