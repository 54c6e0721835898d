"""@tracks: one event per successful call, every kind of callable, and analytics never changing the call."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from dataclasses import InitVar
from typing import Any

import hostile_values
import pytest
from hostile_values import SECRET
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import instrument
from instrument import (
    AnalyticsError,
    Call,
    ConfigurationError,
    EventName,
    EventNameError,
    MemoryTransport,
    PropertyError,
    PropsError,
    ScopeError,
    Track,
    analytics_scope,
    derived,
    field,
    tracks,
)
from instrument.testing import capture_events, reset


class Events(EventName):
    CLUSTER_CREATED = "Cluster Created"
    CLUSTER_CREATION_FAILED = "Cluster Creation Failed"
    REPORT_EXPORTED = "Report Exported"


class ClusterCreated(Track, event=Events.CLUSTER_CREATED, scope="cluster"):
    infra_id: int
    region: str = "us-east-1"


class ClusterCreationFailed(Track, event=Events.CLUSTER_CREATION_FAILED, scope="project"):
    error: str
    infra_id: int = 0


def _explode() -> list[str]:
    raise ZeroDivisionError("factory failed")


class Exploding(Track, event="Exploding Thing Happened"):
    items: list[str] = field(default_factory=_explode)


def props_of(transport: MemoryTransport) -> list[dict[str, Any]]:
    return [m["properties"] for m in transport.messages]


@pytest.fixture
def cluster_scope() -> Iterator[None]:
    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        yield


class Boom(Exception):
    pass


# -- the basic contract ----------------------------------------------------------------------------


def test_one_event_per_normal_return(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated)
    def create(infra_id: int) -> str:
        return f"cluster-{infra_id}"

    assert create(11) == "cluster-11"
    assert create(infra_id=12) == "cluster-12"
    messages = memory.messages
    assert [m["event"] for m in messages] == ["Cluster Created", "Cluster Created"]
    assert props_of(memory) == [
        {"infra_id": 11, "region": "us-east-1", "project_id": 7, "cluster_id": 3},
        {"infra_id": 12, "region": "us-east-1", "project_id": 7, "cluster_id": 3},
    ]
    assert messages[0]["userId"] == "42"


def test_no_event_when_the_function_raises(memory: MemoryTransport, cluster_scope: None) -> None:
    error = Boom("no capacity")

    @tracks(ClusterCreated)
    def create(infra_id: int) -> str:
        raise error

    with pytest.raises(Boom) as info:
        create(11)
    assert info.value is error
    assert memory.messages == []


def test_on_error_sends_the_failure_track_and_reraises_the_same_exception(
    memory: MemoryTransport, cluster_scope: None
) -> None:
    error = Boom("no capacity")

    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    def create(infra_id: int) -> str:
        raise error

    with pytest.raises(Boom) as info:
        create(11)
    assert info.value is error
    assert info.value.__traceback__ is not None
    assert [m["event"] for m in memory.messages] == ["Cluster Creation Failed"]
    assert props_of(memory) == [{"error": "Boom", "infra_id": 11, "project_id": 7}]


def test_on_error_does_not_send_the_failure_track_on_success(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    def create(infra_id: int) -> int:
        return infra_id

    assert create(1) == 1
    assert [m["event"] for m in memory.messages] == ["Cluster Created"]


def test_a_bare_event_name_with_scope_and_props(memory: MemoryTransport) -> None:
    @tracks(Events.REPORT_EXPORTED, scope="project", props=lambda call: {"rows": len(call.result)})
    def export(fmt: str) -> list[int]:
        return [1, 2, 3]

    with analytics_scope(user_id=1, project_id=2):
        export("csv")
    assert memory.messages[0]["event"] == "Report Exported"
    assert props_of(memory) == [{"rows": 3, "project_id": 2}]


def test_a_bare_event_name_takes_matching_scope_arguments(memory: MemoryTransport) -> None:
    @tracks("Report Exported", scope="project")
    def export(project_id: int, fmt: str) -> None:
        pass

    with analytics_scope(user_id=1):
        export(5, "csv")
    assert props_of(memory) == [{"project_id": 5}]


def test_fields_come_from_scope_then_arguments_then_props(memory: MemoryTransport) -> None:
    @tracks(ClusterCreated, props=lambda call: {"region": "eu-west-1"})
    def create(infra_id: int, cluster_id: int, region: str = "ignored") -> None:
        pass

    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        create(11, 99)
    # cluster_id: the argument beats the scope; region: props beats the argument.
    assert props_of(memory) == [{"infra_id": 11, "region": "eu-west-1", "project_id": 2, "cluster_id": 99}]


def test_props_can_override_a_scope_field(memory: MemoryTransport) -> None:
    @tracks(ClusterCreated, props=lambda call: {"cluster_id": call.result})
    def create(infra_id: int) -> int:
        return 123

    with analytics_scope(user_id=1, project_id=2):
        create(11)
    assert props_of(memory)[0]["cluster_id"] == 123


def test_argument_defaults_feed_fields(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated)
    def create(infra_id: int = 5, region: str = "ap-south-1") -> None:
        pass

    create()
    assert props_of(memory) == [{"infra_id": 5, "region": "ap-south-1", "project_id": 7, "cluster_id": 3}]


def test_keyword_only_and_var_keyword_arguments_feed_fields(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated)
    def create(*args: Any, infra_id: int, **kwargs: Any) -> None:
        pass

    create(1, 2, infra_id=8, region="r", unrelated=True)
    assert props_of(memory) == [{"infra_id": 8, "region": "r", "project_id": 7, "cluster_id": 3}]


def test_props_sees_arguments_with_defaults_and_the_result(memory: MemoryTransport, cluster_scope: None) -> None:
    calls: list[Call] = []

    def props(call: Call) -> Mapping[str, Any]:
        calls.append(call)
        return {}

    @tracks(ClusterCreated, props=props)
    def create(infra_id: int, size: int = 3, *, dry_run: bool = False) -> str:
        return "done"

    create(11, dry_run=True)
    (call,) = calls
    assert dict(call.arguments) == {"infra_id": 11, "size": 3, "dry_run": True}
    assert call.result == "done"
    assert call.exception is None
    assert call.args == (11,)
    assert call.kwargs == {"dry_run": True}
    assert "result='done'" in repr(call)


def test_props_sees_the_exception_on_failure(memory: MemoryTransport, cluster_scope: None) -> None:
    seen: list[Call] = []

    def props(call: Call) -> Mapping[str, Any]:
        seen.append(call)
        return {"error": f"{type(call.exception).__name__}: {call.exception}"} if call.exception else {}

    @tracks(ClusterCreated, on_error=ClusterCreationFailed, props=props)
    def create(infra_id: int) -> None:
        raise Boom("quota")

    with pytest.raises(Boom):
        create(4)
    assert isinstance(seen[0].exception, Boom)
    assert seen[0].arguments["infra_id"] == 4
    assert props_of(memory) == [{"error": "Boom: quota", "infra_id": 4, "project_id": 7}]


# -- every kind of callable -----------------------------------------------------------------------


class Service:
    def __init__(self, region: str) -> None:
        self.region = region

    @tracks(ClusterCreated)
    def create(self, infra_id: int) -> str:
        """Create a cluster."""
        return f"{self.region}:{infra_id}"

    @tracks(ClusterCreated, props=lambda call: {"region": call.arguments["cls"].__name__})
    @classmethod
    def create_outer(cls, infra_id: int) -> int:
        return infra_id

    @classmethod
    @tracks(ClusterCreated, props=lambda call: {"region": call.arguments["cls"].__name__})
    def create_inner(cls, infra_id: int) -> int:
        return infra_id

    @tracks(ClusterCreated)
    @staticmethod
    def create_static_outer(infra_id: int) -> int:
        return infra_id

    @staticmethod
    @tracks(ClusterCreated)
    def create_static_inner(infra_id: int) -> int:
        return infra_id

    @tracks(ClusterCreated, props=lambda call: {"region": call.arguments["self"].region})
    @analytics_scope(project_id=70)
    def create_stacked(self, infra_id: int) -> int:
        return infra_id


def test_an_instance_method_gets_its_arguments_and_self(memory: MemoryTransport, cluster_scope: None) -> None:
    service = Service("eu")
    assert service.create(11) == "eu:11"
    assert Service.create(service, 12) == "eu:12"  # called through the class
    assert [p["infra_id"] for p in props_of(memory)] == [11, 12]
    assert Service.create.__doc__ == "Create a cluster."


@pytest.mark.parametrize("name", ["create_outer", "create_inner"])
def test_a_classmethod_in_either_decorator_order(memory: MemoryTransport, cluster_scope: None, name: str) -> None:
    assert getattr(Service, name)(5) == 5
    assert getattr(Service("x"), name)(6) == 6
    assert props_of(memory) == [
        {"infra_id": 5, "region": "Service", "project_id": 7, "cluster_id": 3},
        {"infra_id": 6, "region": "Service", "project_id": 7, "cluster_id": 3},
    ]


@pytest.mark.parametrize("name", ["create_static_outer", "create_static_inner"])
def test_a_staticmethod_in_either_decorator_order(memory: MemoryTransport, cluster_scope: None, name: str) -> None:
    assert getattr(Service, name)(5) == 5
    assert getattr(Service("x"), name)(infra_id=6) == 6
    assert [p["infra_id"] for p in props_of(memory)] == [5, 6]


def test_stacked_on_another_wrapt_decorator_on_a_method(memory: MemoryTransport, cluster_scope: None) -> None:
    service = Service("ap")
    assert service.create_stacked(8) == 8
    assert Service.create_stacked(service, 9) == 9
    assert props_of(memory) == [
        {"infra_id": 8, "region": "ap", "project_id": 7, "cluster_id": 3},
        {"infra_id": 9, "region": "ap", "project_id": 7, "cluster_id": 3},
    ]


def test_a_decorated_bound_method(memory: MemoryTransport, cluster_scope: None) -> None:
    class Plain:
        def create(self, infra_id: int) -> int:
            return infra_id

    create = tracks(ClusterCreated, props=lambda call: {"region": type(call.arguments["self"]).__name__})(
        Plain().create
    )
    assert create(3) == 3
    assert props_of(memory) == [{"infra_id": 3, "region": "Plain", "project_id": 7, "cluster_id": 3}]


async def test_an_async_function_sends_after_the_await_completes(memory: MemoryTransport, cluster_scope: None) -> None:
    observed: list[int] = []

    @tracks(ClusterCreated)
    async def create(infra_id: int) -> str:
        await asyncio.sleep(0)
        observed.append(len(memory.messages))
        return "ok"

    coroutine = create(11)
    assert memory.messages == []  # nothing before the coroutine runs
    assert await coroutine == "ok"
    assert observed == [0]
    assert props_of(memory) == [{"infra_id": 11, "region": "us-east-1", "project_id": 7, "cluster_id": 3}]


async def test_an_async_function_that_raises_sends_the_failure_track(
    memory: MemoryTransport, cluster_scope: None
) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    async def create(infra_id: int) -> str:
        await asyncio.sleep(0)
        raise Boom("late")

    with pytest.raises(Boom, match="late"):
        await create(1)
    assert [m["event"] for m in memory.messages] == ["Cluster Creation Failed"]


async def test_an_async_method(memory: MemoryTransport, cluster_scope: None) -> None:
    class AsyncService:
        @tracks(ClusterCreated)
        async def create(self, infra_id: int) -> int:
            return infra_id

    assert await AsyncService().create(4) == 4
    assert props_of(memory)[0]["infra_id"] == 4


def test_a_generator_sends_when_exhausted(memory: MemoryTransport, cluster_scope: None) -> None:
    results: list[Any] = []

    def props(call: Call) -> Mapping[str, Any]:
        results.append(call.result)
        return {}

    @tracks(ClusterCreated, props=props)
    def steps(infra_id: int) -> Generator[int, None, str]:
        yield 1
        yield 2
        return "finished"

    gen = steps(11)
    assert next(gen) == 1
    assert next(gen) == 2
    assert memory.messages == []
    with pytest.raises(StopIteration) as info:
        next(gen)
    assert info.value.value == "finished"
    assert len(memory.messages) == 1
    assert results == ["finished"]


def test_a_generator_closed_early_sends_nothing(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    def steps(infra_id: int) -> Generator[int, None, None]:
        yield 1
        yield 2

    gen = steps(11)
    assert next(gen) == 1
    gen.close()
    assert memory.messages == []


def test_a_generator_forwards_send_and_throw(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    def echo(infra_id: int) -> Generator[Any, Any, None]:
        received = yield "ready"
        yield received

    gen = echo(1)
    assert next(gen) == "ready"
    assert gen.send("hello") == "hello"
    with pytest.raises(Boom):
        gen.throw(Boom("thrown"))
    assert [m["properties"]["error"] for m in memory.messages] == ["Boom"]


async def test_an_async_generator_sends_when_exhausted(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated)
    async def steps(infra_id: int) -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    gen = steps(11)
    assert [await gen.__anext__(), await gen.__anext__()] == [0, 1]
    assert memory.messages == []
    assert [x async for x in gen] == [2]
    assert len(memory.messages) == 1


async def test_an_async_generator_closed_early_sends_nothing(memory: MemoryTransport, cluster_scope: None) -> None:
    closed: list[bool] = []

    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    async def steps(infra_id: int) -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    gen = steps(11)
    assert await gen.__anext__() == 1
    await gen.aclose()
    assert closed == [True]  # the inner generator was closed too
    assert memory.messages == []


async def test_an_async_generator_forwards_asend_and_athrow(memory: MemoryTransport, cluster_scope: None) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    async def echo(infra_id: int) -> AsyncGenerator[Any, Any]:
        received = yield "ready"
        try:
            yield received
        except Boom:
            yield "caught"

    gen = echo(1)
    assert await gen.__anext__() == "ready"
    assert await gen.asend("hello") == "hello"
    assert await gen.athrow(Boom("x")) == "caught"
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()
    assert [m["event"] for m in memory.messages] == ["Cluster Created"]


async def test_an_async_generator_that_raises_sends_the_failure_track(
    memory: MemoryTransport, cluster_scope: None
) -> None:
    @tracks(ClusterCreated, on_error=ClusterCreationFailed)
    async def steps(infra_id: int) -> AsyncIterator[int]:
        yield 1
        raise Boom("mid-stream")

    with pytest.raises(Boom):
        async for _ in steps(2):
            pass
    assert props_of(memory) == [{"error": "Boom", "infra_id": 2, "project_id": 7}]


def test_the_wrapper_keeps_name_doc_signature_and_kind() -> None:
    def plain(infra_id: int, *, region: str = "x") -> int:
        """Plain doc."""
        return infra_id

    async def coro(infra_id: int) -> int:
        """Coro doc."""
        return infra_id

    def gen(infra_id: int) -> Iterator[int]:
        yield infra_id

    async def agen(infra_id: int) -> AsyncIterator[int]:
        yield infra_id

    for func in (plain, coro, gen, agen):
        wrapped = tracks(ClusterCreated)(func)
        assert wrapped.__name__ == func.__name__
        assert wrapped.__doc__ == func.__doc__
        assert wrapped.__qualname__ == func.__qualname__
        assert inspect.signature(wrapped) == inspect.signature(func)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(func)
        assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(func)
        assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(func)
    assert inspect.iscoroutinefunction(tracks(ClusterCreated)(coro))
    assert inspect.isgeneratorfunction(tracks(ClusterCreated)(gen))
    assert inspect.isasyncgenfunction(tracks(ClusterCreated)(agen))


# -- analytics failures never change the call ----------------------------------------------------------


def raising_props(call: Call) -> Any:
    return 1 / 0


def list_props(call: Call) -> Any:
    return [("a", 1)]


def _build_failures() -> list[tuple[str, Any, type[AnalyticsError]]]:
    def missing_scope(infra_id: int) -> str:
        return "result"

    def bad_property(infra_id: str) -> str:
        return "result"

    return [
        ("missing scope field", {"decorate": tracks(ClusterCreated), "func": missing_scope}, ScopeError),
        ("bad property", {"decorate": tracks(ClusterCreated), "func": bad_property}, PropertyError),
        (
            "props raising",
            {"decorate": tracks(ClusterCreated, props=raising_props), "func": missing_scope},
            PropsError,
        ),
        (
            "props returning a non-mapping",
            {"decorate": tracks(ClusterCreated, props=list_props), "func": missing_scope},
            PropsError,
        ),
        ("a default factory raising", {"decorate": tracks(Exploding), "func": missing_scope}, AnalyticsError),
    ]


@pytest.mark.parametrize(
    ("why", "case", "error_type"), _build_failures(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_in_production_a_build_failure_is_reported_counted_and_the_result_returned(
    memory: MemoryTransport,
    reported: list[AnalyticsError],
    why: str,
    case: dict[str, Any],
    error_type: type[AnalyticsError],
) -> None:
    func = case["decorate"](case["func"])
    with analytics_scope(user_id=1, project_id=2):  # no cluster_id
        assert func("5" if why == "bad property" else 5) == "result"
    assert memory.messages == []
    assert len(reported) == 1
    assert isinstance(reported[0], error_type)
    assert instrument.stats().dropped["invalid"] == 1


@pytest.mark.parametrize(
    ("why", "case", "error_type"), _build_failures(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_in_strict_mode_a_build_failure_raises_an_analytics_error(
    memory: MemoryTransport, why: str, case: dict[str, Any], error_type: type[AnalyticsError]
) -> None:
    instrument.configure(transport=memory, sync=True, strict=True)
    func = case["decorate"](case["func"])
    with analytics_scope(user_id=1, project_id=2), pytest.raises(error_type):
        func("5" if why == "bad property" else 5)
    assert memory.messages == []


def test_a_failure_track_build_error_never_masks_the_business_exception(
    memory: MemoryTransport, reported: list[AnalyticsError]
) -> None:
    instrument.configure(transport=memory, sync=True, strict=True, on_error=reported.append)  # not even strict

    @tracks(ClusterCreated, on_error=ClusterCreationFailed, props=raising_props)
    def create(infra_id: int) -> None:
        raise Boom("business")

    with analytics_scope(user_id=1, project_id=2), pytest.raises(Boom, match="business"):
        create(1)
    assert [type(e) for e in reported] == [PropsError]
    assert memory.messages == []


def test_an_unconfigured_client_never_changes_the_result() -> None:
    @tracks(ClusterCreated)
    def create(infra_id: int) -> list[int]:
        return [infra_id]

    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        assert create(1) == [1]
    assert instrument.stats().dropped["not_configured"] == 1


def test_the_result_object_is_returned_unchanged(memory: MemoryTransport, cluster_scope: None) -> None:
    sentinel = object()

    @tracks(ClusterCreated, props=lambda call: {"region": "r"})
    def create(infra_id: int) -> object:
        return sentinel

    assert create(1) is sentinel


# -- decoration-time errors ---------------------------------------------------------------------------


def test_a_scope_conflicting_with_the_tracks_scope_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="conflicts"):
        tracks(ClusterCreated, scope="project")
    tracks(ClusterCreated, scope="cluster")  # the same scope is fine


def test_an_unknown_scope_for_a_bare_event_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown scope 'galaxy'"):
        tracks(Events.REPORT_EXPORTED, scope="galaxy")


def test_a_bare_event_breaking_the_convention_is_an_event_name_error() -> None:
    with pytest.raises(EventNameError):
        tracks("report exported")


def test_a_target_that_is_neither_a_track_nor_an_event_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"Track subclass \(or another call.s class\) or an event name"):
        tracks(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="props must be callable"):
        tracks(ClusterCreated, props="region")  # type: ignore[arg-type]


# -- arbitrary and hostile values through @tracks (hypothesis) -------------------------------------


def _secret_free_analytics_error(error: BaseException) -> None:
    assert isinstance(error, AnalyticsError), f"{type(error).__name__} escaped: {error!r}"
    assert SECRET not in str(error), str(error)


class _PropsRaised(Exception):
    pass


@example(infra_id=hostile_values.hostile(frozenset({"__class__"})), props_result=None, strict_mode=False, fail=True)
@example(infra_id=1, props_result=_PropsRaised(SECRET), strict_mode=True, fail=False)
@example(infra_id=1, props_result={1: SECRET}, strict_mode=True, fail=False)
@example(infra_id=0, props_result={SECRET: None}, strict_mode=False, fail=False)
@example(infra_id=0, props_result={"region": {SECRET: 1}}, strict_mode=True, fail=False)
@example(infra_id=1, props_result=hostile_values.hostile(frozenset({"__iter__"})), strict_mode=False, fail=True)
@example(infra_id=hostile_values.very_deep, props_result=None, strict_mode=True, fail=False)
@example(infra_id=1, props_result=hostile_values.very_deep, strict_mode=False, fail=False)
@example(infra_id=0, props_result={"region": hostile_values.very_deep}, strict_mode=True, fail=False)
@example(infra_id=hostile_values.very_deep, props_result=None, strict_mode=False, fail=True)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    infra_id=hostile_values.values,
    props_result=st.none()
    | hostile_values.values
    | st.dictionaries(st.sampled_from(["region", "infra_id", "cluster_id", "nope"]), hostile_values.values)
    | st.builds(_PropsRaised, hostile_values.secrets),
    strict_mode=st.booleans(),
    fail=st.booleans(),
)
def test_arbitrary_arguments_and_props_results_never_break_the_business_function(
    infra_id: Any, props_result: Any, strict_mode: bool, fail: bool
) -> None:
    # Production: the function's result (or its own exception) and nothing else. Strict: an
    # AnalyticsError at most, on success only (a failure path never masks the business exception).
    reported: list[AnalyticsError] = []
    instrument.configure(transport=MemoryTransport(), strict=strict_mode, sync=True, on_error=reported.append)

    def props(call: Call) -> Any:
        if isinstance(props_result, _PropsRaised):
            raise props_result
        return props_result

    @tracks(ClusterCreated, props=None if props_result is None else props, on_error=ClusterCreationFailed)
    def create(infra_id: Any) -> str:
        if fail:
            raise Boom(SECRET)
        return "created"

    try:
        with analytics_scope(user_id=42, project_id=7, cluster_id=3):
            try:
                assert create(infra_id) == "created"
                assert not fail
            except Boom:
                assert fail
            except AnalyticsError as error:
                assert strict_mode, "an analytics error escaped into the business function in production"
                assert not fail, "an analytics error replaced the business exception"
                _secret_free_analytics_error(error)
        for error in reported:
            _secret_free_analytics_error(error)
    finally:
        reset()


def test_an_exception_text_from_props_or_a_factory_is_not_repeated_in_the_error() -> None:
    # Exception messages often quote the value that failed: only the type is shown, the exception is the cause.
    reported: list[AnalyticsError] = []
    instrument.configure(transport=MemoryTransport(), sync=True, on_error=reported.append)

    def props(call: Call) -> Mapping[str, Any]:
        raise ValueError(f"bad email {SECRET}")

    @tracks(ClusterCreated, props=props, on_error=ClusterCreationFailed)
    def create(infra_id: int, fail: bool = False) -> None:
        if fail:
            raise Boom

    @tracks(Exploding)
    def explode() -> None:
        pass

    with analytics_scope(user_id=42, project_id=7, cluster_id=3):
        create(1)
        with pytest.raises(Boom):
            create(1, fail=True)
    with analytics_scope(user_id=42):
        explode()
    texts = [str(error) for error in reported]
    assert texts[0] == "@tracks(ClusterCreated): props raised ValueError"
    assert texts[1] == "@tracks(ClusterCreated): props raised ValueError"
    assert texts[2] == "Exploding.items: its default_factory raised ZeroDivisionError"
    assert all(isinstance(error.__cause__, (ValueError, ZeroDivisionError)) for error in reported)


def test_a_scope_that_is_not_a_str_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown scope \['project'\]"):
        tracks("Listed Thing Happened", scope=["project"])  # type: ignore[arg-type]


class SignedUp(Track, event="Signed Up Happened"):
    first_name: InitVar[str]
    last_name: InitVar[str]
    name: str = derived(lambda first_name, last_name: f"{first_name} {last_name}")


def test_arguments_fill_init_only_inputs_and_the_derived_property_is_sent(memory: MemoryTransport) -> None:
    @tracks(SignedUp)
    def sign_up(first_name: str, last_name: str, name: str = "never used: derived") -> None:
        pass

    with analytics_scope(user_id=1):
        sign_up("Ada", "Lovelace")
    assert props_of(memory) == [{"name": "Ada Lovelace"}]


# -- the other calls ----------------------------------------------------------------------------------


class _Membership(instrument.ProjectGroup):
    role: str


class _MembershipFailed(instrument.Track, event="Membership Failed"):
    error: str
    role: str


def test_tracks_sends_a_group_when_a_membership_function_succeeds_filled_from_its_arguments() -> None:
    @instrument.tracks(_Membership)
    def add_member(project_id: int, role: str) -> str:
        return f"{project_id}:{role}"

    with capture_events() as events, instrument.analytics_scope(user_id=3):
        assert add_member(11, role="owner") == "11:owner"
    events.assert_grouped(_Membership, group_id=11, user_id=3, exact=True, role="owner")


def test_tracks_sends_an_alias_when_a_signup_succeeds_with_the_new_user_from_props() -> None:
    @instrument.tracks(instrument.Alias, props=lambda call: {"user_id": call.result})
    def signup(previous_id: str, email: str) -> int:
        return 99

    with capture_events() as events:
        signup("anon-7", "a@b.c")
    events.assert_aliased(previous_id="anon-7", user_id=99, count=1)


def test_a_failing_membership_function_sends_its_failure_track_and_no_group() -> None:
    @instrument.tracks(_Membership, on_error=_MembershipFailed)
    def add_member(project_id: int, role: str) -> None:
        raise PermissionError

    with capture_events() as events, instrument.analytics_scope(user_id=3), pytest.raises(PermissionError):
        add_member(11, "owner")
    assert events.groups == []
    events.assert_tracked(_MembershipFailed, error="PermissionError", role="owner")


def test_a_group_decorator_without_its_group_id_is_reported_not_raised_in_production(
    memory: instrument.MemoryTransport, reported: list[AnalyticsError]
) -> None:
    @instrument.tracks(_Membership)
    def add_member(role: str) -> str:
        return role

    assert add_member("owner") == "owner"  # no project bound: the business result is untouched
    assert memory.messages == []
    assert isinstance(reported[-1], ScopeError)
