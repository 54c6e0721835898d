"""The pure ASGI middleware around a bare ASGI app (no framework routing): per-request binding from
resolvers and trusted carriers, Segment's request context, lifespan passed through, and raising
resolvers that never fail the request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

import instrument
from instrument import EventName, PropagationError, Track, analytics_scope, current_scope, inject_scope
from instrument.integrations import header
from instrument.integrations.asgi import AnalyticsMiddleware
from instrument.testing import CapturedEvents, SegmentEndpoint

pytestmark = pytest.mark.timeout(30)


class Events(EventName):
    ASGI_HIT_RECORDED = "ASGI Hit Recorded"


class AsgiHitRecorded(Track, event=Events.ASGI_HIT_RECORDED):
    pass


def explode(connection: Any) -> object:
    raise ValueError("resolver failure with secret-token-123")


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app: answers with the bound scope, tracking one event when asked to."""
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete", "scope_seen": dict(current_scope())})
        return
    if scope["path"] == "/track":
        instrument.track(AsgiHitRecorded())
    await asyncio.sleep(0)  # let other requests interleave
    body = json.dumps(dict(current_scope()), sort_keys=True).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def client_for(asgi: Any, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, **kwargs), base_url="http://svc")


async def test_each_concurrent_request_is_bound_to_its_own_ids_and_restored_after(
    analytics_events: CapturedEvents,
) -> None:
    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": header("x-user-id")})
    async with client_for(wrapped) as client:
        responses = await asyncio.gather(*(client.get("/", headers={"x-user-id": f"u{n}"}) for n in range(50)))
    assert [r.json() for r in responses] == [{"user_id": f"u{n}"} for n in range(50)]
    assert current_scope() == {}


async def test_events_carry_segment_s_request_context(analytics_events: CapturedEvents) -> None:
    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": header("x-user-id")})
    async with client_for(wrapped, client=("203.0.113.9", 4711)) as client:
        headers = {"x-user-id": "u1", "user-agent": "Mozilla/5.0 test", "referer": "http://svc/home"}
        response = await client.get("/track?x=1", headers={**headers, "accept-language": "de-CH,de;q=0.9"})
    assert response.status_code == 200
    [event] = analytics_events.assert_tracked(AsgiHitRecorded, user_id="u1")
    assert event["context"] == {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0 test",
        "page": {"path": "/track", "url": "http://svc/track?x=1", "referrer": "http://svc/home"},
        "locale": "de-CH",
    }


async def test_request_context_can_be_left_out(analytics_events: CapturedEvents) -> None:
    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": header("x-user-id")}, request_context=False)
    async with client_for(wrapped) as client:
        await client.get("/track", headers={"x-user-id": "u1"})
    assert "context" not in analytics_events[0]


async def test_a_trusted_carrier_binds_the_calling_service_s_scope(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id=5, project_id=6):
        headers = dict(inject_scope({}))
    async with client_for(AnalyticsMiddleware(app, trust_carrier=True)) as client:
        assert (await client.get("/", headers=headers)).json() == {"project_id": 6, "user_id": 5}
    async with client_for(AnalyticsMiddleware(app)) as client:
        assert (await client.get("/", headers=headers)).json() == {}  # not trusted by default


async def test_with_a_trusted_carrier_a_resolver_s_none_leaves_its_field_unbound_not_the_header_s_id(
    analytics_events: CapturedEvents,
) -> None:
    # An anonymous request (the resolver finds no session) that sends a carrier naming user 5 is not user 5.
    with analytics_scope(user_id=5, project_id=6):
        headers = dict(inject_scope({}))
    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": lambda connection: None}, trust_carrier=True)
    async with client_for(wrapped) as client:
        assert (await client.get("/", headers=headers)).json() == {"project_id": 6}


async def test_the_lifespan_s_shutdown_completes_only_after_what_is_queued_was_delivered(
    endpoint: SegmentEndpoint,
) -> None:
    instrument.configure("wk", host=endpoint.url, flush_interval=30.0)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    arrived_at_completion: list[int] = []

    async def lifespan_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        instrument.track(AsgiHitRecorded(user_id=1))  # recorded by the app's own shutdown
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            arrived_at_completion.append(len(endpoint.messages))

    await AnalyticsMiddleware(lifespan_app)({"type": "lifespan"}, receive, send)
    assert arrived_at_completion == [1]


async def test_lifespan_passes_through_unbound() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": explode})  # never called for lifespan
    await wrapped({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete", "scope_seen": {}}]


@pytest.mark.analytics_lenient
async def test_a_raising_resolver_never_fails_the_request_which_runs_unbound_and_is_reported(
    analytics_events: CapturedEvents,
) -> None:
    wrapped = AnalyticsMiddleware(app, resolvers={"user_id": explode, "project_id": lambda c: 7})
    async with client_for(wrapped) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.json() == {}  # not half-bound either
    [error] = analytics_events.errors
    assert isinstance(error, PropagationError)
    assert "user_id" in str(error)
    assert "ValueError" in str(error)
    assert "secret-token" not in str(error)


async def test_a_raising_resolver_raises_in_strict_mode(analytics_events: CapturedEvents) -> None:
    async with client_for(AnalyticsMiddleware(app, resolvers={"user_id": explode})) as client:
        with pytest.raises(PropagationError, match="user_id"):
            await client.get("/")
