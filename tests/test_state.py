"""One global state: the current client (``instrument.get_client()``), its own strictness, and the reset for tests."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import instrument
from instrument import (
    Client,
    EventName,
    MemoryTransport,
    PropertyError,
    ScopeError,
    Track,
    analytics_scope,
    bind_scope,
    current_scope,
)
from instrument.testing import capture_events, reset


class Events(EventName):
    PROJECT_CREATED = "Project Created"


class ProjectCreated(Track, event=Events.PROJECT_CREATED, scope="project"):
    name: str


def test_a_strict_client_raises_for_a_bad_event_even_when_it_is_not_the_global_one() -> None:
    client = Client(MemoryTransport(), strict=True, sync=True)
    assert instrument.get_client() is not client
    assert not instrument.get_client().strict
    with analytics_scope(user_id=1):
        bad = ProjectCreated(name="x")  # production mode here: the error is kept on the event
    with pytest.raises(ScopeError, match="project_id"):
        client.track(bad)
    with pytest.raises(PropertyError, match="takes a Track instance"):
        client.track("Project Created")  # type: ignore[arg-type]


def test_a_lenient_client_drops_what_a_strict_global_client_would_have_raised_for() -> None:
    transport = MemoryTransport()
    lenient = Client(transport, strict=False, sync=True)
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    result = lenient.track("Project Created")  # type: ignore[arg-type]
    assert not result.ok
    assert isinstance(result.error, PropertyError)
    assert transport.messages == []


def test_construction_is_strict_exactly_when_the_installed_client_is() -> None:
    with analytics_scope(user_id=1):
        assert ProjectCreated(name="x").validation_error is not None
        strict = instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
        assert instrument.get_client() is strict
        with pytest.raises(ScopeError):
            ProjectCreated(name="x")
        instrument.configure(transport=MemoryTransport(), strict=False, sync=True)
        assert ProjectCreated(name="x").validation_error is not None


def test_reset_installs_the_default_client_honouring_instrument_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = instrument.configure(transport=MemoryTransport())
    monkeypatch.setenv("INSTRUMENT_STRICT", "1")
    reset()
    client = instrument.get_client()
    assert client is not configured
    assert not instrument.is_configured()
    assert client.strict is True
    with analytics_scope(user_id=1), pytest.raises(ScopeError):
        ProjectCreated(name="x")
    assert configured.dispatcher._closed  # the replaced client was shut down
    monkeypatch.setenv("INSTRUMENT_STRICT", "0")
    reset()
    assert instrument.get_client().strict is False


def test_reset_unbinds_the_scope_and_ends_an_abandoned_capture() -> None:
    original_hook = threading.excepthook
    bind_scope(user_id=1, project_id=2)
    capture = capture_events()
    events = capture.__enter__()  # never exited, as a crashed fixture would leave it
    assert threading.excepthook is not original_hook
    reset()
    assert dict(current_scope()) == {}
    assert threading.excepthook is original_hook
    assert not capture.active
    with analytics_scope(user_id=1, project_id=2):
        instrument.track(ProjectCreated(name="x"))
    assert len(events) == 0  # the capture no longer receives anything
    assert not instrument.is_configured()


def test_importing_the_package_and_the_testing_kit_does_not_import_http_server() -> None:
    code = (
        "import sys, instrument, instrument.testing\n"
        "assert 'http.server' not in sys.modules, 'imported http.server'\n"
        "assert 'socketserver' not in sys.modules, 'imported socketserver'\n"
        "from instrument.testing import SegmentEndpoint\n"
        "assert 'http.server' in sys.modules\n"
        "assert 'SegmentEndpoint' in dir(instrument.testing)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_the_testing_kit_exports_a_sorted_flat_namespace() -> None:
    import instrument.testing as kit

    assert kit.__all__ == sorted(kit.__all__)
    for name in kit.__all__:
        assert getattr(kit, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kit.nope  # noqa: B018
