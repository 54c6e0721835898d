"""Consent as typed data: the categories a user granted or denied, bound in the context like a scope.

``Consent(granted={"analytics"}, denied={"advertising"})`` (categories are str, so a ``StrEnum`` of your
own makes them typed). ``with consent_scope(consent):`` binds it for the events recorded inside; at
``track()`` its stamp is written into the message's context in Segment's shape
(``context.consent.categoryPreferences``) and RudderStack's (``context.consentManagement``), and the
destinations read it back from there before anything leaves the process.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from instrument._errors import ConfigurationError


def categories(values: Iterable[str] | str, where: str) -> frozenset[str]:
    """``values`` as a set of non-empty category names; ConfigurationError naming ``where`` if not."""
    if isinstance(values, str):
        values = (values,)
    try:
        found = frozenset(values)
    except TypeError:
        raise ConfigurationError(f"{where}: consent categories must be an iterable of str") from None
    if not all(isinstance(c, str) and c for c in found):
        raise ConfigurationError(f"{where}: consent categories must be non-empty str")
    return frozenset(str(c) for c in found)  # a StrEnum member as its plain value


@dataclass(frozen=True, init=False)
class Consent:
    """The consent categories a user granted and denied. Raises ConfigurationError for a category that is
    not a non-empty str, or one both granted and denied."""

    granted: frozenset[str]
    denied: frozenset[str]

    def __init__(self, granted: Iterable[str] = (), denied: Iterable[str] = ()) -> None:
        yes, no = categories(granted, "Consent.granted"), categories(denied, "Consent.denied")
        if yes & no:
            raise ConfigurationError("Consent: a category cannot be both granted and denied")
        object.__setattr__(self, "granted", yes)
        object.__setattr__(self, "denied", no)
        # Built once: track() stamps every event on the caller's thread, which should only record it.
        preferences = dict.fromkeys(sorted(yes), True) | dict.fromkeys(sorted(no), False)
        stamp = {
            "consent": {"categoryPreferences": preferences},
            "consentManagement": {
                "provider": "custom",
                "allowedConsentIds": sorted(yes),
                "deniedConsentIds": sorted(no),
            },
        }
        object.__setattr__(self, "_stamp", stamp)

    @classmethod
    def from_preferences(cls, preferences: Mapping[str, bool]) -> Consent:
        """From Segment's ``categoryPreferences`` shape: ``{"analytics": True, "advertising": False}``."""
        return cls(
            granted=[c for c, ok in preferences.items() if ok], denied=[c for c, ok in preferences.items() if not ok]
        )

    def allows(self, required: frozenset[str]) -> bool:
        """True when every category in ``required`` was granted."""
        return required <= self.granted

    def stamp(self) -> dict[str, Any]:
        """The message context entries, in Segment's and RudderStack's shapes (shared: read, never change)."""
        stamp: dict[str, Any] = self.__dict__["_stamp"]
        return stamp


_CONSENT: contextvars.ContextVar[Consent | None] = contextvars.ContextVar("instrument_consent", default=None)
current = _CONSENT.get


def granted_in(message: Mapping[str, Any]) -> frozenset[str]:
    """The categories a message's stamp grants (none without a stamp: nothing was consented to)."""
    context = message.get("context")
    if not isinstance(context, dict):
        return frozenset()
    consent = context.get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(preferences, dict):
        return frozenset()
    return frozenset(c for c, ok in preferences.items() if ok is True)


class consent_scope:
    """``with consent_scope(consent):`` binds ``consent`` for the events recorded inside (this context and
    its copies). Raises ConfigurationError if ``consent`` is not a Consent."""

    def __init__(self, consent: Consent) -> None:
        if not isinstance(consent, Consent):
            raise ConfigurationError(f"consent_scope: expected a Consent, got {type(consent).__name__}")
        self._consent = consent
        self._tokens: list[contextvars.Token[Consent | None]] = []

    def __enter__(self) -> Consent:
        self._tokens.append(_CONSENT.set(self._consent))
        return self._consent

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        _CONSENT.reset(self._tokens.pop())


def clear() -> None:
    """Unbind any consent in the current context (the testing kit's reset)."""
    _CONSENT.set(None)
