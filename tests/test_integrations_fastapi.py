"""FastAPI (Starlette) over ASGI: the pure ASGI middleware and the routed-ids dependency, with ``async def``
and ``def`` endpoints, a ``def`` dependency, a thread-pool fan-out and a background task, under 120
concurrent requests through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, WebSocket

import instrument
from instrument import EventName, PropagatingExecutor, ScopeError, Track, current_scope
from instrument.integrations.fastapi import AnalyticsMiddleware, path_param, scope_dependency
from instrument.testing import CapturedEvents, capture_events

pytestmark = [
    pytest.mark.timeout(60),
    # Starlette's TestClient (the WebSocket test) warns that it wants httpx2; httpx is what it runs on here.
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


class Events(EventName):
    REQUEST_STEP_DONE = "Request Step Done"


class RequestStepDone(Track, event=Events.REQUEST_STEP_DONE, scope="project"):
    n: int
    step: str


def record(n: int, step: str) -> None:
    instrument.track(RequestStepDone(n=n, step=step))


def user_from_header(connection: Any) -> object:
    value = connection.headers.get("x-user-id")
    if value == "explode":
        raise ValueError("resolver failure with secret-token-123")
    return value


def make_app() -> FastAPI:
    pool = PropagatingExecutor(ThreadPoolExecutor(max_workers=4))

    def plain_dependency(n: int) -> None:
        # A `def` dependency: FastAPI runs it in a worker thread. Declared after scope_dependency.
        record(n, "def-dependency")

    router = APIRouter(
        prefix="/projects/{project_id}",
        dependencies=[Depends(scope_dependency(project_id=path_param("project_id", int))), Depends(plain_dependency)],
    )

    @router.get("/async")
    async def async_endpoint(n: int, background: BackgroundTasks) -> dict[str, Any]:
        record(n, "async-endpoint")
        await instrument.run_in_executor(None, record, n, "run-in-executor")
        background.add_task(record, n, "background")
        return dict(current_scope())

    @router.get("/sync")
    def sync_endpoint(n: int, background: BackgroundTasks) -> dict[str, Any]:
        record(n, "sync-endpoint")
        list(pool.map(lambda step: record(n, step), ["fanout-1", "fanout-2"]))
        background.add_task(record, n, "background")
        return dict(current_scope())

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(AnalyticsMiddleware, resolvers={"user_id": user_from_header})
    return app


async def test_every_event_of_120_concurrent_requests_arrives_once_with_its_request_s_ids(
    analytics_events: CapturedEvents,
) -> None:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:

        async def call(n: int) -> dict[str, Any]:
            kind = "async" if n % 2 else "sync"
            response = await client.get(
                f"/projects/{1000 + n}/{kind}", params={"n": n}, headers={"x-user-id": f"user-{n}"}
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        bodies = await asyncio.gather(*(call(n) for n in range(120)))

    assert bodies == [{"user_id": f"user-{n}", "project_id": 1000 + n} for n in range(120)]
    steps: Counter[tuple[int, str]] = Counter()
    for event in analytics_events.of(RequestStepDone):
        n = event.properties["n"]
        assert event.user_id == f"user-{n}", event
        assert event.properties["project_id"] == 1000 + n, event
        steps[(n, event.properties["step"])] += 1
    assert set(steps.values()) == {1}
    async_steps = {"def-dependency", "async-endpoint", "run-in-executor", "background"}
    sync_steps = {"def-dependency", "sync-endpoint", "fanout-1", "fanout-2", "background"}
    for n in range(120):
        assert {step for (m, step) in steps if m == n} == (async_steps if n % 2 else sync_steps)
    assert current_scope() == {}


async def test_events_carry_segment_s_request_context(analytics_events: CapturedEvents) -> None:
    app = make_app()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            "/projects/5/async",
            params={"n": 1},
            headers={
                "x-user-id": "u1",
                "user-agent": "Mozilla/5.0 test",
                "referer": "http://testserver/home",
                "accept-language": "de-CH,de;q=0.9",
            },
        )
    assert response.status_code == 200
    [event] = analytics_events.assert_tracked(RequestStepDone, step="async-endpoint")
    assert event["context"] == {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0 test",
        "page": {
            "path": "/projects/5/async",
            "url": "http://testserver/projects/5/async?n=1",
            "referrer": "http://testserver/home",
        },
        "locale": "de-CH",
    }
    # The background task and the executor ran elsewhere and still carry it.
    [background] = analytics_events.assert_tracked(RequestStepDone, step="background")
    assert background["context"]["ip"] == "203.0.113.9"


async def test_a_request_without_ids_runs_unbound(analytics_events: CapturedEvents) -> None:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        with pytest.raises(ScopeError, match="user_id"):  # strict: the event has no user
            await client.get("/projects/1/async", params={"n": 1})


def test_a_bound_scope_in_a_plain_def_dependency_is_lost_which_is_why_scope_dependency_is_async() -> None:
    # The failure the async dependency avoids: FastAPI discards the context a `def` dependency ran in.
    app = FastAPI()

    def bind_in_thread(request: Request) -> None:
        instrument.bind_scope(user_id="lost")

    @app.get("/", dependencies=[Depends(bind_in_thread)])
    async def index() -> dict[str, Any]:
        return {"scope": dict(current_scope()), "thread": threading.current_thread().name}

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body: dict[str, Any] = (await client.get("/")).json()
            return body

    with capture_events():
        assert asyncio.run(go())["scope"] == {}


def test_scope_dependency_binds_path_ids_on_a_websocket_route_too(analytics_events: CapturedEvents) -> None:
    from starlette.testclient import TestClient

    app = FastAPI()

    @app.websocket(
        "/ws/{project_id}", dependencies=[Depends(scope_dependency(project_id=path_param("project_id", int)))]
    )
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(current_scope()))
        await websocket.close()

    app.add_middleware(AnalyticsMiddleware, resolvers={"user_id": user_from_header})

    with TestClient(app) as client, client.websocket_connect("/ws/12", headers={"x-user-id": "w"}) as ws:
        assert ws.receive_json() == {"user_id": "w", "project_id": 12}
