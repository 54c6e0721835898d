"""Assert what your code emits: ``capture_events()`` routes every event to memory, in strict mode.

Use it as a context manager or as a decorator (the captured events are then passed as the last
positional argument)::

    with capture_events() as events:
        provision_cluster(...)
    events.assert_tracked(ClusterProvisioningSuccess, infra_id=3, cluster_id=7)

Each captured event is the final payload (scope merged, properties encoded and checked, wire keys
and redaction applied): exactly what the Segment transport would send, without ``messageId`` and
``timestamp`` (``.messages`` keeps them). Capture is process-wide: events from every thread and
asyncio task are captured while it is active. Imports no pytest; the pytest plugin (the
``analytics_events`` fixture) is built on it. ``reset()`` restores a fresh import's state between
tests. ``SegmentEndpoint`` (a Segment-compatible HTTP endpoint on loopback) and ``VendorEndpoint``
(PostHog's, Mixpanel's or Amplitude's ingestion API on loopback) are imported on first use, so importing
this module does not import ``http.server``.

The modules: ``_capture`` (capture_events, reset), ``_assertions`` (CapturedEvents and its
``assert_*``), ``_matching`` (ANY, matching and failure diffs), ``_event`` (CapturedEvent),
``_endpoint`` (SegmentEndpoint), ``_vendors`` (VendorEndpoint).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from instrument.testing._assertions import CapturedEvents
from instrument.testing._capture import capture_events, reset
from instrument.testing._event import CapturedEvent
from instrument.testing._matching import ANY, AnalyticsAssertionError

if TYPE_CHECKING:
    from instrument.testing._endpoint import ReceivedBatch, SegmentEndpoint
    from instrument.testing._vendors import Vendor, VendorEndpoint, VendorItem, VendorRequest

__all__ = [
    "ANY",
    "AnalyticsAssertionError",
    "CapturedEvent",
    "CapturedEvents",
    "ReceivedBatch",
    "SegmentEndpoint",
    "Vendor",
    "VendorEndpoint",
    "VendorItem",
    "VendorRequest",
    "capture_events",
    "reset",
]

# Name -> private module: the endpoints need http.server and socketserver, loaded only for the tests
# that use them.
_LAZY_MODULES = {
    "ReceivedBatch": "_endpoint",
    "SegmentEndpoint": "_endpoint",
    "Vendor": "_vendors",
    "VendorEndpoint": "_vendors",
    "VendorItem": "_vendors",
    "VendorRequest": "_vendors",
}
_LAZY = set(_LAZY_MODULES)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"instrument.testing.{_LAZY_MODULES[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'instrument.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
