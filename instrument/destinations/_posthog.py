"""PostHog: the capture batch API (``/batch/``), no SDK.

A track is an event (``distinct_id`` the user id, else the anonymous id; ``uuid`` the messageId, which
PostHog deduplicates on); an identify is a ``$set`` event with the traits in ``$set``, as posthog-python
sends it (tests/golden/posthog.json). Like that SDK, GeoIP is off (``$geoip_disable``: a server's
address is not the user's) and ``$is_server`` is set.
"""

from __future__ import annotations

from typing import ClassVar

from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination, key_in_body, user_of
from instrument.transports._base import Message, Spool, Transport

MAPPING = {
    "event": "event ($set for an identify)",
    "userId": "distinct_id",
    "anonymousId": "distinct_id (no userId)",
    "properties": "properties",
    "traits": "$set",
    "timestamp": "timestamp",
    "messageId": "uuid",
    "library": "properties.$lib, properties.$lib_version",
}


_LIBRARY = {"$geoip_disable": True, "$is_server": True, "$lib": "instrument", "$lib_version": __version__}


class PostHog(Destination):
    """PostHog's capture batch API (``key``: the project API key; ``host``: your PostHog instance)."""

    wire = "posthog"
    default_host = "https://us.i.posthog.com"
    mapping: ClassVar[dict[str, str]] = MAPPING

    def encode(self, message: Message, ts: float) -> Message:
        """One PostHog event."""
        identify = message.get("type") == "identify"
        props: dict[str, object] = {} if identify else dict(message.get("properties") or {})
        props.update(_LIBRARY)
        event: Message = {
            "event": "$set" if identify else message.get("event"),
            "distinct_id": user_of(message),
            "properties": props,
            "timestamp": message["timestamp"],
            "uuid": message["messageId"],
        }
        if identify:
            event["$set"] = message.get("traits") or {}
        return event

    def users_in(self, item: Message) -> tuple[object, ...]:
        """PostHog keys an item by ``distinct_id``."""
        return (item.get("distinct_id"),)

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """POSTs to ``/batch/`` with the key in the body."""
        return key_in_body(self, settings, spool, "/batch/", b',"historical_migration":false,"batch":[')
