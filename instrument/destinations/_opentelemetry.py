"""OpenTelemetry: each event an OTLP log record (OTLP/HTTP JSON to ``/v1/logs``), no SDK.

As the event semantic conventions say: the record's ``eventName`` is the event (``identify`` for an
identify), its attributes are the properties (traits), plus ``enduser.id``, ``enduser.pseudo.id`` (the
anonymous id) and ``log.record.uid`` (the messageId); ``traceId``/``spanId`` are those the event was recorded in
(``capture_trace_context()`` of the opentelemetry integration). Same names as the integration's
``OpenTelemetryLogTransport`` gives the values, sent to a collector without the OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from instrument._encoding import dumps
from instrument._errors import ConfigurationError
from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination, millis
from instrument.transports._base import Message, Spool, Transport
from instrument.transports._wire import WireTransport

MAPPING = {
    "event": "eventName (identify for an identify)",
    "userId": "attributes[enduser.id]",
    "anonymousId": "attributes[enduser.pseudo.id]",
    "properties": "attributes",
    "traits": "attributes",
    "timestamp": "timeUnixNano",
    "messageId": "attributes[log.record.uid]",
    "context.traceId/spanId": "traceId, spanId",
    "library": "scope.name, scope.version",
}


def any_value(value: Any) -> dict[str, Any]:
    """A JSON value as OTLP's AnyValue (int64 as text, as the OTLP JSON mapping says)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes(value)}}
    return {}  # null: an empty AnyValue


def attributes(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Key/value pairs as OTLP attributes."""
    return [{"key": key, "value": any_value(value)} for key, value in values.items()]


class OpenTelemetry(Destination):
    """An OTLP/HTTP logs endpoint (a collector; ``host`` e.g. ``http://127.0.0.1:4318``; ``headers``: its
    auth, if any; ``service_name``: the resource's ``service.name``)."""

    wire = "opentelemetry"
    default_host = "http://127.0.0.1:4318"
    mapping: ClassVar[dict[str, str]] = MAPPING

    def __init__(
        self,
        *,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        service_name: str = "instrument",
        **options: Any,
    ) -> None:
        super().__init__("otlp", host=host, **options)  # no key: a collector authenticates by header
        if not isinstance(service_name, str) or not service_name:
            raise ConfigurationError("OpenTelemetry: service_name must be a non-empty str")
        headers = dict(headers or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ConfigurationError("OpenTelemetry: headers must map str to str")
        self.headers = headers
        resource = dumps({"attributes": attributes({"service.name": service_name})})
        scope = dumps({"name": "instrument", "version": __version__})
        self._prefix = b'{"resourceLogs":[{"resource":' + resource + b',"scopeLogs":[{"scope":' + scope
        self._prefix += b',"logRecords":['

    def encode(self, message: Message, ts: float) -> Message:
        """One OTLP log record."""
        kind = message.get("type", "track")
        body = message.get("properties" if kind == "track" else "traits") or {}
        extra: dict[str, Any] = {}
        if message.get("userId") is not None:
            extra["enduser.id"] = message["userId"]
        if message.get("anonymousId") is not None:
            extra["enduser.pseudo.id"] = message["anonymousId"]
        extra["log.record.uid"] = message["messageId"]
        nanos = str(millis(ts) * 1_000_000)
        record: Message = {
            "timeUnixNano": nanos,
            "observedTimeUnixNano": nanos,
            "severityNumber": 9,
            "eventName": message.get("event") or kind,
            "attributes": attributes(body) + attributes(extra),
        }
        context = message.get("context")
        if isinstance(context, dict) and isinstance(context.get("traceId"), str):
            record["traceId"] = context["traceId"]
            if isinstance(context.get("spanId"), str):
                record["spanId"] = context["spanId"]
            record["flags"] = 1  # sampled: recorded inside a span
        return record

    def users_in(self, item: Message) -> tuple[object, ...]:
        """The ``enduser.id`` and ``enduser.pseudo.id`` attributes."""
        wanted = ("enduser.id", "enduser.pseudo.id")
        return tuple(a["value"].get("stringValue") for a in item.get("attributes", ()) if a.get("key") in wanted)

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """POSTs OTLP/HTTP JSON to ``/v1/logs``."""
        prefix = self._prefix

        def envelope(joined: bytes, key: bytes) -> bytes:
            return prefix + joined + b"]}]}]}"

        return WireTransport(
            self.key,
            settings.replace(host=self.host),
            api_path="/v1/logs",
            envelope=envelope,
            headers=self.headers,
            spool=spool,
        )
