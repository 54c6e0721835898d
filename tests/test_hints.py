"""An event that misses its ids names the fix of the framework it was recorded in: FastAPI's
``scope_dependency`` for a scope bound in a ``def`` dependency, the WSGI middleware's resolvers, Django's
``INSTRUMENT_SCOPE_RESOLVERS``; outside any of them, only the generic text. (Process pool workers:
tests/test_propagation.py; Celery: tests/test_integrations_celery.py; Django: tests/test_integrations_django.py.)
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from flask import Flask

import instrument
from instrument import EventName, ScopeError, Track
from instrument.integrations.asgi import AnalyticsMiddleware
from instrument.integrations.wsgi import AnalyticsWSGIMiddleware
from instrument.testing import CapturedEvents

pytestmark = pytest.mark.timeout(30)


class Events(EventName):
    REPORT_OPENED = "Report Opened"


class ReportOpened(Track, event=Events.REPORT_OPENED, scope="project"):
    pass


def test_an_event_after_binding_in_a_fastapi_def_dependency_names_scope_dependency(
    analytics_events: CapturedEvents,
) -> None:
    app = FastAPI()

    def bind_in_a_thread(request: Request) -> None:
        instrument.bind_scope(user_id=1, project_id=2)  # runs in a thread whose context FastAPI discards

    @app.get("/", dependencies=[Depends(bind_in_a_thread)])
    async def index() -> dict[str, str]:
        instrument.track(ReportOpened())
        return {}

    async def call() -> None:
        transport = httpx.ASGITransport(app=AnalyticsMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/")

    with pytest.raises(ScopeError, match=r"Depends\(instrument\.integrations\.fastapi\.scope_dependency"):
        asyncio.run(call())


def test_an_event_without_ids_in_a_wsgi_request_names_the_middleware_s_resolvers(
    analytics_events: CapturedEvents,
) -> None:
    flask_app = Flask(__name__)
    flask_app.testing = True  # the view's exception reaches the test

    @flask_app.get("/")
    def index() -> str:
        instrument.track(ReportOpened())
        return "ok"

    flask_app.wsgi_app = AnalyticsWSGIMiddleware(flask_app.wsgi_app)  # type: ignore[method-assign]
    with pytest.raises(ScopeError, match=r"resolvers of AnalyticsWSGIMiddleware"):
        flask_app.test_client().get("/")


def test_outside_any_integration_the_error_names_no_framework(analytics_events: CapturedEvents) -> None:
    with pytest.raises(ScopeError) as raised:
        ReportOpened()
    assert "scope_dependency" not in str(raised.value)
    assert "AnalyticsWSGIMiddleware" not in str(raised.value)
