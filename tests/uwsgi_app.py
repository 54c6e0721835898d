"""A WSGI app run by a real uWSGI in the short-lived-runtime tests (``ENDPOINT`` in the environment).

Each request records one event inside ``deliver_on_return``; the client's timer is slow (30 s).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import instrument
from instrument import EventName, Track, analytics_scope, deliver_on_return


class Events(EventName):
    PAGE_HIT = "Page Hit"


class PageHit(Track, event=Events.PAGE_HIT):
    n: int


instrument.configure("wk-uwsgi", host=os.environ["ENDPOINT"], flush_interval=30.0, exit_timeout=2.0)


@deliver_on_return(timeout=2.0)
def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    n = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
    with analytics_scope(user_id=f"user-{n}"):
        instrument.track(PageHit(n=n))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
