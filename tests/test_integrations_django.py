"""Django's middleware with Django's own test clients (settings configured here): sync views under the
WSGI-style client, async views under the ASGI-style AsyncClient, streamed content (sync streams under
Django's real ASGI handler too), raising resolvers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import django
import httpx
import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["instrument.integrations.django.AnalyticsMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        INSTRUMENT_SCOPE_RESOLVERS={
            "user_id": "test_integrations_django.user_from_header",
            "project_id": lambda request: request.GET.get("project"),
        },
    )
    django.setup()

from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import AsyncClient, Client
from django.urls import path

import instrument
from instrument import EventName, PropagationError, Track, current_scope
from instrument.testing import CapturedEvents

pytestmark = pytest.mark.timeout(60)


class Events(EventName):
    PAGE_SERVED = "Page Served"


class PageServed(Track, event=Events.PAGE_SERVED, scope="project"):
    view: str
    n: int = 0


def user_from_header(request: HttpRequest) -> object:
    value = request.headers.get("X-User-Id")
    if value == "explode":
        raise KeyError("nope")
    return value


def sync_view(request: HttpRequest) -> HttpResponse:
    instrument.track(PageServed(view="sync"))
    return JsonResponse(dict(current_scope()))


async def async_view(request: HttpRequest) -> HttpResponse:
    instrument.track(PageServed(view="async"))
    return JsonResponse(dict(current_scope()))


def scope_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(dict(current_scope()))


def streaming_view(request: HttpRequest) -> HttpResponse:
    def chunks() -> Iterator[str]:
        for n in range(3):
            instrument.track(PageServed(view="stream", n=n))
            yield json.dumps(dict(current_scope())) + "\n"

    return StreamingHttpResponse(chunks())  # type: ignore[return-value]


async def async_streaming_view(request: HttpRequest) -> HttpResponse:
    async def chunks() -> AsyncIterator[str]:
        for n in range(3):
            instrument.track(PageServed(view="astream", n=n))
            yield json.dumps(dict(current_scope())) + "\n"

    return StreamingHttpResponse(chunks())  # type: ignore[return-value]


urlpatterns = [
    path("sync", sync_view),
    path("async", async_view),
    path("scope", scope_view),
    path("stream", streaming_view),
    path("astream", async_streaming_view),
]


def test_sync_views_and_streamed_content_carry_the_request_s_scope_and_the_next_request_none(
    analytics_events: CapturedEvents,
) -> None:
    client = Client()
    for user in ("ada", "bo"):
        response = client.get("/sync", {"project": "p1"}, headers={"X-User-Id": user})
        assert response.json() == {"user_id": user, "project_id": "p1"}
        streamed = client.get("/stream", {"project": "p2"}, headers={"X-User-Id": user})
        lines = [json.loads(line) for line in b"".join(streamed.streaming_content).decode().splitlines()]  # type: ignore[attr-defined]
        assert lines == [{"user_id": user, "project_id": "p2"}] * 3
        assert client.get("/scope").json() == {}
    for user in ("ada", "bo"):
        analytics_events.assert_tracked(PageServed, count=1, view="sync", user_id=user, project_id="p1")
        analytics_events.assert_tracked(PageServed, count=3, view="stream", user_id=user, project_id="p2")
    [first] = analytics_events.assert_tracked(PageServed, view="sync", user_id="ada")
    assert first["context"]["page"] == {"path": "/sync", "url": "http://testserver/sync?project=p1"}
    assert current_scope() == {}


async def test_async_views_and_async_streams_carry_the_request_s_scope(analytics_events: CapturedEvents) -> None:
    client = AsyncClient()
    response = await client.get("/async", {"project": "p3"}, headers={"X-User-Id": "cy"})
    assert response.json() == {"user_id": "cy", "project_id": "p3"}
    streamed = await client.get("/astream", {"project": "p4"}, headers={"X-User-Id": "cy"})
    body = b"".join([chunk async for chunk in streamed.streaming_content])  # type: ignore[attr-defined]
    assert [json.loads(line) for line in body.decode().splitlines()] == [{"user_id": "cy", "project_id": "p4"}] * 3
    assert (await client.get("/scope")).json() == {}
    analytics_events.assert_tracked(PageServed, count=1, view="async", user_id="cy", project_id="p3")
    analytics_events.assert_tracked(PageServed, count=3, view="astream", user_id="cy", project_id="p4")
    assert current_scope() == {}


@pytest.mark.analytics_lenient
def test_a_raising_resolver_leaves_the_request_unbound_and_succeeding(analytics_events: CapturedEvents) -> None:
    response = Client().get("/scope", {"project": "p1"}, headers={"X-User-Id": "explode"})
    assert response.status_code == 200
    assert response.json() == {}
    [error] = analytics_events.errors
    assert isinstance(error, PropagationError)
    assert "KeyError" in str(error)


def test_the_middleware_is_sync_and_async_capable() -> None:
    from instrument.integrations.django import AnalyticsMiddleware

    assert AnalyticsMiddleware.sync_capable
    assert AnalyticsMiddleware.async_capable

    async def get_response(request: Any) -> HttpResponse:
        return HttpResponse()

    # Django asks asgiref whether a middleware instance is async.
    assert iscoroutinefunction(AnalyticsMiddleware(get_response))
    assert not iscoroutinefunction(AnalyticsMiddleware(lambda request: HttpResponse()))


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_under_django_s_asgi_handler_a_sync_stream_is_scoped_for_every_chunk(
    analytics_events: CapturedEvents,
) -> None:
    # Django's real ASGI handler: a sync iterator is consumed in a worker thread after the middleware
    # returned, so each chunk must run in the request's context.
    application = get_asgi_application()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for user in ("dee", "eve"):
            streamed = await client.get("/stream", params={"project": "p5"}, headers={"X-User-Id": user})
            lines = [json.loads(line) for line in streamed.text.splitlines()]
            assert lines == [{"user_id": user, "project_id": "p5"}] * 3
    for user in ("dee", "eve"):
        analytics_events.assert_tracked(PageServed, count=3, view="stream", user_id=user, project_id="p5")
    assert current_scope() == {}


def test_an_event_without_ids_in_a_django_request_names_the_resolver_setting(analytics_events: CapturedEvents) -> None:
    with pytest.raises(instrument.ScopeError, match="INSTRUMENT_SCOPE_RESOLVERS"):
        Client().get("/sync")  # no user header, no project: the view's event has no ids
