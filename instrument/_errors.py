"""The one exception tree of instrument: every error it raises or reports is an AnalyticsError."""

from __future__ import annotations

from collections.abc import Sequence


class AnalyticsError(Exception):
    """Root of every error instrument raises or reports.

    ``track`` names the Track/Identify class involved (or the event name), when there is one.
    """

    def __init__(self, message: str, *, track: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.track = track

    def __str__(self) -> str:
        return self.message


class ConfigurationError(AnalyticsError):
    """A bad argument to ``configure``, ``define_scope`` or ``@tracks``, found when it is given."""


class EventNameError(AnalyticsError, ValueError):
    """An event name breaks the ``"[Noun] [Verb] [Subverb]"`` convention or is used twice in a catalog."""

    def __init__(self, message: str, *, name: str, catalog: str) -> None:
        super().__init__(message, track=None)
        self.name = name
        self.catalog = catalog


class TrackDefinitionError(AnalyticsError, TypeError):
    """A Track or Identify class is declared wrongly (no event, unknown scope, clashing field)."""


class ScopeError(AnalyticsError):
    """A scope field is unknown, or is needed by a track and neither bound nor given.

    Carries ``scope`` (the scope's name) and ``field`` (the field's name).
    """

    def __init__(self, message: str, *, field: str, scope: str | None = None, track: str | None = None) -> None:
        super().__init__(message, track=track)
        self.field = field
        self.scope = scope


class PropertyError(AnalyticsError, TypeError):
    """A property is missing, unknown, or of the wrong type. Carries ``field`` and ``value_type``."""

    def __init__(self, message: str, *, track: str | None, field: str, value_type: str | None = None) -> None:
        super().__init__(message, track=track)
        self.field = field
        self.value_type = value_type


class EncodingError(PropertyError):
    """A property value cannot be encoded to JSON by the documented rules (NaN, unknown type, ...).

    ``field`` is the path to the value, e.g. ``tags[2]`` or ``meta.created``.
    """


class OversizeError(AnalyticsError):
    """An encoded message is over Segment's 32 KB limit. ``largest`` names the biggest fields."""

    def __init__(
        self, message: str, *, track: str | None, size: int, limit: int, largest: Sequence[tuple[str, int]]
    ) -> None:
        super().__init__(message, track=track)
        self.size = size
        self.limit = limit
        self.largest = tuple(largest)


class PropsError(AnalyticsError):
    """The ``props`` callable given to ``@tracks`` raised or returned something that is not a mapping."""


class NotConfiguredError(AnalyticsError):
    """The event was dropped because no transport is configured (no write key, no transport)."""


class QueueFullError(AnalyticsError):
    """The event was dropped because the bounded in-memory queue was full."""


class ClosedError(AnalyticsError):
    """The event was dropped because the client was shut down."""


class DeliveryError(AnalyticsError):
    """Messages could not be delivered: the endpoint refused them or the retry window ran out.

    ``count`` is how many messages were lost, ``reason`` says why.
    """

    def __init__(self, message: str, *, reason: str, count: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.count = count


class SpoolError(AnalyticsError):
    """The durable spool could not write or read events (an I/O error, corrupt or torn records).

    ``path`` names the spool file or directory, ``count`` how many messages (or corrupt spans) it concerns.
    """

    def __init__(self, message: str, *, path: str = "", count: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.count = count


class SpoolFullError(SpoolError):
    """Messages were dropped because the spool reached its ``spool_max_bytes`` bound."""


class PropagationError(AnalyticsError):
    """The scope could not be carried to where the work runs: a bad or hostile carrier, a resolver that
    raised, a reset in another context. The work always runs (unbound); strict mode raises this instead.

    ``source`` says where (``"carrier"``, an integration's name), ``field`` the scope field involved, if any.
    """

    def __init__(self, message: str, *, source: str, field: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.field = field
