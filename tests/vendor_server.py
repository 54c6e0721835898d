"""The destination tests' loopback endpoint (bench.destinations.VendorServer) and a one-destination round trip."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.destinations import VendorServer, latency, received, vendor_server

__all__ = ["VendorServer", "latency", "received", "send_through", "vendor_server"]


def send_through(destination_factory: Any, *, user_id: str = "u1", anonymous_id: str | None = None) -> VendorServer:
    """Configure one destination (``destination_factory(url)``) at a fresh server, send one ItemsExported
    track and one UserTraits identify, flush; return the (closed) server with what it received."""
    from kit_catalog import ItemsExported, UserTraits

    import instrument
    from instrument import analytics_scope

    server = VendorServer()
    try:
        instrument.configure(destinations=[destination_factory(server.url)], strict=True)
        scope: dict[str, Any] = {"user_id": user_id} if anonymous_id is None else {"anonymous_id": anonymous_id}
        with analytics_scope(**scope):
            assert instrument.track(ItemsExported(count=3))
            assert instrument.identify(UserTraits(email="a@example.com"))
        assert instrument.flush(10)
    finally:
        instrument.shutdown(1)
        server.close()
    return server
