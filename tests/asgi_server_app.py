"""An ASGI app served by real servers (uvicorn, hypercorn, gunicorn) in the shutdown tests.

Configured at import, so every worker process (spawned or forked) sends to ``ENDPOINT``; the timer is
slow (30 s), so what a worker recorded reaches the endpoint only through the shutdown path. Each
``GET /hit/{n}`` records one event for user ``n``, bound by a resolver of the middleware.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from starlette.requests import HTTPConnection

import instrument
from instrument import EventName, Track
from instrument.integrations.asgi import AnalyticsMiddleware


class Events(EventName):
    PAGE_HIT = "Page Hit"


class PageHit(Track, event=Events.PAGE_HIT):
    n: int


def user_of(connection: HTTPConnection) -> str:
    return "user-" + connection.url.path.rsplit("/", 1)[-1]


instrument.configure("wk-server", host=os.environ["ENDPOINT"], flush_interval=30.0, batch_size=1000, exit_timeout=20.0)
app = FastAPI()
app.add_middleware(AnalyticsMiddleware, resolvers={"user_id": user_of})


@app.get("/hit/{n}")
async def hit(n: int) -> dict[str, int]:
    instrument.track(PageHit(n=n))
    return {"n": n}
