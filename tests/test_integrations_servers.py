"""Real servers stopped with SIGTERM under load: every event recorded by a request that was answered
arrives. uvicorn and hypercorn re-raise SIGTERM after their graceful shutdown (so ``atexit`` never runs):
the ASGI middleware (and Django's ``asgi_application()``) deliver at the end of the lifespan. gunicorn
(uvicorn workers, and sync workers recycled by ``--max-requests``) and daphne exit through atexit.
"""

from __future__ import annotations

import sys

import pytest
from server_runner import free_port, serve_load_and_terminate

from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(240)
QUIET = "--log-level warning"


def received_ids(endpoint: SegmentEndpoint) -> set[int]:
    return {m["properties"]["n"] for m in endpoint.messages}


def assert_every_answered_request_s_event_arrived(answered: set[int], endpoint: SegmentEndpoint) -> None:
    assert len(answered) > 20, "the load did not get going"
    endpoint.wait_for(len(answered), timeout=30)
    missing = answered - received_ids(endpoint)
    assert not missing, f"{len(missing)} of {len(answered)} recorded events did not arrive"
    assert all(m["userId"] == f"user-{m['properties']['n']}" for m in endpoint.messages)


def serve_terminate_and_check(endpoint: SegmentEndpoint, arguments: str, answered_first: int = 150) -> None:
    """Run ``python -m <arguments>`` (``{port}`` in them: a free port) under load, SIGTERM it once
    ``answered_first`` requests were answered, and check that every answered request's event arrived."""
    port = free_port()
    command = [sys.executable, "-m", *arguments.format(port=port).split()]
    answered = serve_load_and_terminate(command, port, endpoint, answered_first)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    workers: int, endpoint: SegmentEndpoint
) -> None:
    serve_terminate_and_check(endpoint, f"uvicorn asgi_server_app:app --port {{port}} --workers {workers} {QUIET}")


def test_hypercorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(endpoint: SegmentEndpoint) -> None:
    serve_terminate_and_check(endpoint, "hypercorn asgi_server_app:app --bind 127.0.0.1:{port}")


def test_gunicorn_with_two_uvicorn_workers_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    serve_terminate_and_check(
        endpoint,
        "gunicorn asgi_server_app:app --bind 127.0.0.1:{port} --workers 2"
        f" --worker-class uvicorn.workers.UvicornWorker {QUIET}",
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_django_under_uvicorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    workers: int, endpoint: SegmentEndpoint
) -> None:
    serve_terminate_and_check(
        endpoint, f"uvicorn django_server_app:application --port {{port}} --workers {workers} {QUIET}"
    )


def test_gunicorn_sync_workers_recycled_and_stopped_with_sigterm_under_load_deliver_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    # 500 answered before the signal: each of the two workers has been recycled at least once.
    serve_terminate_and_check(
        endpoint,
        f"gunicorn wsgi_server_app:app --bind 127.0.0.1:{{port}} --workers 2 --max-requests 100 {QUIET}",
        answered_first=500,
    )


def test_django_under_daphne_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    serve_terminate_and_check(endpoint, "daphne -b 127.0.0.1 -p {port} django_server_app:application")
