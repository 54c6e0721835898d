"""Segment and RudderStack: the Segment wire, encoded once and shared, each with its own host and key."""

from __future__ import annotations

import base64

import pytest
from kit_catalog import ItemsExported
from vendor_server import vendor_server

import instrument
from instrument import ConfigurationError, Consent, analytics_scope, consent_scope
from instrument.destinations import PostHog, RudderStack, Segment


def test_segment_and_rudderstack_get_their_own_keys_and_both_consent_stamps() -> None:
    with vendor_server() as segment, vendor_server() as rudder:
        instrument.configure(
            destinations=[Segment("seg-key", host=segment.url), RudderStack("rs-key", host=rudder.url)]
        )
        with analytics_scope(user_id="u1"), consent_scope(Consent(granted={"analytics"}, denied={"ads"})):
            assert instrument.track(ItemsExported(count=1))
        assert instrument.flush(10)
        (s_path, s_headers, _s_body, _), (r_path, r_headers, _r_body, _) = segment.requests[0], rudder.requests[0]
        assert s_path == r_path == "/v1/batch"
        assert s_headers["Authorization"] == "Basic " + base64.b64encode(b"seg-key:").decode()
        assert r_headers["Authorization"] == "Basic " + base64.b64encode(b"rs-key:").decode()
        s_message, r_message = segment.json_bodies()[0]["batch"][0], rudder.json_bodies()[0]["batch"][0]
        assert r_message["properties"] == s_message["properties"]
        assert r_message["messageId"] == s_message["messageId"]
        assert r_message["channel"] == "server"
        assert r_message["context"]["library"]["name"] == "instrument"
        assert "library" not in s_message["context"]
        assert s_message["context"]["consent"] == {"categoryPreferences": {"analytics": True, "ads": False}}
        assert s_message["context"]["consentManagement"]["allowedConsentIds"] == ["analytics"]
        assert s_message["context"]["consentManagement"]["deniedConsentIds"] == ["ads"]
        assert r_message["context"]["consentManagement"] == s_message["context"]["consentManagement"]


def test_rudderstack_needs_its_data_plane_url() -> None:
    with pytest.raises(ConfigurationError, match="host is required"):
        RudderStack("rs-key")


def test_the_key_is_never_in_the_repr() -> None:
    assert "seg-secret" not in repr(Segment("seg-secret"))


def test_a_call_only_the_segment_wire_maps_goes_to_segment_and_rudderstack_only() -> None:
    page = {
        "type": "page",
        "userId": "u1",
        "name": "Pricing",
        "properties": {"path": "/pricing"},
        "timestamp": "2026-01-02T03:04:05.678Z",
        "messageId": "0b6f9d5e-2f7a-4c1e-9a4b-3d2c1b0a9f8e",
    }
    with vendor_server() as segment, vendor_server() as rudder, vendor_server() as posthog:
        instrument.configure(
            destinations=[
                Segment("k", host=segment.url),
                RudderStack("k", host=rudder.url),
                PostHog("k", host=posthog.url),
            ]
        )
        assert instrument.get_client().dispatcher.put(page)  # a built message, as a page() call hands over
        assert instrument.flush(10)
        assert segment.json_bodies()[0]["batch"] == [page]
        (sent,) = rudder.json_bodies()[0]["batch"]
        assert sent == {**page, "channel": "server", "integrations": {"All": True}}
        assert posthog.requests == []
        assert instrument.stats().destinations["posthog"].dropped_total == 0
