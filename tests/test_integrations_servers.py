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


def received_ids(endpoint: SegmentEndpoint) -> set[int]:
    return {m["properties"]["n"] for m in endpoint.messages}


def assert_every_answered_request_s_event_arrived(answered: set[int], endpoint: SegmentEndpoint) -> None:
    assert len(answered) > 20, "the load did not get going"
    endpoint.wait_for(len(answered), timeout=30)
    missing = answered - received_ids(endpoint)
    assert not missing, f"{len(missing)} of {len(answered)} recorded events did not arrive"
    assert all(m["userId"] == f"user-{m['properties']['n']}" for m in endpoint.messages)


@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    workers: int, endpoint: SegmentEndpoint
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "asgi_server_app:app", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


def test_hypercorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(endpoint: SegmentEndpoint) -> None:
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "asgi_server_app:app", "--bind", f"127.0.0.1:{port}"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


def test_gunicorn_with_two_uvicorn_workers_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "asgi_server_app:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--worker-class", "uvicorn.workers.UvicornWorker", "--log-level", "warning"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


@pytest.mark.parametrize("workers", [1, 2])
def test_django_under_uvicorn_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    workers: int, endpoint: SegmentEndpoint
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "django_server_app:application", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


def test_gunicorn_sync_workers_recycled_and_stopped_with_sigterm_under_load_deliver_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "wsgi_server_app:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--max-requests", "100", "--log-level", "warning"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)


def test_django_under_daphne_stopped_with_sigterm_under_load_delivers_every_recorded_event(
    endpoint: SegmentEndpoint,
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "django_server_app:application"]
    answered = serve_load_and_terminate(command, port, endpoint)
    assert_every_answered_request_s_event_arrived(answered, endpoint)
