"""Flask through the WSGI middleware, served by a real single-threaded WSGI server on 127.0.0.1: every
streamed chunk is scoped, and the next request on the same worker thread sees no scope.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

import instrument
from instrument import (
    ConfigurationError,
    EventName,
    PropagationError,
    Track,
    analytics_scope,
    current_scope,
    inject_scope,
)
from instrument.integrations.wsgi import AnalyticsWSGIMiddleware
from instrument.testing import CapturedEvents, capture_events

pytestmark = pytest.mark.timeout(60)


class Events(EventName):
    CHUNK_STREAMED = "Chunk Streamed"


class ChunkStreamed(Track, event=Events.CHUNK_STREAMED, scope="project"):
    n: int


def user_from_header(req: Any) -> object:
    value = req.headers.get("X-User-Id")
    if value == "explode":
        raise RuntimeError("no")
    return value


def make_app() -> Flask:
    app = Flask(__name__)
    threads: list[str] = []

    @app.get("/stream")
    def stream() -> Response:
        count = int(request.args["count"])

        def chunks() -> Iterator[str]:
            for n in range(count):
                # Runs while the server iterates the response, after the view returned.
                instrument.track(ChunkStreamed(n=n))
                threads.append(threading.current_thread().name)
                yield json.dumps(dict(current_scope())) + "\n"

        return Response(chunks(), mimetype="text/plain")

    @app.get("/scope")
    def scope() -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return dict(current_scope())

    app.config["threads"] = threads
    app.wsgi_app = AnalyticsWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, resolvers={"user_id": user_from_header, "project_id": lambda r: r.headers.get("X-Project-Id")}
    )
    return app


@pytest.fixture
def served() -> Iterator[tuple[str, Flask]]:
    app = make_app()
    server = make_server("127.0.0.1", 0, app, threaded=False)  # one worker thread serves every request
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join(10)


def test_every_streamed_chunk_is_scoped_and_the_next_anonymous_request_sees_no_scope(
    served: tuple[str, Flask], analytics_events: CapturedEvents
) -> None:
    url, app = served
    for user in ("alice", "bob"):
        response = requests.get(
            f"{url}/stream", params={"count": 5}, headers={"X-User-Id": user, "X-Project-Id": "p9"}, timeout=10
        )
        assert response.status_code == 200
        assert [json.loads(line) for line in response.text.splitlines()] == [{"user_id": user, "project_id": "p9"}] * 5
        anonymous = requests.get(f"{url}/scope", timeout=10)
        assert anonymous.json() == {}
    assert len(set(app.config["threads"])) == 1  # really the same worker thread throughout
    for user in ("alice", "bob"):
        events = analytics_events.assert_tracked(ChunkStreamed, user_id=user, project_id="p9")
        assert [e.properties["n"] for e in events] == list(range(5))
    assert len(analytics_events) == 10
    assert analytics_events[0]["context"]["page"]["path"] == "/stream"
    assert analytics_events[0]["context"]["ip"] == "127.0.0.1"


@pytest.mark.analytics_lenient
def test_a_raising_resolver_leaves_the_request_unbound_and_succeeding(
    served: tuple[str, Flask], analytics_events: CapturedEvents
) -> None:
    url, _ = served
    response = requests.get(f"{url}/scope", headers={"X-User-Id": "explode", "X-Project-Id": "p1"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {}
    assert [type(e) for e in analytics_events.errors] == [PropagationError]


def test_a_response_closed_early_still_runs_its_close_in_the_request_s_scope(analytics_events: CapturedEvents) -> None:
    closed: list[dict[str, object]] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"a"
            yield b"b"

        def close(self) -> None:
            closed.append(dict(current_scope()))

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    middleware = AnalyticsWSGIMiddleware(app, resolvers={"user_id": lambda r: "closer"})
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    body = middleware(environ, lambda *a: None)
    assert next(iter(body)) == b"a"
    assert current_scope() == {}
    closer = threading.Thread(target=body.close)  # closed from another thread, as some servers do
    closer.start()
    closer.join(10)
    assert closed == [{"user_id": "closer"}]


def _call(middleware: AnalyticsWSGIMiddleware, headers: dict[str, str] | None = None) -> list[bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/p", "SERVER_NAME": "x", "SERVER_PORT": "80"}
    environ["wsgi.url_scheme"] = "http"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return list(middleware(environ, lambda *a: None))


def _scope_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [json.dumps(dict(current_scope()), sort_keys=True).encode()]


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=20),
        st.booleans(),
        st.floats(allow_nan=True),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_whatever_a_resolver_returns_the_request_succeeds_bound_only_to_a_real_id(value: Any) -> None:
    middleware = AnalyticsWSGIMiddleware(_scope_app, resolvers={"user_id": lambda r: value})
    with capture_events(strict=False) as events:
        [body] = _call(middleware)
    is_id = isinstance(value, (int, str)) and not isinstance(value, bool) and value != ""  # "" is no id
    assert json.loads(body) == ({"user_id": value} if is_id else {})
    assert len(events.errors) == (0 if is_id or value is None else 1)
    assert all(isinstance(e, PropagationError) for e in events.errors)


def test_a_trusted_carrier_header_from_another_service_binds_its_scope(analytics_events: CapturedEvents) -> None:
    with analytics_scope(user_id=5, project_id=6):
        headers = inject_scope({})
    trusting = AnalyticsWSGIMiddleware(_scope_app, trust_carrier=True)
    assert json.loads(_call(trusting, headers)[0]) == {"project_id": 6, "user_id": 5}
    assert json.loads(_call(AnalyticsWSGIMiddleware(_scope_app), headers)[0]) == {}  # not trusted by default


def test_a_resolver_for_an_unknown_field_or_not_callable_is_refused_at_setup() -> None:
    with pytest.raises(ConfigurationError, match="password"):
        AnalyticsWSGIMiddleware(_scope_app, resolvers={"password": lambda r: "x"})
    with pytest.raises(ConfigurationError, match="not callable"):
        AnalyticsWSGIMiddleware(_scope_app, resolvers={"user_id": "X-User-Id"})  # type: ignore[dict-item]
