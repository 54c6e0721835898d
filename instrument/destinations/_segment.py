"""Segment and RudderStack: the Segment wire (one encoding, shared), each with its own host and key.

The message built once is sent as it is; with a consent bound, its stamp is already in both shapes
(``context.consent.categoryPreferences`` for Segment, ``context.consentManagement`` for RudderStack).
"""

from __future__ import annotations

from typing import ClassVar

from instrument._settings import Settings
from instrument.destinations._base import Destination
from instrument.transports._base import Spool, Transport
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
    default_host: ClassVar[str | None] = "https://api.segment.io"
    mapping: ClassVar[dict[str, str]] = _SEGMENT_MAPPING

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """A SegmentTransport of this destination's host and key."""
        return SegmentTransport(self.key, settings.replace(host=self.host), spool=spool)


class RudderStack(Segment):
    """RudderStack's data plane (the Segment wire; ``host``: your data plane URL, ``key``: the source's write key)."""

    default_name = "rudderstack"
    default_host = None
