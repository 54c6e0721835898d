"""Destinations: the same typed events to Segment, RudderStack, PostHog, Mixpanel, Amplitude and
OpenTelemetry, each delivered on its own (``configure(destinations=[...])``). No vendor SDK is used."""

from __future__ import annotations

from instrument.destinations._amplitude import Amplitude
from instrument.destinations._base import Destination
from instrument.destinations._mixpanel import Mixpanel
from instrument.destinations._opentelemetry import OpenTelemetry
from instrument.destinations._posthog import PostHog
from instrument.destinations._segment import RudderStack, Segment

__all__ = ["Amplitude", "Destination", "Mixpanel", "OpenTelemetry", "PostHog", "RudderStack", "Segment"]
