"""instrument: typed product-analytics instrumentation over the Segment client.

Declare an event catalog (``EventName``) and typed tracks (``Track``), bind ids once per request
(``analytics_scope``), decorate business functions (``@tracks``), and assert what was sent in tests
(``instrument.testing``).
"""

from __future__ import annotations

from instrument._calls import Alias, ClusterGroup, Group, Page, ProjectGroup, RegistryGroup, Screen
from instrument._client import (
    Client,
    aflush,
    alias,
    ashutdown,
    configure,
    describe_destinations,
    flush,
    forget,
    get_client,
    group,
    identify,
    is_configured,
    page,
    screen,
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
    ScopedCall,
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
from instrument._shortlived import deliver_on_return
from instrument._signals import install_sigterm_handler
from instrument._spool import Spool
from instrument._version import __version__
from instrument.transports import ConsoleTransport, MemoryTransport, SegmentTransport, Transport

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MISSING",
    "SCOPE_HEADER",
    "Alias",
    "AnalyticsError",
    "ApplicationTrack",
    "Call",
    "Client",
    "ClosedError",
    "ClusterGroup",
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
    "Group",
    "Identify",
    "MemoryTransport",
    "NotConfiguredError",
    "OversizeError",
    "Page",
    "Personal",
    "ProjectGroup",
    "ProjectTrack",
    "PropagatingExecutor",
    "PropagationError",
    "PropertyError",
    "PropertySchema",
    "PropsError",
    "QueueFullError",
    "RegistryGroup",
    "RegistryTrack",
    "Scope",
    "ScopeError",
    "ScopeFieldSchema",
    "ScopeFields",
    "ScopeId",
    "ScopeResolvers",
    "ScopeSnapshot",
    "ScopedCall",
    "Screen",
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
    "alias",
    "analytics_scope",
    "ashutdown",
    "bind_scope",
    "configure",
    "consent_scope",
    "current_scope",
    "define_scope",
    "deliver_on_return",
    "derived",
    "describe",
    "describe_destinations",
    "extract_scope",
    "field",
    "flush",
    "forget",
    "get_client",
    "group",
    "identify",
    "inject_scope",
    "install_sigterm_handler",
    "is_configured",
    "legacy",
    "page",
    "propagate_scope",
    "reset_scope",
    "run_in_executor",
    "scope_snapshot",
    "screen",
    "shutdown",
    "stats",
    "to_message",
    "track",
    "tracks",
    "tracks_of",
]
