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
    describe_destinations,
    flush,
    forget,
    get_client,
    identify,
    is_configured,
    shutdown,
    stats,
    track,
)
from instrument._consent import Consent, consent_scope
from instrument._decorator import Call, tracks
from instrument._describe import EventSchema, PropertySchema, ScopeFieldSchema, describe, tracks_of
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
    PropagationError,
    PropertyError,
    PropsError,
    QueueFullError,
    ScopeError,
    SpoolError,
    SpoolFullError,
    TrackDefinitionError,
)
from instrument._events import EventName, legacy
from instrument._fields import MISSING, ScopeId, Truncatable, derived, field
from instrument._messages import to_message
from instrument._personal import Personal
from instrument._propagation import (
    SCOPE_HEADER,
    PropagatingExecutor,
    ScopeSnapshot,
    extract_scope,
    inject_scope,
    propagate_scope,
    run_in_executor,
    scope_snapshot,
)
from instrument._records import ApplicationTrack, ClusterTrack, Identify, ProjectTrack, RegistryTrack, Track
from instrument._scopes import (
    Scope,
    ScopeFields,
    ScopeResolvers,
    analytics_scope,
    bind_scope,
    current_scope,
    define_scope,
    reset_scope,
)
from instrument._settings import Settings
from instrument._signals import install_sigterm_handler
from instrument._spool import Spool
from instrument._version import __version__
from instrument.transports import ConsoleTransport, MemoryTransport, SegmentTransport, Transport

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MISSING",
    "SCOPE_HEADER",
    "AnalyticsError",
    "ApplicationTrack",
    "Call",
    "Client",
    "ClosedError",
    "ClusterTrack",
    "ConfigurationError",
    "Consent",
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
    "Personal",
    "ProjectTrack",
    "PropagatingExecutor",
    "PropagationError",
    "PropertyError",
    "PropertySchema",
    "PropsError",
    "QueueFullError",
    "RegistryTrack",
    "Scope",
    "ScopeError",
    "ScopeFieldSchema",
    "ScopeFields",
    "ScopeId",
    "ScopeResolvers",
    "ScopeSnapshot",
    "SegmentTransport",
    "Settings",
    "Spool",
    "SpoolError",
    "SpoolFullError",
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
    "consent_scope",
    "current_scope",
    "define_scope",
    "derived",
    "describe",
    "describe_destinations",
    "extract_scope",
    "field",
    "flush",
    "forget",
    "get_client",
    "identify",
    "inject_scope",
    "install_sigterm_handler",
    "is_configured",
    "legacy",
    "propagate_scope",
    "reset_scope",
    "run_in_executor",
    "scope_snapshot",
    "shutdown",
    "stats",
    "to_message",
    "track",
    "tracks",
    "tracks_of",
]
