"""The integration examples, exercised: the FastAPI service under a real uvicorn server on 127.0.0.1 with
100 concurrent requests, and the Flask app through Flask's test client. (The Celery example's prefork
worker is exercised in test_integrations_celery.py.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from examples.fastapi_service.app import (
    SESSIONS,
    ProjectViewed,
    ReportEmailSent,
    ReportExportStarted,
    ReportPartRendered,
)
from examples.fastapi_service.app import app as fastapi_app
from examples.flask_app.app import ExportChunkSent
from examples.flask_app.app import app as flask_app
from instrument import ScopeError
from instrument.testing import CapturedEvents

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    config = uvicorn.Config(fastapi_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_the_fastapi_example_under_uvicorn_tracks_every_hand_off_with_the_request_s_ids(
    uvicorn_url: str, analytics_events: CapturedEvents
) -> None:
    # Users sign in: the service issued each a token (the example's stand-in for its authentication).
    SESSIONS.update({f"token-{n}": 10_000 + n for n in range(100)})

    async def run_all() -> None:
        async with httpx.AsyncClient(base_url=uvicorn_url, timeout=30) as client:

            async def call(n: int) -> None:
                headers = {"authorization": f"Bearer token-{n}"}
                if n % 2:
                    response = await client.get(f"/projects/{n}", headers=headers)
                else:
                    response = await client.post(f"/projects/{n}/reports", params={"parts": 3}, headers=headers)
                assert response.status_code == 200, response.text

            await asyncio.gather(*(call(n) for n in range(100)))

    asyncio.run(run_all())
    # Background tasks run after the response was sent: give the server a moment to finish them.
    deadline = time.monotonic() + 10
    while len(analytics_events.of(ReportEmailSent)) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    by_request: Counter[tuple[str, int, str]] = Counter()
    for event in analytics_events.tracks:
        project = event.properties["project_id"]
        assert event.user_id == str(10_000 + project), event
        by_request[(event.user_id, project, event.event or "")] += 1
    for n in range(100):
        user = str(10_000 + n)
        if n % 2:
            assert by_request[(user, n, ProjectViewed._event or "")] == 1
        else:
            assert by_request[(user, n, ReportExportStarted._event or "")] == 1
            assert by_request[(user, n, ReportPartRendered._event or "")] == 3
            assert by_request[(user, n, ReportEmailSent._event or "")] == 1
    assert len(analytics_events) == 50 + 50 * 5


def test_the_flask_example_tracks_each_streamed_chunk_with_the_request_s_ids(analytics_events: CapturedEvents) -> None:
    client = flask_app.test_client()
    client.set_cookie("session", "demo-session-42")
    response = client.get("/projects/7/export")
    assert response.status_code == 200
    assert response.get_data(as_text=True).count("chunk") == 3
    events = analytics_events.assert_tracked(ExportChunkSent, count=3, user_id="42", project_id=7)
    assert [e.properties["chunk"] for e in events] == [0, 1, 2]


def test_the_examples_never_take_a_user_id_from_a_header_the_client_fills_in(
    uvicorn_url: str, analytics_events: CapturedEvents
) -> None:
    # A caller posing as user 42 through a plain header is anonymous to the example: nothing is sent.
    with httpx.Client(base_url=uvicorn_url, timeout=30) as client:
        response = client.get("/projects/7", headers={"x-user-id": "42", "authorization": "Bearer forged"})
    assert response.status_code == 500  # strict mode (the testing kit): the unscoped event raised
    with pytest.raises(ScopeError):  # strict mode: the unscoped event raises through Flask's test client
        flask_app.test_client().get("/projects/7/export", headers={"X-User-Id": "42"}).get_data()
    assert not [event for event in analytics_events.tracks if event.user_id == "42"]
