"""Message context from where an event is recorded: providers run on the caller's thread at ``track()``.

Integrations add providers (OpenTelemetry trace ids, a web request's ip/userAgent/page) that read their
own context variables; delivery runs on another thread, so their values are captured at the call and
merged into the message's ``context`` object when it is built. With no provider the caller pays one
truth test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from instrument._errors import AnalyticsError

Provider = Callable[[], Mapping[str, Any] | None]

#: The installed providers, in order (later ones win on a clashing key). Replaced, never mutated in place.
providers: tuple[Provider, ...] = ()


def add_provider(provider: Provider) -> None:
    """Add ``provider`` (idempotent)."""
    global providers
    if provider not in providers:
        providers = (*providers, provider)


def remove_provider(provider: Provider) -> None:
    """Remove ``provider`` if installed."""
    global providers
    providers = tuple(p for p in providers if p is not provider)


def collect(report: Callable[[AnalyticsError], None]) -> dict[str, Any] | None:
    """Run every provider on this thread; their merged output, or None if they gave nothing.

    A provider that raises is reported (through the client's error channel: ``on_error``, else the
    rate-limited log, since it raises on every event) and skipped: context is a nicety, never a
    reason to lose an event.
    """
    merged: dict[str, Any] = {}
    for provider in providers:
        try:
            found = provider()
        except Exception as error:
            report(AnalyticsError(f"a context provider raised {type(error).__name__}; its context is left out"))
            continue
        if found:
            merged.update(found)
    return merged or None


def merge_into(message: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Put ``context`` into ``message["context"]`` (keeping what is there) and return the message."""
    if context:
        existing = message.get("context")
        message["context"] = {**existing, **context} if isinstance(existing, dict) else dict(context)
    return message
