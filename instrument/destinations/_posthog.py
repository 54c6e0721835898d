"""PostHog: the capture batch API (``/batch/``), no SDK.

A track is an event (``distinct_id`` the user id, else the anonymous id; ``uuid`` the messageId, which
PostHog deduplicates on); an identify is ``$identify`` with the traits in ``$set`` (and the anonymous id
as ``$anon_distinct_id``, so PostHog merges the two).
"""

from __future__ import annotations

from typing import ClassVar

from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination, user_of
from instrument.transports._base import Message, Spool, Transport
from instrument.transports._wire import WireTransport

MAPPING = {
    "event": "event ($identify for an identify)",
    "userId": "distinct_id",
    "anonymousId": "distinct_id (no userId), else properties.$anon_distinct_id",
    "properties": "properties",
    "traits": "$set and properties.$set",
    "timestamp": "timestamp",
    "messageId": "uuid",
    "library": "properties.$lib, properties.$lib_version",
}


def _envelope(joined: bytes, key: bytes) -> bytes:
    return b'{"api_key":' + key + b',"batch":[' + joined + b"]}"


class PostHog(Destination):
    """PostHog's capture batch API (``key``: the project API key; ``host``: your PostHog instance)."""

    wire = "posthog"
    default_host = "https://us.i.posthog.com"
    mapping: ClassVar[dict[str, str]] = MAPPING

    def encode(self, message: Message, ts: float) -> Message:
        """One PostHog event."""
        props: dict[str, object]
        anon = message.get("anonymousId")
        if message.get("type") == "identify":
            traits = message.get("traits") or {}
            props = {"$set": traits}
            if anon is not None and message.get("userId") is not None:
                props["$anon_distinct_id"] = anon
        else:
            props = dict(message.get("properties") or {})
        props["$lib"] = "instrument"
        props["$lib_version"] = __version__
        event: Message = {
            "event": message.get("event") or "$identify",
            "distinct_id": user_of(message),
            "properties": props,
            "timestamp": message["timestamp"],
            "uuid": message["messageId"],
        }
        if message.get("type") == "identify":
            event["$set"] = props["$set"]
        return event

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """POSTs to ``/batch/`` with the key in the body."""
        return WireTransport(
            self.key, settings.replace(host=self.host), api_path="/batch/", envelope=_envelope, spool=spool
        )
