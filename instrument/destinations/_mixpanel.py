"""Mixpanel: tracks to the ingestion API's ``/track``, identifies to ``/engage`` (``$set``), no SDK.

A track is an event whose properties carry ``token``, ``distinct_id`` (the user id, else the anonymous
id), ``time`` (epoch milliseconds) and ``$insert_id`` (the messageId's 32 hex digits, the SDK's form,
which Mixpanel deduplicates on), as the mixpanel SDK sends them (tests/golden/mixpanel.json); an
identify is a profile update ``{"$token", "$distinct_id", "$time", "$set": traits}``. A batch holding
both is sent as two requests, each retried on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from instrument._settings import Settings
from instrument._version import __version__
from instrument.destinations._base import Destination, millis, user_of
from instrument.transports._base import EncodedBatch, Message, Spool, Transport
from instrument.transports._wire import WireTransport

MAPPING = {
    "event": "event",
    "userId": "properties.distinct_id ($distinct_id of a profile update)",
    "anonymousId": "properties.distinct_id (no userId)",
    "properties": "properties",
    "traits": "$set (to /engage)",
    "timestamp": "properties.time (epoch ms), $time",
    "messageId": "properties.$insert_id (its hex digits)",
    "library": "properties.mp_lib, properties.$lib_version",
}

#: How a profile update's JSON starts (``encode`` puts ``$token`` first): the batch is split by it.
_PROFILE = b'{"$token"'


def _array(joined: bytes, key: bytes) -> bytes:
    return b"[" + joined + b"]"


class _MixpanelTransport(WireTransport):
    """Events to ``/track``; profile updates to ``/engage`` through a second sender of its own."""

    def __init__(self, key: str, settings: Settings, spool: Spool | None) -> None:
        super().__init__(key, settings, api_path="/track?ip=0", envelope=_array, spool=spool)
        self._profiles = WireTransport(key, settings, api_path="/engage", envelope=_array)

    @property
    def forget_filter(self) -> Callable[[bytes], bool] | None:
        return self._forget_filter

    @forget_filter.setter
    def forget_filter(self, value: Callable[[bytes], bool] | None) -> None:
        self._forget_filter = value
        profiles = getattr(self, "_profiles", None)
        if profiles is not None:
            profiles.forget_filter = value

    def bind(self, report: object) -> None:
        super().bind(report)  # type: ignore[arg-type]
        self._profiles.bind(report)  # type: ignore[arg-type]

    def start(self) -> None:
        super().start()
        self._profiles.start()

    def send_batch(self, batch: EncodedBatch) -> bool:
        messages = batch.messages
        profile = [m.startswith(_PROFILE) for m in messages]
        if not any(profile):
            return super().send_batch(batch)
        if all(profile):
            return self._profiles.send_batch(batch)
        events = EncodedBatch(
            [m for m, p in zip(messages, profile, strict=True) if not p],
            [i for i, p in zip(batch.ids, profile, strict=True) if not p],
        )
        people = EncodedBatch(
            [m for m, p in zip(messages, profile, strict=True) if p],
            [i for i, p in zip(batch.ids, profile, strict=True) if p],
        )
        return super().send_batch(events) & self._profiles.send_batch(people)

    def stop_by(self, deadline: float) -> None:
        super().stop_by(deadline)
        self._profiles.stop_by(deadline)

    def abort(self) -> None:
        super().abort()
        self._profiles.abort()

    def close(self, timeout: float) -> int:
        self._profiles.close(timeout)
        return super().close(timeout)

    def after_fork(self) -> None:
        super().after_fork()
        self._profiles.after_fork()


class Mixpanel(Destination):
    """Mixpanel (``key``: the project token; ``host``: e.g. the EU residency endpoint)."""

    wire = "mixpanel"
    default_host = "https://api.mixpanel.com"
    mapping: ClassVar[dict[str, str]] = MAPPING

    @property
    def encoding(self) -> tuple[object, ...]:
        # The token is in every message: destinations share bytes only with the same token.
        return (*super().encoding, self.key)

    def encode(self, message: Message, ts: float) -> Message:
        """One Mixpanel event, or a profile update for an identify."""
        ms = millis(ts)
        if message.get("type") == "identify":
            return {
                "$token": self.key,
                "$distinct_id": user_of(message),
                "$time": ms,
                "$set": message.get("traits") or {},
            }
        props: Message = {
            "token": self.key,
            "distinct_id": user_of(message),
            "time": ms,
            "$insert_id": message["messageId"].replace("-", ""),
            "mp_lib": "instrument",
            "$lib_version": __version__,
        }
        props.update(message.get("properties") or {})
        return {"event": message["event"], "properties": props}

    def users_in(self, item: Message) -> tuple[object, ...]:
        """An event's ``properties.distinct_id``, a profile update's ``$distinct_id``."""
        props = item.get("properties")
        return (props.get("distinct_id") if isinstance(props, dict) else None, item.get("$distinct_id"))

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """Events to ``/track``, profile updates to ``/engage``."""
        return _MixpanelTransport(self.key, settings.replace(host=self.host), spool)
