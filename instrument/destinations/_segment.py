"""Segment and RudderStack: the Segment wire, each with its own host and key.

Segment gets the message built once as it is (every Segment destination shares its bytes); RudderStack
gets it with the fields rudder-sdk-python adds (one more encoding, shared by every RudderStack
destination). With a consent bound, its stamp is in the context in both shapes
(``context.consent.categoryPreferences`` for Segment, ``context.consentManagement`` for RudderStack).
"""

from __future__ import annotations

from typing import ClassVar

from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination
from instrument.transports._base import Message, Spool, Transport
from instrument.transports._segment import SegmentTransport

_SEGMENT_MAPPING = {
    "event": "event",
    "userId": "userId",
    "anonymousId": "anonymousId",
    "properties": "properties",
    "traits": "traits",
    "timestamp": "timestamp",
    "messageId": "messageId",
    "context": "context (consent stamps in both shapes)",
}


class Segment(Destination):
    """Segment's batch API (``key``: the write key; ``host``: another Segment-compatible endpoint)."""

    wire = "segment"
    calls = None  # every call: page, screen, group and alias too
    default_host: ClassVar[str | None] = "https://api.segment.io"
    mapping: ClassVar[dict[str, str]] = _SEGMENT_MAPPING

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """A SegmentTransport of this destination's host and key."""
        return SegmentTransport(self.key, settings.replace(host=self.host), spool=spool)


class RudderStack(Segment):
    """RudderStack's data plane (``host``: your data plane URL, ``key``: the source's write key).

    The Segment wire as rudder-sdk-python sends it (tests/golden/rudderstack.json): ``channel``,
    ``integrations``, ``context.library``, both ids (null when absent), an identify's traits in
    ``context.traits``. Destinations of equal settings share one encoding.
    """

    wire = "rudderstack"
    default_name = "rudderstack"
    default_host = None
    mapping: ClassVar[dict[str, str]] = {
        **_SEGMENT_MAPPING,
        "traits": "context.traits",
        "library": "context.library",
    }

    def encode(self, message: Message, ts: float) -> Message:
        """The message with the fields rudder-sdk-python adds."""
        if message["type"] not in ("track", "identify"):  # page, screen, group, alias: as Segment's
            return {**message, "channel": "server", "integrations": {"All": True}}
        out: Message = {
            "type": message["type"],
            "userId": message.get("userId"),
            "anonymousId": message.get("anonymousId"),
        }
        context = {**(message.get("context") or {}), "library": _LIBRARY}
        if message["type"] == "identify":
            context["traits"] = message.get("traits") or {}
        else:
            out["event"] = message.get("event")
            out["properties"] = message.get("properties") or {}
        out["context"] = context
        out["channel"] = "server"
        out["integrations"] = {"All": True}
        out["timestamp"] = message["timestamp"]
        out["messageId"] = message["messageId"]
        return out


_LIBRARY = {"name": "instrument", "version": __version__}
