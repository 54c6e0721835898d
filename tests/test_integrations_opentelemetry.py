"""OpenTelemetry with the real SDK: trace ids captured on the caller's thread, and events exported as log
records through an in-memory exporter although delivery runs on the dispatcher's worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

import instrument
from instrument import EventName, Identify, Track, analytics_scope
from instrument.integrations.opentelemetry import (
    OpenTelemetryLogTransport,
    capture_trace_context,
    stop_capturing_trace_context,
)
from instrument.testing import CapturedEvents

pytestmark = pytest.mark.timeout(30)


class Events(EventName):
    INVOICE_PAID = "Invoice Paid"


class InvoicePaid(Track, event=Events.INVOICE_PAID, scope="project"):
    amount: int
    currency: str
    tags: list[str]
    meta: dict[str, int]


class Traits(Identify):
    plan: str


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()
    stop_capturing_trace_context()


def test_a_track_inside_a_span_carries_its_trace_and_span_ids(
    tracer_provider: TracerProvider, analytics_events: CapturedEvents
) -> None:
    capture_trace_context()
    tracer = tracer_provider.get_tracer("test")
    with analytics_scope(user_id=1, project_id=2):
        instrument.track(InvoicePaid(amount=1, currency="EUR", tags=[], meta={}))  # no span: no ids
        with tracer.start_as_current_span("checkout") as span:
            instrument.track(InvoicePaid(amount=5, currency="EUR", tags=["a"], meta={"n": 1}))
    outside, inside = analytics_events.of(InvoicePaid)
    assert "context" not in outside
    ids = span.get_span_context()
    assert inside["context"] == {"traceId": f"{ids.trace_id:032x}", "spanId": f"{ids.span_id:016x}"}


def test_events_become_log_records_with_event_name_attributes_and_the_recording_span(
    tracer_provider: TracerProvider,
) -> None:
    exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emitting_threads: set[str] = set()
    original_export = exporter.export

    def export(batch):  # type: ignore[no-untyped-def]
        emitting_threads.add(threading.current_thread().name)
        return original_export(batch)

    exporter.export = export  # type: ignore[method-assign]
    instrument.configure(transport=OpenTelemetryLogTransport(logger_provider), flush_interval=0.05)
    tracer = tracer_provider.get_tracer("test")
    with analytics_scope(user_id=7, project_id=3), tracer.start_as_current_span("pay") as span:
        assert instrument.track(InvoicePaid(amount=12, currency="EUR", tags=["x", "y"], meta={"k": 1})).ok
        assert instrument.identify(Traits(plan="pro")).ok
    assert instrument.flush(10)
    instrument.shutdown(5)

    track_record, identify_record = (data.log_record for data in exporter.get_finished_logs())
    ids = span.get_span_context()
    assert track_record.event_name == "Invoice Paid"
    attributes = dict(track_record.attributes or {})
    message_id = attributes.pop("segment.message_id")
    assert isinstance(message_id, str)
    assert len(message_id) == 36
    assert attributes == {
        "amount": 12,
        "currency": "EUR",
        "tags": ("x", "y"),
        "meta": '{"k":1}',
        "project_id": 3,
        "segment.user_id": "7",
        "segment.type": "track",
    }
    assert (track_record.trace_id, track_record.span_id) == (ids.trace_id, ids.span_id)
    assert identify_record.event_name == "identify"
    assert dict(identify_record.attributes or {})["plan"] == "pro"
    assert identify_record.trace_id == ids.trace_id
    assert threading.current_thread().name not in emitting_threads  # delivered on the worker thread
