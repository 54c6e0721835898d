"""The one ingest path of the endpoint and the collector: inflate with a bound, decode strictly, validate."""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from instrument import MAX_BATCH_BYTES
from instrument.testing import SegmentEndpoint
from instrument.testing._ingest import PATHS, Refused, decode, inflate, parse

JSON_HEADERS = {"Content-Type": "application/json"}


def test_gzip_inflates_every_member_of_the_stream() -> None:
    assert inflate(gzip.compress(b'{"a":') + gzip.compress(b"1}"), "gzip") == b'{"a":1}'


def test_a_bomb_is_refused_as_soon_as_it_passes_the_limit() -> None:
    with pytest.raises(Refused, match="inflates to over the 1000-byte limit") as refused:
        inflate(gzip.compress(b"a" * 10_000_000), "GZip", limit=1000)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [(gzip.compress(b"{}", mtime=0)[:-4], "truncated"), (b"plain", "not valid gzip"), (b"", "not valid gzip")],
    ids=["truncated", "not gzip", "empty"],
)
def test_broken_gzip_is_400_naming_the_encoding(body: bytes, reason: str) -> None:
    if not body:
        assert inflate(body, "gzip") == b""  # no body at all is not a gzip error; the JSON decode refuses it
        return
    with pytest.raises(Refused, match=reason):
        inflate(body, "gzip")


def test_only_gzip_and_identity_are_encodings() -> None:
    with pytest.raises(Refused, match="'br' is not supported") as refused:
        inflate(b"{}", "br")
    assert refused.value.status == 415


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '"\\ud800"', '{"\\udc00": 1}', "[" * 2000 + "]" * 2000])
def test_what_segment_refuses_does_not_decode(text: str) -> None:
    with pytest.raises(Refused, match="malformed JSON"):
        decode(text.encode())


def test_a_surrogate_pair_is_one_character() -> None:
    assert decode(b'"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize(("short", "long"), [("t", "track"), ("i", "identify"), ("p", "page"), ("s", "screen")])
def test_analytics_js_paths_and_text_plain_bodies_with_the_write_key_inside(short: str, long: str) -> None:
    body = {"event": "Viewed", "userId": "u", "writeKey": "wk-browser"}
    ingested = parse(f"/v1/{short}", {"Content-Type": "text/plain"}, json.dumps(body).encode())
    assert ingested.write_key == "wk-browser"
    assert ingested.messages == [{"type": long, "event": "Viewed", "userId": "u"}]  # the key is not an event field
    assert PATHS[f"/v1/{long}"] == long


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"batch": [{"type": "launch", "userId": "u"}]}, "batch[0]: type must be one of"),
        ({"batch": [{"type": "track", "userId": "u"}]}, "batch[0]: a track message needs an event name"),
        ({"batch": [{"type": "track", "event": "A", "p": "x" * 33_000}]}, "batch[0]: message is"),
        ({"batch": "all"}, "batch: expected a list"),
        ([], "the body must be a JSON object"),
    ],
)
def test_bad_batches_are_refused_naming_where(body: Any, reason: str) -> None:
    with pytest.raises(Refused, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse("/v1/batch", JSON_HEADERS, json.dumps(body).encode())


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(properties=st.dictionaries(st.text(max_size=10), _json, max_size=5), gzipped=st.booleans())
def test_any_json_message_within_the_limits_is_taken_as_sent(properties: dict[str, Any], gzipped: bool) -> None:
    message = {"type": "track", "event": "Any", "userId": "u", "properties": properties}
    raw = json.dumps({"batch": [message]}).encode()
    headers = {**JSON_HEADERS, **({"Content-Encoding": "gzip"} if gzipped else {})}
    assert parse("/v1/batch", headers, gzip.compress(raw) if gzipped else raw).messages == [message]


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200), gzipped=st.booleans())
def test_arbitrary_bytes_are_taken_or_refused_never_anything_else(raw: bytes, gzipped: bool) -> None:
    headers = {**JSON_HEADERS, **({"Content-Encoding": "gzip"} if gzipped else {})}
    status = 200
    try:
        parse("/v1/batch", headers, raw)
    except Refused as refused:
        status = refused.status
    assert status == 200 or 400 <= status < 500


def test_a_preflight_allows_any_origin_to_post() -> None:
    with SegmentEndpoint() as endpoint:
        headers = {
            "Origin": "http://example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        answer = requests.options(endpoint.url + "/v1/t", headers=headers, timeout=30)
        assert answer.status_code == 204
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert answer.headers["Access-Control-Allow-Headers"] == "content-type"
        posted = requests.post(endpoint.url + "/v1/t", data=b'{"event": "A"}', headers={"Origin": "x"}, timeout=30)
        assert posted.headers["Access-Control-Allow-Origin"] == "*"
        assert endpoint.messages == [{"type": "track", "event": "A"}]


def test_a_request_over_the_limit_is_refused_unread() -> None:
    with SegmentEndpoint() as endpoint, socket.create_connection(("127.0.0.1", endpoint.port), timeout=30) as sock:
        sock.sendall(f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: {2 * MAX_BATCH_BYTES}\r\n\r\n".encode())
        answer = sock.makefile("rb").read()  # answered and closed without waiting for the body
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"Connection: close" in answer
