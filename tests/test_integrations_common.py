"""What the web integrations share: the header()/cookie() resolvers over each framework's request, and
Segment's request context (bounded, locale parsed from Accept-Language).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import HTTPConnection
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from instrument import ConfigurationError
from instrument.integrations import cookie, header
from instrument.integrations._common import RequestScope, request_context


def starlette_request(headers: dict[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw, "path": "/", "query_string": b""})


def werkzeug_request(headers: dict[str, str]) -> Request:
    return Request(EnvironBuilder(path="/", headers=headers).get_environ())


@pytest.mark.parametrize("make", [starlette_request, werkzeug_request])
def test_header_and_cookie_resolvers_read_any_framework_s_request(make: Any) -> None:
    request = make({"X-User-Id": "42", "Cookie": 'ajs_anonymous_id="anon-1"; other=2', "X-Empty": ""})
    assert header("x-user-id")(request) == "42"
    assert header("X-Empty")(request) is None
    assert header("X-Missing")(request) is None
    assert cookie("ajs_anonymous_id")(request) == "anon-1"  # analytics.js quotes it
    assert cookie("missing")(request) is None


def test_cookie_reads_django_s_cookies_attribute() -> None:
    class DjangoLike:
        COOKIES = {"ajs_anonymous_id": "d-1"}  # noqa: RUF012

    assert cookie("ajs_anonymous_id")(DjangoLike()) == "d-1"


def test_request_context_has_segment_s_keys() -> None:
    assert request_context(
        ip="10.0.0.1",
        user_agent="UA",
        path="/a",
        url="https://x/a?b=1",
        referrer="https://r/",
        accept_language="en-GB;q=0.9, en",
    ) == {
        "ip": "10.0.0.1",
        "userAgent": "UA",
        "page": {"path": "/a", "url": "https://x/a?b=1", "referrer": "https://r/"},
        "locale": "en-GB",
    }
    assert request_context(ip=None, user_agent=None, path="/", url="http://x/", referrer=None, accept_language="*") == {
        "page": {"path": "/", "url": "http://x/"}
    }


@given(st.text(max_size=3000), st.text(max_size=3000), st.text(max_size=200))
def test_request_context_is_bounded_whatever_the_headers(user_agent: str, url: str, language: str) -> None:
    found = request_context(
        ip="1.2.3.4", user_agent=user_agent, path=url, url=url, referrer=url, accept_language=language
    )
    assert len(found.get("userAgent", "")) <= 1000
    assert all(len(v) <= 1000 for v in found["page"].values())
    locale = found.get("locale")
    assert locale is None or (len(locale) <= 35 and all(c.isalnum() or c == "-" for c in locale))


def test_a_resolver_for_an_unknown_field_is_refused_when_set_up() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        RequestScope("test", {"secret": header("X")}, trust_carrier=False, with_request_context=False)
