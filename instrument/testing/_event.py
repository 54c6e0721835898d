"""``CapturedEvent``: one captured wire message, as a dict without ``messageId`` and ``timestamp``."""

from __future__ import annotations

import copy
from typing import Any

Message = dict[str, Any]

_IDS = ("messageId", "timestamp")


class CapturedEvent(dict[str, Any]):
    """One captured payload: a dict of the wire message without ``messageId`` and ``timestamp``.

    ``.message`` is the full wire dict; ``.type``, ``.event``, ``.user_id``, ``.properties`` and
    ``.traits`` read its parts (empty/None when the message has none); ``.index`` is its position
    in emission order among everything captured.
    """

    message: Message
    index: int

    @classmethod
    def _from(cls, message: Message, index: int) -> CapturedEvent:
        full = copy.deepcopy(message)
        event = cls((k, v) for k, v in copy.deepcopy(message).items() if k not in _IDS)
        event.message = full
        event.index = index
        return event

    @property
    def type(self) -> str:
        """``"track"``, ``"identify"``, ``"group"``, ``"page"``, ``"screen"`` or ``"alias"``."""
        return str(self.get("type"))

    @property
    def event(self) -> str | None:
        """The event name of a track (None for an identify)."""
        event = self.get("event")
        return None if event is None else str(event)

    @property
    def user_id(self) -> str:
        """The message's ``userId`` (always text on the wire)."""
        return str(self.get("userId"))

    @property
    def anonymous_id(self) -> str | None:
        """The message's ``anonymousId`` (an anonymous visitor's id), or None."""
        value = self.get("anonymousId")
        return None if value is None else str(value)

    @property
    def properties(self) -> dict[str, Any]:
        """A track's properties."""
        props: dict[str, Any] = self.get("properties", {})
        return props

    @property
    def traits(self) -> dict[str, Any]:
        """An identify's traits."""
        traits: dict[str, Any] = self.get("traits", {})
        return traits

    @property
    def body(self) -> dict[str, Any]:
        """The properties of a track, page or screen, the traits of an identify or group (an alias: none)."""
        return self.traits if self.type in ("identify", "group") else self.properties
