"""Amplitude's wire: HTTP V2 events (event_type, user_id/device_id, time in ms, insert_id) at a loopback endpoint."""

from __future__ import annotations

import datetime as dt

from vendor_server import send_through

from instrument.destinations import Amplitude
from instrument.destinations._amplitude import MAPPING


def test_a_track_and_an_identify_reach_the_http_v2_api() -> None:
    server = send_through(lambda url: Amplitude("amp_key", host=url))
    (body,) = server.json_bodies("/2/httpapi")
    assert body["api_key"] == "amp_key"
    track, identify = body["events"]
    assert track["event_type"] == "Items Exported"
    assert track["user_id"] == "u1"
    assert track["event_properties"] == {"count": 3, "exact": False}
    assert abs(track["time"] / 1000 - dt.datetime.now(dt.timezone.utc).timestamp()) < 60
    assert track["insert_id"] != identify["insert_id"]
    assert identify["event_type"] == "$identify"
    assert identify["user_properties"] == {"$set": {"email": "a@example.com", "gh": False}}
    assert track["library"].startswith("instrument/")


def test_an_anonymous_visitor_is_a_device_id() -> None:
    server = send_through(lambda url: Amplitude("k", host=url), anonymous_id="anon-12345")
    events = server.json_bodies("/2/httpapi")[0]["events"]
    assert all(e["device_id"] == "anon-12345" and "user_id" not in e for e in events)


def test_the_declared_mapping_names_every_segment_field() -> None:
    assert set(MAPPING) >= {"event", "userId", "anonymousId", "properties", "traits", "timestamp", "messageId"}
