"""Transports: where encoded messages go (Segment, memory, console/file)."""

from __future__ import annotations

from instrument.transports._base import DeliveryReport, Message, Transport
from instrument.transports._memory import ConsoleTransport, MemoryTransport
from instrument.transports._segment import SegmentTransport

__all__ = [
    "ConsoleTransport",
    "DeliveryReport",
    "MemoryTransport",
    "Message",
    "SegmentTransport",
    "Transport",
]
