"""Mixpanel's wire: tracks to /track, identifies to /engage ($set), at a loopback endpoint."""

from __future__ import annotations

from vendor_server import send_through

from instrument.destinations import Mixpanel
from instrument.destinations._mixpanel import MAPPING


def test_tracks_go_to_track_and_identifies_to_engage_each_with_the_token() -> None:
    server = send_through(lambda url: Mixpanel("mp_token", host=url))
    ((event,),) = server.json_bodies("/track")
    ((profile,),) = server.json_bodies("/engage")
    assert event["event"] == "Items Exported"
    props = event["properties"]
    assert props["token"] == "mp_token"
    assert props["distinct_id"] == "u1"
    assert "$user_id" not in props
    assert props["count"] == 3
    assert isinstance(props["time"], int)
    assert props["time"] > 1_700_000_000_000
    assert len(props["$insert_id"]) == 32
    assert profile == {
        "$token": "mp_token",
        "$distinct_id": "u1",
        "$time": profile["$time"],
        "$set": {"email": "a@example.com", "gh": False},
    }


def test_an_anonymous_visitor_is_the_distinct_id() -> None:
    server = send_through(lambda url: Mixpanel("t", host=url), anonymous_id="anon-1")
    props = server.json_bodies("/track")[0][0]["properties"]
    assert props["distinct_id"] == "anon-1"
    assert "$user_id" not in props


def test_the_declared_mapping_names_every_segment_field() -> None:
    assert set(MAPPING) >= {"event", "userId", "anonymousId", "properties", "traits", "timestamp", "messageId"}
