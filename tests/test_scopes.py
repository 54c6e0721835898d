"""Scopes: nesting, define_scope, and analytics_scope binding across threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instrument import (
    ConfigurationError,
    Scope,
    ScopeError,
    analytics_scope,
    bind_scope,
    current_scope,
    define_scope,
    reset_scope,
)
from instrument._scopes import attach, bound_in, default_wire_key, detach, get_scope, is_id, known_fields, scopes

_counter = itertools.count()


def unique(prefix: str = "s") -> str:
    """A fresh identifier: scopes are global and cannot be undefined, so each test makes its own."""
    return f"{prefix}{next(_counter)}_{threading.get_ident() % 1000}"


# -- built-in scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parent", "fields"),
    [
        ("user", None, ("user_id",)),
        ("project", "user", ("user_id", "project_id")),
        ("cluster", "project", ("user_id", "project_id", "cluster_id")),
        ("registry", "project", ("user_id", "project_id", "registry_id")),
        (
            "application",
            "cluster",
            ("user_id", "project_id", "cluster_id", "app_name", "app_namespace", "chart_name"),
        ),
    ],
)
def test_built_in_scopes_nest_and_list_their_parents_fields_first(
    name: str, parent: str | None, fields: tuple[str, ...]
) -> None:
    scope = get_scope(name)
    assert scope.parent == parent
    assert scope.fields == fields
    assert scope.property_fields == tuple(f for f in fields if f != "user_id")


def test_get_scope_of_an_unknown_name_is_a_scope_error_listing_known_scopes() -> None:
    with pytest.raises(ScopeError, match="cluster") as info:
        get_scope("nope")
    assert info.value.scope == "nope"


def test_scopes_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        scopes()["x"] = get_scope("user")  # type: ignore[index]


# -- define_scope ---------------------------------------------------------------------------------


def test_define_scope_adds_a_nested_scope_with_its_fields() -> None:
    name, field = unique("team"), unique("team_id")
    scope = define_scope(name, parent="project", fields=[field])
    assert isinstance(scope, Scope)
    assert scope.parent == "project"
    assert scope.own_fields == (field,)
    assert scope.fields == ("user_id", "project_id", field)
    assert get_scope(name) is scope
    assert field in known_fields()
    assert default_wire_key(field) == field


def test_define_scope_under_a_user_defined_parent() -> None:
    parent, child = unique("org"), unique("dept")
    parent_field, child_field = unique("org_id"), unique("dept_id")
    define_scope(parent, parent="user", fields=[parent_field])
    scope = define_scope(child, parent=parent, fields=[child_field])
    assert scope.fields == ("user_id", parent_field, child_field)


def test_define_scope_with_a_mapping_sets_the_default_wire_key() -> None:
    name, field = unique("ws"), unique("workspace_id")
    define_scope(name, fields={field: "ws_id"})
    assert default_wire_key(field) == "ws_id"


def test_redefining_a_scope_identically_returns_the_same_scope() -> None:
    name, field = unique("same"), unique("same_id")
    first = define_scope(name, parent="cluster", fields=[field])
    assert define_scope(name, parent="cluster", fields=[field]) is first


def test_redefining_a_scope_differently_is_a_configuration_error() -> None:
    name, field = unique("diff"), unique("diff_id")
    define_scope(name, parent="cluster", fields=[field])
    with pytest.raises(ConfigurationError, match="already defined"):
        define_scope(name, parent="project", fields=[field])
    with pytest.raises(ConfigurationError, match="already defined"):
        define_scope(name, parent="cluster", fields=[field, unique("other_id")])


def test_define_scope_with_an_unknown_parent_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown parent scope 'nowhere'"):
        define_scope(unique("orphan"), parent="nowhere", fields=[unique("x_id")])


@pytest.mark.parametrize("bad", ["not an identifier", "1abc", ""])
def test_define_scope_rejects_bad_scope_and_field_names(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        define_scope(bad, fields=[unique("ok_id")])
    with pytest.raises(ConfigurationError):
        define_scope(unique("okname"), fields=[bad])


@pytest.mark.parametrize("bad", ["class", "None", "_self", "_private"])
def test_define_scope_rejects_field_names_no_track_could_take_as_keywords(bad: str) -> None:
    # Such a field would break every Track of the scope (its generated __init__ and signature).
    with pytest.raises(ConfigurationError, match=f"not a keyword and not starting with '_', got {bad!r}"):
        define_scope(unique("kw"), fields=[bad])
    with pytest.raises(ConfigurationError):
        define_scope(unique("kw"), fields={bad: "wire"})
    assert bad not in known_fields()


def test_define_scope_rejects_a_field_already_in_the_parent() -> None:
    with pytest.raises(ConfigurationError, match="project_id"):
        define_scope(unique("clash"), parent="cluster", fields=["project_id"])


def test_define_scope_rejects_a_second_wire_key_for_a_known_field() -> None:
    with pytest.raises(ConfigurationError, match="already sent as 'cluster_id'"):
        define_scope(unique("rekey"), parent="project", fields={"cluster_id": "cid"})


# -- analytics_scope ------------------------------------------------------------------------------


def test_nothing_is_bound_outside_any_scope() -> None:
    assert dict(current_scope()) == {}


def test_nested_scopes_merge_and_the_inner_value_wins() -> None:
    with analytics_scope(user_id=1, project_id=2):
        assert dict(current_scope()) == {"user_id": 1, "project_id": 2}
        with analytics_scope(project_id=3, cluster_id=4):
            assert dict(current_scope()) == {"user_id": 1, "project_id": 3, "cluster_id": 4}
        assert dict(current_scope()) == {"user_id": 1, "project_id": 2}
    assert dict(current_scope()) == {}


def test_leaving_a_scope_on_an_exception_restores_exactly_what_was_bound() -> None:
    with analytics_scope(user_id=1):
        before = current_scope()
        with pytest.raises(RuntimeError, match="boom"), analytics_scope(user_id=2, project_id=3):
            raise RuntimeError("boom")
        assert dict(current_scope()) == dict(before) == {"user_id": 1}


def test_none_unbinds_a_field_inside_the_block_only() -> None:
    with analytics_scope(user_id=1, project_id=2):
        with analytics_scope(project_id=None):
            assert dict(current_scope()) == {"user_id": 1}
        assert current_scope()["project_id"] == 2


def test_an_unknown_field_is_a_scope_error_naming_it() -> None:
    with pytest.raises(ScopeError, match="'team_size'") as info:
        analytics_scope(user_id=1, team_size=3)
    assert info.value.field == "team_size"
    with pytest.raises(ScopeError) as info:
        bind_scope(flavour="x")
    assert info.value.field == "flavour"


def test_current_scope_is_read_only() -> None:
    with analytics_scope(user_id=1):
        view = current_scope()
        with pytest.raises(TypeError):
            view["user_id"] = 2  # type: ignore[index]
        assert current_scope()["user_id"] == 1


def test_the_same_instance_can_be_entered_again_nested() -> None:
    scope = analytics_scope(project_id=5)
    with analytics_scope(user_id=1):
        with scope:
            with analytics_scope(project_id=6), scope:
                assert current_scope()["project_id"] == 5
            assert current_scope()["project_id"] == 5
        assert dict(current_scope()) == {"user_id": 1}


def test_bind_scope_and_reset_scope_restore_the_previous_binding() -> None:
    with analytics_scope(user_id=1):
        token = bind_scope(project_id=7)
        assert dict(current_scope()) == {"user_id": 1, "project_id": 7}
        reset_scope(token)
        assert dict(current_scope()) == {"user_id": 1}
        with pytest.raises(RuntimeError):
            reset_scope(token)  # a token is used once


def test_a_scope_exits_cleanly_around_an_unreset_bind_scope() -> None:
    with analytics_scope(user_id=1):
        with analytics_scope(project_id=2):
            bind_scope(cluster_id=3)  # never reset: leaving the block still restores the outer value
        assert dict(current_scope()) == {"user_id": 1}


def test_analytics_scope_decorates_a_sync_function() -> None:
    @analytics_scope(project_id=9)
    def read(extra: int) -> dict[str, object]:
        """Doc kept."""
        return {**current_scope(), "extra": extra}

    with analytics_scope(user_id=1):
        assert read(1) == {"user_id": 1, "project_id": 9, "extra": 1}
        assert dict(current_scope()) == {"user_id": 1}
    assert read.__name__ == "read"
    assert read.__doc__ == "Doc kept."


def test_analytics_scope_decorated_function_restores_on_exception() -> None:
    @analytics_scope(project_id=9)
    def fail() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        fail()
    assert dict(current_scope()) == {}


async def test_analytics_scope_decorates_an_async_function() -> None:
    @analytics_scope(project_id=9)
    async def read() -> dict[str, object]:
        await asyncio.sleep(0)
        return dict(current_scope())

    import inspect

    assert inspect.iscoroutinefunction(read)
    async with analytics_scope(user_id=1):
        assert await read() == {"user_id": 1, "project_id": 9}
        assert dict(current_scope()) == {"user_id": 1}


async def test_async_with_binds_and_restores() -> None:
    async with analytics_scope(user_id=3):
        assert dict(current_scope()) == {"user_id": 3}
        await asyncio.sleep(0)
        assert current_scope()["user_id"] == 3
    assert dict(current_scope()) == {}


async def test_tasks_created_inside_a_scope_see_its_values() -> None:
    async def read() -> dict[str, object]:
        await asyncio.sleep(0)
        return dict(current_scope())

    async with analytics_scope(user_id=1, project_id=2):
        task = asyncio.create_task(read())
    # The task was created inside: it keeps the values after the block is left.
    assert await task == {"user_id": 1, "project_id": 2}


def test_threads_do_not_see_each_others_scopes() -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=10)
    seen: dict[int, list[dict[str, object]]] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            observations = []
            with analytics_scope(user_id=i, project_id=i * 10):
                barrier.wait()  # every thread is inside its own block now
                observations.append(dict(current_scope()))
                barrier.wait()
                with analytics_scope(cluster_id=i * 100):
                    barrier.wait()
                    observations.append(dict(current_scope()))
                observations.append(dict(current_scope()))
            observations.append(dict(current_scope()))
            seen[i] = observations
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    for i in range(n):
        assert seen[i] == [
            {"user_id": i, "project_id": i * 10},
            {"user_id": i, "project_id": i * 10, "cluster_id": i * 100},
            {"user_id": i, "project_id": i * 10},
            {},
        ]
    assert dict(current_scope()) == {}


async def test_concurrent_tasks_do_not_see_each_others_scopes() -> None:
    async def worker(i: int) -> list[dict[str, object]]:
        observations = []
        async with analytics_scope(user_id=i):
            await asyncio.sleep(0.01 * (3 - i))  # interleave: later tasks wake first
            observations.append(dict(current_scope()))
            with analytics_scope(project_id=i * 10):
                await asyncio.sleep(0.01 * i)
                observations.append(dict(current_scope()))
            await asyncio.sleep(0)
            observations.append(dict(current_scope()))
        return observations

    results = await asyncio.gather(*(worker(i) for i in range(4)))
    for i, observations in enumerate(results):
        assert observations == [{"user_id": i}, {"user_id": i, "project_id": i * 10}, {"user_id": i}]


async def test_one_shared_instance_entered_by_concurrent_tasks_restores_each_task() -> None:
    shared = analytics_scope(project_id=99)

    async def worker(i: int, delay: float) -> list[dict[str, object]]:
        observations = []
        with analytics_scope(user_id=i):
            async with shared:
                await asyncio.sleep(delay)
                observations.append(dict(current_scope()))
            observations.append(dict(current_scope()))
        return observations

    # The first task enters first and also leaves first: a plain stack of tokens would pair its exit
    # with the second task's entry.
    first, second = await asyncio.gather(worker(1, 0.01), worker(2, 0.05))
    assert first == [{"user_id": 1, "project_id": 99}, {"user_id": 1}]
    assert second == [{"user_id": 2, "project_id": 99}, {"user_id": 2}]


def test_one_shared_instance_entered_by_concurrent_threads_restores_each_thread() -> None:
    shared = analytics_scope(project_id=99)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[int, dict[str, object]] = {}

    def first() -> None:
        with analytics_scope(user_id=1):
            with shared:
                first_in.set()
                second_in.wait(10)
            seen[1] = dict(current_scope())  # left first, although it entered first
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with analytics_scope(user_id=2):
            with shared:
                second_in.set()
                first_out.wait(10)
                seen[3] = dict(current_scope())
            seen[2] = dict(current_scope())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {1: {"user_id": 1}, 2: {"user_id": 2}, 3: {"user_id": 2, "project_id": 99}}


def test_a_generator_holding_a_scope_does_not_leak_into_its_caller() -> None:
    def gen() -> Generator[dict[str, object], None, None]:
        with analytics_scope(project_id=1):
            yield dict(current_scope())

    with analytics_scope(user_id=1):
        it = gen()
        assert next(it) == {"user_id": 1, "project_id": 1}
        # The generator runs in the caller's context, so its binding is visible until it finishes.
        it.close()
        assert dict(current_scope()) == {"user_id": 1}


async def test_an_async_generator_scope_exits_cleanly_when_exhausted() -> None:
    async def agen() -> AsyncIterator[int]:
        async with analytics_scope(project_id=1):
            yield 1

    with analytics_scope(user_id=1):
        assert [x async for x in agen()] == [1]
        assert dict(current_scope()) == {"user_id": 1}


def test_repr_names_the_fields() -> None:
    assert repr(analytics_scope(user_id=1, app_name="web")) == "analytics_scope(user_id=1, app_name='web')"


def test_define_scope_with_a_bare_str_of_fields_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"fields=\['stack_name'\]"):
        define_scope(unique("bare"), fields="stack_name")
    with pytest.raises(ConfigurationError, match="ids"):
        define_scope(unique("bare_ids"), fields=[unique("x_id")], ids="x_id")


def test_define_scope_refuses_a_wire_key_another_field_is_sent_under() -> None:
    with pytest.raises(ConfigurationError, match="'project_id'"):
        define_scope(unique("samekey"), parent="project", fields={unique("dup_id"): "project_id"})
    with pytest.raises(ConfigurationError, match="'user_id'"):
        define_scope(unique("userkey"), parent="project", fields={unique("dup_id"): "userId"})


def test_define_scope_fields_are_ids_unless_listed_otherwise() -> None:
    name, id_field, label = unique("idscope"), unique("thing_id"), unique("label")
    scope = define_scope(name, parent="project", fields=[id_field, label], ids=[id_field])
    assert scope.id_fields == {"user_id", "project_id", id_field}
    other = unique("a_id")
    assert define_scope(unique("allids"), fields=[other]).id_fields == {"user_id", other}


def _exit_in_another_thread(count: int) -> None:
    scopes_ = [analytics_scope(user_id=i) for i in range(count)]

    def enter_all() -> None:
        for scope in scopes_:
            scope.__enter__()

    def exit_all() -> None:
        for scope in scopes_:
            scope.__exit__(None, None, None)

    for target in (enter_all, exit_all):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(30)


def _foreign_exit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "analytics_scope" in r.getMessage()]


def _accounted(caplog: pytest.LogCaptureFixture) -> int:
    """Exits logged in full, plus those counted by summaries."""
    lines = _foreign_exit_lines(caplog)
    full = sum(1 for line in lines if line.startswith("analytics: ScopeError: analytics_scope: a `with"))
    counted = sum(int(m.group(1)) for line in lines for m in re.finditer(r"(\d+) more ScopeError since the", line))
    return full + counted


def test_exits_in_another_thread_are_logged_once_then_summarised_by_the_timer(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instrument import _reporting, _scopes

    # 2,000 requests of a sync FastAPI dependency: one line, then one summary after the interval,
    # printed by the timer although no further exit comes.
    monkeypatch.setattr(_scopes, "foreign_exit_log", _reporting.RateLimitedLog(interval=1.0))
    started = time.monotonic()
    _exit_in_another_thread(2000)
    elapsed = time.monotonic() - started
    lines = _foreign_exit_lines(caplog)
    assert 1 <= len(lines) <= 2 + elapsed / 1.0  # at most one line per interval, not one per exit
    assert "exited in another context (thread or task) than it was entered in" in lines[0]
    assert "bind the scope where the work runs" in lines[0]
    assert current_scope() == {}
    # Every exit is either logged in full or counted in a summary the timer prints (one summary, or more
    # lines if the exits took longer than the interval on a busy machine).
    deadline = time.monotonic() + 30
    while _accounted(caplog) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _accounted(caplog) == 2000
    assert all(line.startswith("analytics: ScopeError: ") for line in _foreign_exit_lines(caplog))


def test_the_summary_of_foreign_exits_is_printed_at_interpreter_exit(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import threading

            from instrument import analytics_scope

            scopes = [analytics_scope(user_id=i) for i in range(50)]
            for action in ("__enter__", "__exit__"):
                thread = threading.Thread(target=lambda: [getattr(s, action)() if action == "__enter__"
                                                          else s.__exit__(None, None, None) for s in scopes])
                thread.start()
                thread.join(30)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("exited in another context") == 2, done.stderr  # the first, then the summary
    assert "49 more ScopeError since the last report" in done.stderr


@given(
    fields=st.one_of(
        st.none(), st.integers(), st.lists(st.one_of(st.integers(), st.lists(st.text()), st.none()), min_size=1)
    ),
    ids=st.one_of(st.none(), st.integers(), st.lists(st.lists(st.text()), min_size=1)),
    parent=st.one_of(st.none(), st.just("user"), st.lists(st.text()), st.integers()),
)
def test_define_scope_given_anything_raises_only_configuration_errors(fields: Any, ids: Any, parent: Any) -> None:
    try:
        define_scope(unique("anything"), parent=parent, fields=fields, ids=ids)
    except ConfigurationError:
        pass


# -- the one door: attach/detach --------------------------------------------------------------------


def test_attach_merges_over_the_bound_scope_and_detach_restores_exactly_it() -> None:
    with analytics_scope(user_id=1, project_id=2):
        token = attach({"project_id": 3, "cluster_id": 4})
        assert current_scope() == {"user_id": 1, "project_id": 3, "cluster_id": 4}
        detach(token)
        assert current_scope() == {"user_id": 1, "project_id": 2}


def test_attach_with_replace_binds_exactly_the_fields_given() -> None:
    with analytics_scope(user_id=1, project_id=2):
        token = attach({"cluster_id": 4}, replace=True)
        assert current_scope() == {"cluster_id": 4}
        detach(token)
        assert current_scope() == {"user_id": 1, "project_id": 2}


def test_detach_of_a_used_token_raises_runtime_error() -> None:
    token = attach({"user_id": 1})
    detach(token)
    with pytest.raises(RuntimeError):
        detach(token)


def test_bound_in_reads_another_context_s_scope() -> None:
    import contextvars

    with analytics_scope(user_id=7):
        context = contextvars.copy_context()
    # The raw bound dict: an analytics_scope block also keeps its token there (under a non-str key).
    assert {k: v for k, v in bound_in(context).items() if isinstance(k, str)} == {"user_id": 7}
    assert current_scope() == {}


@given(st.one_of(st.integers(), st.text(), st.booleans(), st.none(), st.floats(), st.binary(), st.lists(st.integers())))
def test_an_id_is_an_int_or_a_non_empty_str_and_nothing_else(value: object) -> None:
    expected = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")
    assert is_id(value) is expected
