"""OpenTelemetry: trace ids on analytics events, and analytics events as OpenTelemetry log records.
Requires ``instrument[opentelemetry]``.

``capture_trace_context()`` puts the trace and span ids of the span active when an event is recorded
into the event's ``context`` (``traceId``, ``spanId``), read on the caller's thread since delivery runs
on another; analytics and traces can then be joined. ``OpenTelemetryLogTransport`` emits each event as
an OpenTelemetry log record (the current form of an OTel "event"): ``event_name`` is the event, the
properties (traits for an identify) are the attributes, and the record carries the trace context the
event was recorded in, so an OpenTelemetry Collector can route analytics wherever its pipeline goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from instrument import _context
from instrument.transports import Transport
from instrument.transports._base import Message

__all__ = ["OpenTelemetryLogTransport", "capture_trace_context", "stop_capturing_trace_context"]

#: Attributes the transport adds beside the properties (namespaced, so they never meet a property key).
USER_ID_ATTRIBUTE = "segment.user_id"
MESSAGE_ID_ATTRIBUTE = "segment.message_id"
TYPE_ATTRIBUTE = "segment.type"


def _trace_context() -> Mapping[str, Any] | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return {"traceId": format(span_context.trace_id, "032x"), "spanId": format(span_context.span_id, "016x")}


def capture_trace_context() -> None:
    """Record the active span's trace and span ids into each event's ``context`` (idempotent)."""
    _context.add_provider(_trace_context)


def stop_capturing_trace_context() -> None:
    """Undo ``capture_trace_context``."""
    _context.remove_provider(_trace_context)


def _attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    if (
        isinstance(value, list)
        and value
        and isinstance(value[0], (str, bool, int, float))
        and all(type(v) is type(value[0]) for v in value)
    ):
        return value
    # Maps, mixed or nested lists: OpenTelemetry attributes hold primitives, so these go as JSON text.
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _timestamp_ns(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1_000_000) * 1000


def _otel_context(message: Message) -> Any:
    context = message.get("context")
    if not isinstance(context, dict) or "traceId" not in context or "spanId" not in context:
        return None
    try:
        span_context = SpanContext(
            trace_id=int(context["traceId"], 16),
            span_id=int(context["spanId"], 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except (TypeError, ValueError):
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))


class OpenTelemetryLogTransport(Transport):
    """Emits every event as an OpenTelemetry log record through ``logger_provider`` (default: the global one).

    ``configure(transport=OpenTelemetryLogTransport())``. The record's ``event_name`` is the event name
    (``"identify"`` for an identify), its attributes are the wire properties (traits) plus
    ``segment.user_id``, ``segment.message_id`` and ``segment.type``; values OpenTelemetry attributes
    cannot hold (maps, mixed lists) are JSON text. The trace context the event was recorded in is the
    record's (this turns ``capture_trace_context`` on). ``flush`` force-flushes the provider.
    """

    def __init__(self, logger_provider: LoggerProvider | None = None, *, logger_name: str = "instrument") -> None:
        super().__init__()
        self._provider = logger_provider if logger_provider is not None else get_logger_provider()
        self._logger = self._provider.get_logger(logger_name)
        capture_trace_context()

    def send(self, messages: list[Message]) -> None:
        """Emit one log record per message."""
        for message in messages:
            kind = message.get("type", "track")
            body = message.get("properties" if kind == "track" else "traits") or {}
            attributes = {key: _attribute(value) for key, value in body.items() if value is not None}
            attributes[USER_ID_ATTRIBUTE] = str(message.get("userId") or message.get("anonymousId") or "")
            attributes[MESSAGE_ID_ATTRIBUTE] = str(message.get("messageId", ""))
            attributes[TYPE_ATTRIBUTE] = str(kind)
            self._logger.emit(
                timestamp=_timestamp_ns(message.get("timestamp")),
                context=_otel_context(message),
                severity_number=SeverityNumber.INFO,
                attributes=attributes,
                event_name=str(message.get("event") or kind),
            )
        self._report.sent(len(messages))

    def flush(self, timeout: float) -> bool:
        """Force-flush the logger provider (when it has ``force_flush``, as the SDK's does)."""
        force_flush = getattr(self._provider, "force_flush", None)
        if force_flush is None:
            return True
        return bool(force_flush(int(max(timeout, 0) * 1000)))
