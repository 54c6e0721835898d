"""A Flask app served by gunicorn's sync workers in the shutdown tests.

Configured at import (``ENDPOINT``; a slow 30 s timer, so only the exit paths deliver). Each
``GET /hit/{n}`` records one event for user ``n``, bound by a resolver of the WSGI middleware.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

import instrument
from instrument import EventName, Track
from instrument.integrations.wsgi import AnalyticsWSGIMiddleware


class Events(EventName):
    PAGE_HIT = "Page Hit"


class PageHit(Track, event=Events.PAGE_HIT):
    n: int


def user_of(request: Any) -> str:
    return "user-" + str(request.path).rsplit("/", 1)[-1]


instrument.configure("wk-server", host=os.environ["ENDPOINT"], flush_interval=30.0, batch_size=1000, exit_timeout=20.0)
app = Flask(__name__)
app.wsgi_app = AnalyticsWSGIMiddleware(app.wsgi_app, resolvers={"user_id": user_of})  # type: ignore[method-assign]


@app.get("/hit/<int:n>")
def hit(n: int) -> dict[str, int]:
    instrument.track(PageHit(n=n))
    return {"n": n}
