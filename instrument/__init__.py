"""instrument: typed product-analytics instrumentation over the Segment client.

Declare an event catalog (``EventName``) and typed tracks (``Track``), bind ids once per request
(``analytics_scope``), decorate business functions (``@tracks``), and assert what was sent in tests
(``instrument.testing``).
"""

from __future__ import annotations

from instrument._client import (
    Client,
    aflush,
    ashutdown,
    configure,
    flush,
    get_client,
    identify,
    is_configured,
    shutdown,
    stats,
    track,
)
from instrument._decorator import Call, tracks
from instrument._describe import EventSchema, PropertySchema, ScopeFieldSchema, describe
from instrument._dispatch import EmitResult, Stats
from instrument._encoding import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from instrument._errors import (
    AnalyticsError,
    ClosedError,
    ConfigurationError,
    DeliveryError,
    EncodingError,
    EventNameError,
    NotConfiguredError,
    OversizeError,
    PropertyError,
    PropsError,
    QueueFullError,
    ScopeError,
    TrackDefinitionError,
)
from instrument._events import EventName
from instrument._fields import MISSING, ScopeId, Truncatable, field
from instrument._messages import to_message
from instrument._records import Identify, Track
from instrument._scopes import (
    Scope,
    analytics_scope,
    bind_scope,
    current_scope,
    define_scope,
    reset_scope,
)
from instrument._settings import Settings
from instrument.transports import ConsoleTransport, MemoryTransport, SegmentTransport, Transport

__version__ = "0.1.0"

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MISSING",
    "AnalyticsError",
    "Call",
    "Client",
    "ClosedError",
    "ConfigurationError",
    "ConsoleTransport",
    "DeliveryError",
    "EmitResult",
    "EncodingError",
    "EventName",
    "EventNameError",
    "EventSchema",
    "Identify",
    "MemoryTransport",
    "NotConfiguredError",
    "OversizeError",
    "PropertyError",
    "PropertySchema",
    "PropsError",
    "QueueFullError",
    "Scope",
    "ScopeError",
    "ScopeFieldSchema",
    "ScopeId",
    "SegmentTransport",
    "Settings",
    "Stats",
    "Track",
    "TrackDefinitionError",
    "Transport",
    "Truncatable",
    "__version__",
    "aflush",
    "analytics_scope",
    "ashutdown",
    "bind_scope",
    "configure",
    "current_scope",
    "define_scope",
    "describe",
    "field",
    "flush",
    "get_client",
    "identify",
    "is_configured",
    "reset_scope",
    "shutdown",
    "stats",
    "to_message",
    "track",
    "tracks",
]
