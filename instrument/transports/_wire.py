"""``WireTransport``: the Segment sender (retries, backoff, deadlines, spool) for another vendor's batch API.

Only the request changes: the API path, the headers that carry the key, and the body around the
messages (each already that vendor's JSON, encoded once by the fan-out worker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from instrument._settings import Settings
from instrument.transports._base import EncodedBatch
from instrument.transports._segment import SegmentTransport

#: The body around a batch: given the joined messages and the key as a JSON string, the whole body.
Envelope = Callable[[bytes, bytes], bytes]


class WireTransport(SegmentTransport):
    """Sends encoded batches to ``host`` + ``api_path`` with ``envelope`` around them and ``headers``
    (the key goes where the vendor expects it: in the body through ``envelope``, or a header). Raises
    ConfigurationError as SegmentTransport does."""

    def __init__(
        self,
        key: str,
        settings: Settings,
        *,
        api_path: str,
        envelope: Envelope,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.api_path = api_path
        self._wrap = envelope
        self._extra_headers = dict(headers or {})
        super().__init__(key, settings, **options)

    def _auth_headers(self, write_key: str) -> dict[str, str]:
        return self._extra_headers

    def _envelope(self, batch: EncodedBatch) -> bytes:
        return self._wrap(batch.joined, self._key_json)
