"""Anonymous visitors: a scope may carry ``anonymous_id``, sent as the message's ``anonymousId``; a message
needs ``userId`` or ``anonymousId`` (Segment's rule). Through the model, the wire, the testing kit, a
carrier and a real web request (cookie resolver, Segment's request context).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client as DjangoClient
from fastapi import FastAPI

import instrument
from instrument import (
    ConfigurationError,
    EventName,
    Identify,
    ScopeError,
    Track,
    analytics_scope,
    define_scope,
    extract_scope,
    inject_scope,
)
from instrument.integrations import cookie, header
from instrument.integrations.fastapi import AnalyticsMiddleware
from instrument.testing import CapturedEvents
from instrument.transports import MemoryTransport

pytestmark = pytest.mark.timeout(30)


class Events(EventName):
    PRICING_VIEWED = "Pricing Viewed"
    PROJECT_OPENED = "Project Opened"


class PricingViewed(Track, event=Events.PRICING_VIEWED):
    plan: str


class ProjectOpened(Track, event=Events.PROJECT_OPENED, scope="project"):
    pass


class VisitorTraits(Identify):
    referrer: str


def test_an_anonymous_visitor_s_track_is_sent_with_anonymous_id_and_no_user_id(memory: MemoryTransport) -> None:
    with analytics_scope(anonymous_id="anon-1"):
        assert instrument.track(PricingViewed(plan="pro")).ok
    [message] = memory.messages
    assert "userId" not in message
    assert message["anonymousId"] == "anon-1"
    assert message["properties"] == {"plan": "pro"}  # never a property


def test_a_signed_in_user_s_event_carries_both_ids(analytics_events: CapturedEvents) -> None:
    with analytics_scope(anonymous_id="anon-2", user_id=42, project_id=7):
        instrument.track(ProjectOpened())
        instrument.identify(VisitorTraits(referrer="ad"))
    [track] = analytics_events.assert_tracked(ProjectOpened, user_id=42, anonymous_id="anon-2", project_id=7)
    assert (track.user_id, track.anonymous_id) == ("42", "anon-2")
    analytics_events.assert_identified(VisitorTraits, user_id=42, referrer="ad")
    assert analytics_events.identifies[0]["anonymousId"] == "anon-2"


def test_anonymous_ids_work_as_keywords_and_in_identifies(analytics_events: CapturedEvents) -> None:
    instrument.track(PricingViewed(plan="free", anonymous_id="kw"))
    with analytics_scope(anonymous_id=99):
        instrument.identify(VisitorTraits(referrer="search"))
    analytics_events.assert_tracked(PricingViewed, anonymous_id="kw")
    [identify] = analytics_events.identifies
    assert identify.anonymous_id == "99"
    assert "userId" not in identify


def test_a_message_needs_a_user_id_or_an_anonymous_id(analytics_events: CapturedEvents) -> None:
    with pytest.raises(ScopeError, match="user_id") as caught:
        PricingViewed(plan="pro")
    assert caught.value.field == "user_id"
    with analytics_scope(anonymous_id="a"), pytest.raises(ScopeError, match="project_id"):
        ProjectOpened()  # the anonymous id stands in for user_id only


@pytest.mark.parametrize("bad", ["", True, 1.5])
def test_an_anonymous_id_must_be_an_id(bad: Any, analytics_events: CapturedEvents) -> None:
    with analytics_scope(anonymous_id=bad), pytest.raises(ScopeError) as caught:
        PricingViewed(plan="pro")
    assert caught.value.field == "anonymous_id"


def test_anonymous_id_is_reserved_for_scopes_and_wire_keys() -> None:
    with pytest.raises(ConfigurationError, match="reserved"):
        define_scope("visitor", fields=["anonymous_id"])
    with pytest.raises(ConfigurationError, match="anonymous_id"):
        instrument.configure(transport=MemoryTransport(), wire_keys={"anonymous_id": "anon"})


def test_a_carrier_carries_the_anonymous_id() -> None:
    with analytics_scope(anonymous_id="anon-3"):
        headers = inject_scope({})
    assert extract_scope(headers) == {"anonymous_id": "anon-3"}


async def test_an_asgi_request_binds_the_anonymous_id_from_a_cookie_with_its_request_context(
    analytics_events: CapturedEvents,
) -> None:
    app = FastAPI()

    @app.get("/pricing")
    async def pricing() -> str:
        instrument.track(PricingViewed(plan="team"))
        return "ok"

    app.add_middleware(
        AnalyticsMiddleware, resolvers={"user_id": header("x-user-id"), "anonymous_id": cookie("ajs_anonymous_id")}
    )
    transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as client:
        client.cookies.set("ajs_anonymous_id", '"anon-cookie"')  # analytics.js writes it JSON-quoted
        response = await client.get("/pricing", headers={"user-agent": "UA/1", "accept-language": "fr-FR,fr"})
    assert response.status_code == 200
    [event] = analytics_events.assert_tracked(PricingViewed, anonymous_id="anon-cookie", plan="team")
    assert "userId" not in event
    assert event["context"] == {
        "ip": "198.51.100.4",
        "userAgent": "UA/1",
        "page": {"path": "/pricing", "url": "https://shop.example/pricing"},
        "locale": "fr-FR",
    }


def test_a_django_request_binds_the_anonymous_id_from_a_cookie(analytics_events: CapturedEvents) -> None:
    import test_integrations_django  # noqa: F401 - configures Django's settings and URLs
    from django.conf import settings

    resolvers = {"anonymous_id": cookie("ajs_anonymous_id")}
    with _django_settings(settings, INSTRUMENT_SCOPE_RESOLVERS=resolvers):
        client = DjangoClient()
        client.cookies["ajs_anonymous_id"] = "anon-dj"
        assert client.get("/scope").json() == {"anonymous_id": "anon-dj"}


class _django_settings:
    def __init__(self, settings: Any, **values: Any) -> None:
        self.settings, self.values, self.saved = settings, values, {}

    def __enter__(self) -> None:
        for name, value in self.values.items():
            self.saved[name] = getattr(self.settings, name)
            setattr(self.settings, name, value)

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            setattr(self.settings, name, value)
