"""PostHog's wire: a track and an identify as the capture batch API takes them, at a loopback endpoint."""

from __future__ import annotations

import uuid

from vendor_server import send_through

from instrument.destinations import PostHog
from instrument.destinations._posthog import MAPPING


def test_a_track_and_an_identify_reach_the_batch_api_with_the_key_ids_and_library() -> None:
    server = send_through(lambda url: PostHog("phc_key", host=url))
    (body,) = server.json_bodies("/batch/")
    assert body["api_key"] == "phc_key"
    track, identify = body["batch"]
    assert track["event"] == "Items Exported"
    assert track["distinct_id"] == "u1"
    assert track["properties"]["count"] == 3
    assert track["properties"]["$lib"] == "instrument"
    assert uuid.UUID(track["uuid"]).version == 4
    assert track["timestamp"].endswith("Z")
    assert identify["event"] == "$set"
    assert identify["$set"] == {"email": "a@example.com", "gh": False}
    assert identify["uuid"] != track["uuid"]


def test_an_anonymous_visitor_is_keyed_by_the_anonymous_id() -> None:
    server = send_through(lambda url: PostHog("k", host=url), anonymous_id="anon-1")
    assert {m["distinct_id"] for m in server.json_bodies("/batch/")[0]["batch"]} == {"anon-1"}


def test_the_declared_mapping_names_every_segment_field() -> None:
    assert set(MAPPING) >= {"event", "userId", "anonymousId", "properties", "traits", "timestamp", "messageId"}
