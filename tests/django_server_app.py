"""A Django project in one module, served by a real ASGI server in the shutdown tests.

Configured at import (``ENDPOINT``; a slow 30 s timer, so only the shutdown path delivers). Each
``GET /hit/{n}`` records one event for user ``n``; ``application`` is ``asgi_application()``.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

import instrument
from instrument import EventName, Track

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["instrument.integrations.django.AnalyticsMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    INSTRUMENT_SCOPE_RESOLVERS={"user_id": lambda request: "user-" + request.path.rsplit("/", 1)[-1]},
)
django.setup()

from instrument.integrations.django import asgi_application  # noqa: E402 - needs the settings


class Events(EventName):
    PAGE_HIT = "Page Hit"


class PageHit(Track, event=Events.PAGE_HIT):
    n: int


instrument.configure("wk-server", host=os.environ["ENDPOINT"], flush_interval=30.0, batch_size=1000, exit_timeout=20.0)


def hit(request: HttpRequest, n: int) -> JsonResponse:
    instrument.track(PageHit(n=n))
    return JsonResponse({"n": n})


urlpatterns = [path("hit/<int:n>", hit)]
application = asgi_application()
