"""Amplitude: the HTTP V2 API (``/2/httpapi``), no SDK.

A track is an event (``event_type``, ``user_id``, ``device_id`` the anonymous id, ``time`` in epoch
milliseconds, ``event_properties``, ``insert_id`` the messageId, which Amplitude deduplicates on); an
identify is ``$identify`` with the traits in ``user_properties.$set``.
"""

from __future__ import annotations

from typing import ClassVar

from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination, key_in_body, millis
from instrument.transports._base import Message, Spool, Transport

MAPPING = {
    "event": "event_type ($identify for an identify)",
    "userId": "user_id",
    "anonymousId": "device_id",
    "properties": "event_properties",
    "traits": "user_properties.$set",
    "timestamp": "time (epoch ms)",
    "messageId": "insert_id",
    "library": "library",
}

_LIBRARY = f"instrument/{__version__}"


class Amplitude(Destination):
    """Amplitude's HTTP V2 API (``key``: the project API key; ``host``: e.g. the EU endpoint)."""

    wire = "amplitude"
    default_host = "https://api2.amplitude.com"
    mapping: ClassVar[dict[str, str]] = MAPPING

    def encode(self, message: Message, ts: float) -> Message:
        """One Amplitude event."""
        event: Message = {"event_type": message.get("event") or "$identify"}
        if message.get("userId") is not None:
            event["user_id"] = message["userId"]
        if message.get("anonymousId") is not None:
            event["device_id"] = message["anonymousId"]
        event["time"] = millis(ts)
        if message.get("type") == "identify":
            event["user_properties"] = {"$set": message.get("traits") or {}}
        else:
            # As amplitude-analytics does: a property whose value is null is left out.
            props = message.get("properties") or {}
            event["event_properties"] = {k: v for k, v in props.items() if v is not None}
        event["insert_id"] = message["messageId"]
        event["library"] = _LIBRARY
        return event

    def users_in(self, item: Message) -> tuple[object, ...]:
        """Amplitude's ``user_id`` and ``device_id``."""
        return (item.get("user_id"), item.get("device_id"))

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """POSTs to ``/2/httpapi`` with the key in the body."""
        return key_in_body(self, settings, spool, "/2/httpapi", b',"events":[')
