"""Scope that follows the work: snapshots, the propagating executor, run_in_executor, the thread switch,
carriers, and delivery from multiprocessing fork children. Real threads, a real event loop, real fork.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from process_runner import run_case, wrong_user_messages

import instrument
from instrument import (
    SCOPE_HEADER,
    EventName,
    PropagatingExecutor,
    PropagationError,
    ScopedCall,
    ScopeError,
    Track,
    analytics_scope,
    current_scope,
    extract_scope,
    inject_scope,
    propagate_scope,
    run_in_executor,
    scope_snapshot,
)
from instrument.testing import CapturedEvents, SegmentEndpoint, capture_events
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(60)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Events(EventName):
    JOB_FINISHED = "Job Finished"


class JobFinished(Track, event=Events.JOB_FINISHED, scope="project"):
    n: int


def finish(n: int) -> str:
    instrument.track(JobFinished(n=n))
    return threading.current_thread().name


# -- the propagating executor ------------------------------------------------------------------------


def test_a_thousand_submits_from_two_interleaved_scopes_each_carry_their_own_scope(
    analytics_events: CapturedEvents,
) -> None:
    a, b = analytics_scope(user_id="a", project_id=1), analytics_scope(user_id="b", project_id=2)
    with PropagatingExecutor(ThreadPoolExecutor(max_workers=4)) as pool:
        futures = []
        for n in range(1000):
            with a if n % 2 == 0 else b:
                futures.append(pool.submit(finish, n))
        threads = {f.result(timeout=30) for f in futures}
    assert len(threads) > 1  # really spread over pool threads, which each served both scopes
    events = analytics_events.of(JobFinished)
    assert len(events) == 1000
    for event in events:
        n = event.properties["n"]
        expected = ("a", 1) if n % 2 == 0 else ("b", 2)
        assert (event.user_id, event.properties["project_id"]) == expected, event
    assert sorted(e.properties["n"] for e in events) == list(range(1000))
    assert current_scope() == {}  # nothing leaked back into the submitting thread


def test_a_plain_executor_does_not_carry_the_scope_and_strict_mode_raises_a_scope_error(
    analytics_events: CapturedEvents,
) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool, analytics_scope(user_id="a", project_id=1):
        future = pool.submit(finish, 0)
        with pytest.raises(ScopeError, match=r"nothing at all is bound.*PropagatingExecutor") as caught:
            future.result(timeout=10)
    assert caught.value.field == "user_id"
    assert "project_id" in str(caught.value)
    analytics_events.assert_nothing_tracked()


def test_what_a_task_binds_stays_in_that_task(analytics_events: CapturedEvents) -> None:
    def bind_and_report(n: int) -> dict[str, object]:
        before = dict(current_scope())
        instrument.bind_scope(project_id=100 + n)  # never reset: must not leak to the next task
        return before

    with PropagatingExecutor(ThreadPoolExecutor(max_workers=1)) as pool, analytics_scope(user_id="u", project_id=1):
        seen = [pool.submit(bind_and_report, n).result(timeout=10) for n in range(5)]
    assert seen == [{"user_id": "u", "project_id": 1}] * 5


def test_map_through_the_propagating_executor_carries_the_scope(analytics_events: CapturedEvents) -> None:
    with PropagatingExecutor(ThreadPoolExecutor(max_workers=3)) as pool, analytics_scope(user_id="m", project_id=3):
        list(pool.map(finish, range(30), timeout=30))
    assert len(analytics_events.assert_tracked(JobFinished, user_id="m", project_id=3)) == 30


# -- snapshots ----------------------------------------------------------------------------------------


def test_a_snapshot_runs_and_wraps_work_under_the_scope_it_captured(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id="s", project_id=5):
        snapshot = scope_snapshot()
    assert snapshot.scope == {"user_id": "s", "project_id": 5}
    assert current_scope() == {}
    wrapped = snapshot.wrap(finish)
    threads = [
        threading.Thread(target=snapshot.run, args=(finish, 1)),
        threading.Thread(target=wrapped, args=(2,)),
        threading.Thread(target=wrapped, args=(3,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    events = analytics_events.assert_tracked(JobFinished, user_id="s", project_id=5)
    assert sorted(e.properties["n"] for e in events) == [1, 2, 3]
    assert wrapped.__name__ == "finish"


def test_one_snapshot_entered_by_many_threads_at_once_gives_each_its_own_copy() -> None:
    barrier = threading.Barrier(4)
    with analytics_scope(user_id="shared", project_id=1):
        snapshot = scope_snapshot()

    def work(n: int) -> dict[str, object]:
        with analytics_scope(project_id=n):
            barrier.wait(10)  # all four inside the snapshot's context at the same moment
            return dict(current_scope())

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: snapshot.run(work, n), range(4)))
    assert results == [{"user_id": "shared", "project_id": n} for n in range(4)]
    assert snapshot.scope == {"user_id": "shared", "project_id": 1}


async def test_run_in_executor_carries_the_scope_of_the_awaiting_task(analytics_events: CapturedEvents) -> None:
    async def request(user: str, n: int) -> None:
        async with analytics_scope(user_id=user, project_id=n):
            await run_in_executor(None, finish, n)

    await asyncio.gather(*(request(f"u{n}", n) for n in range(20)))
    for n in range(20):
        analytics_events.assert_tracked(JobFinished, count=1, user_id=f"u{n}", project_id=n, n=n)


async def test_the_loop_s_own_run_in_executor_does_not_carry_it(analytics_events: CapturedEvents) -> None:
    async with analytics_scope(user_id="x", project_id=1):
        with pytest.raises(ScopeError):
            await asyncio.get_running_loop().run_in_executor(None, finish, 0)


# -- the global switch --------------------------------------------------------------------------------


def test_propagate_scope_makes_threads_and_pool_submits_carry_the_scope_until_switched_off(
    analytics_events: CapturedEvents,
) -> None:
    assert propagate_scope(True) is False
    try:
        with analytics_scope(user_id="t", project_id=9):
            thread = threading.Thread(target=finish, args=(1,))
            thread.start()
            thread.join(10)
            with ThreadPoolExecutor(2) as pool:
                pool.submit(finish, 2).result(timeout=10)
        with analytics_scope(user_id="t2", project_id=10), ThreadPoolExecutor(2) as pool:
            pool.submit(finish, 3).result(timeout=10)  # a pool thread keeps no earlier submitter's scope
    finally:
        assert propagate_scope(False) is True
    assert threading.Thread.start is not None
    events = {e.properties["n"]: (e.user_id, e.properties["project_id"]) for e in analytics_events.of(JobFinished)}
    assert events == {1: ("t", 9), 2: ("t", 9), 3: ("t2", 10)}

    seen: list[dict[str, object]] = []
    with analytics_scope(user_id="off", project_id=1):
        thread = threading.Thread(target=lambda: seen.append(dict(current_scope())))
        thread.start()
        thread.join(10)
    assert seen == [{}]  # switched off: plain threads again


# -- carriers -----------------------------------------------------------------------------------------


def test_a_carrier_round_trips_the_bound_scope() -> None:
    with analytics_scope(user_id=42, project_id="p-1", cluster_id=7):
        headers = inject_scope({"other": "kept"})
    assert headers["other"] == "kept"
    assert headers[SCOPE_HEADER].startswith("1:")
    assert extract_scope(headers) == {"user_id": 42, "project_id": "p-1", "cluster_id": 7}
    # Header mappings spell the name in any case; WSGI environs as HTTP_INSTRUMENT_SCOPE.
    assert extract_scope({"Instrument-Scope": headers[SCOPE_HEADER]})["user_id"] == 42
    assert extract_scope({"HTTP_INSTRUMENT_SCOPE": headers[SCOPE_HEADER]})["user_id"] == 42
    assert extract_scope({SCOPE_HEADER: headers[SCOPE_HEADER].encode()})["cluster_id"] == 7
    assert inject_scope() == {SCOPE_HEADER: "1:{}"}
    assert extract_scope({}) == {}


BAD_CARRIERS: list[tuple[Any, str]] = [
    ("2:{}", "version"),
    ("garbage", "version"),
    ("1:{not json", "JSON"),
    ("1:[1, 2]", "list"),
    ('1:{"password": "x"}', "no scope defines"),
    ('1:{"user_id": {"a": 1}}', "not an id"),
    ('1:{"user_id": true}', "not an id"),
    ('1:{"user_id": 1.5}', "not an id"),
    ('1:{"user_id": ""}', "not an id"),  # the one id check (_scopes.is_id) refuses '' everywhere
    ("1:" + json.dumps({"user_id": "x" * 600}), "characters long"),
    ("1:" + " " * 5000 + "{}", "over the limit"),
    (b"\xff\xfe", "ASCII"),
    (12, "not a str"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_CARRIERS)
def test_a_bad_carrier_leaves_the_work_unbound_and_is_reported_without_its_content(value: Any, reason: str) -> None:
    with capture_events(strict=False) as events:
        assert extract_scope({SCOPE_HEADER: value}) == {}
    [error] = events.errors
    assert isinstance(error, PropagationError)
    assert reason in str(error)
    assert "password" not in str(error)
    assert "xxxx" not in str(error)


@pytest.mark.parametrize(("value", "reason"), BAD_CARRIERS[:4])
def test_a_bad_carrier_raises_in_strict_mode(value: Any, reason: str) -> None:
    with capture_events(), pytest.raises(PropagationError, match=reason):
        extract_scope({SCOPE_HEADER: value})


def test_a_missing_carrier_is_reported_only_when_required() -> None:
    with capture_events(strict=False) as events:
        assert extract_scope({}) == {}
        assert extract_scope(None) == {}
        assert events.errors == []
        assert extract_scope({}, required=True) == {}
    assert [type(e) for e in events.errors] == [PropagationError]


def test_a_scope_that_cannot_be_carried_is_not_written() -> None:
    with capture_events(strict=False) as events, analytics_scope(user_id="u", app_name="x" * 5000):
        assert inject_scope() == {}
    assert "over the carrier limit" in str(events.errors[0])


class _HostileMapping(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_a_hostile_mapping_never_fails_the_work() -> None:
    with capture_events(strict=False) as events:
        assert extract_scope(_HostileMapping()) == {}
    assert "RuntimeError" in str(events.errors[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: "1:" + t),
        st.dictionaries(st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=20), st.none())).map(
            lambda d: "1:" + json.dumps(d)
        ),
        st.integers(),
        st.none(),
    )
)
def test_any_carrier_value_gives_known_id_fields_or_nothing_and_never_raises_in_production(value: Any) -> None:
    with capture_events(strict=False) as events:
        fields = extract_scope({SCOPE_HEADER: value})
    assert set(fields) <= {
        "user_id",
        "project_id",
        "cluster_id",
        "registry_id",
        "app_name",
        "app_namespace",
        "chart_name",
    }
    assert all(isinstance(v, (int, str)) and not isinstance(v, bool) and v != "" for v in fields.values())
    assert all(isinstance(e, PropagationError) for e in events.errors)
    if fields:
        with analytics_scope(**fields):
            assert current_scope() == fields


ids = st.one_of(st.integers(min_value=-(2**63), max_value=2**63), st.text(min_size=1, max_size=40))


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"user_id": ids},
        optional={
            "anonymous_id": ids,
            "project_id": ids,
            "cluster_id": ids,
            "app_name": st.text(min_size=1, max_size=30),
        },
    )
)
def test_any_bound_scope_of_ids_round_trips_through_a_carrier(fields: dict[str, Any]) -> None:
    with analytics_scope(**fields):
        carrier = inject_scope({})
        assert current_scope() == fields
    assert carrier[SCOPE_HEADER].isascii()  # fit for an HTTP header or a queue's headers
    assert extract_scope(carrier) == fields


# -- process pools: real processes, a real loopback endpoint ----------------------------------------------


def test_a_plain_process_pool_never_sends_an_event_under_the_user_its_worker_inherited(
    endpoint: SegmentEndpoint,
) -> None:
    # 50 tasks submitted under users 1..50; the workers were forked under whichever user was bound when
    # the pool started them. Without a helper the tasks carry no scope: nothing is sent, it is reported.
    done = run_case("plain-executor", "fork", endpoint)
    endpoint.wait_for(1, timeout=1)
    assert endpoint.messages == []
    assert "in a process pool worker" in done.stderr
    assert "PropagatingExecutor(ProcessPoolExecutor())" in done.stderr


def test_a_plain_multiprocessing_pool_never_sends_an_event_under_an_inherited_user(endpoint: SegmentEndpoint) -> None:
    # The pool's workers are forked under the pool creator's scope; the tasks are submitted under others.
    done = run_case("plain-pool", "fork", endpoint)
    endpoint.wait_for(1, timeout=1)
    assert [m["userId"] for m in endpoint.messages] == []
    assert "PropagatingExecutor" in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("case", "method"),
    [
        ("propagating-executor", "fork"),
        ("propagating-executor", "spawn"),
        ("switch-executor", "fork"),
        ("switch-pool", "fork"),
        ("switch-pool", "forkserver"),
    ],
)
def test_process_pool_tasks_run_under_the_scope_they_were_submitted_under(
    case: str, method: str, endpoint: SegmentEndpoint
) -> None:
    done = run_case(case, method, endpoint)
    assert endpoint.wait_for(50, timeout=30), (len(endpoint.messages), done.stderr[-3000:])
    assert endpoint.unique_message_ids == 50
    assert not wrong_user_messages(endpoint)
    assert {m["userId"] for m in endpoint.messages} == {f"user-{n}" for n in range(1, 51)}


def test_a_scoped_call_pickles_with_its_carrier_and_binds_exactly_that_scope(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id=7):
        call = ScopedCall(current_scope)
    with analytics_scope(user_id=99, project_id=3):
        seen = pickle.loads(pickle.dumps(call))()
        assert dict(current_scope()) == {"user_id": 99, "project_id": 3}
    assert dict(seen) == {"user_id": 7}


def test_a_scope_that_cannot_be_carried_runs_the_pool_task_unbound_not_under_another_scope() -> None:
    errors: list[instrument.AnalyticsError] = []
    instrument.configure(transport=MemoryTransport(), on_error=errors.append)
    with analytics_scope(user_id=1.5):
        call = ScopedCall(current_scope)
    assert [type(error) for error in errors] == [PropagationError]
    with analytics_scope(user_id=5):
        assert dict(call()) == {}
