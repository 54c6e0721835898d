"""What the web integrations share: resolving ids per request, and Segment's request context."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, cast

from instrument import _client, _context
from instrument._propagation import check_resolvers, extract_scope, resolve
from instrument._scopes import ScopeFields, ScopeResolvers

logger = logging.getLogger("instrument")

#: A resolver: given the framework's request object, the id of one scope field (None: leave it unbound).
Resolver = Callable[[Any], Any]

# Segment's request context of the request being served ("ip", "userAgent", "page", "locale"), read by the
# context provider on the caller's thread when an event is recorded.
REQUEST_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "instrument_request_context", default=None
)
# Long headers (a hostile User-Agent) must not push a message past Segment's 32 KB limit.
_MAX_TEXT = 1000


def _request_context_provider() -> Mapping[str, Any] | None:
    return REQUEST_CONTEXT.get()


def enable_request_context() -> None:
    """Make every event recorded while a request is served carry that request's context."""
    _context.add_provider(_request_context_provider)


def _locale(accept_language: str | None) -> str | None:
    if not accept_language:
        return None
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    if not first or first == "*" or len(first) > 35 or not all(c.isalnum() or c == "-" for c in first):
        return None
    return first


def request_context(
    *,
    ip: str | None,
    user_agent: str | None,
    path: str,
    url: str,
    referrer: str | None,
    accept_language: str | None,
) -> dict[str, Any]:
    """Segment's ``context`` fields for a request: ip, userAgent, page (path, url, referrer), locale."""
    page: dict[str, Any] = {"path": path[:_MAX_TEXT], "url": url[:_MAX_TEXT]}
    if referrer:
        page["referrer"] = referrer[:_MAX_TEXT]
    found: dict[str, Any] = {"page": page}
    if ip:
        found["ip"] = ip[:64]
    if user_agent:
        found["userAgent"] = user_agent[:_MAX_TEXT]
    locale = _locale(accept_language)
    if locale:
        found["locale"] = locale
    return found


class RequestScope:
    """The configuration of one integration: resolvers, whether to trust a carrier header, request context."""

    def __init__(
        self,
        where: str,
        resolvers: ScopeResolvers | Mapping[str, Resolver] | None,
        *,
        trust_carrier: bool,
        with_request_context: bool,
    ) -> None:
        self.where = where
        self.resolvers = check_resolvers(resolvers or {}, where)
        self.trust_carrier = trust_carrier
        self.with_request_context = with_request_context
        if with_request_context:
            enable_request_context()

    def fields(self, request: object, headers: Mapping[str, Any] | None) -> ScopeFields:
        """The ids to bind for ``request``: the carrier's (if trusted), then the resolvers'.

        A resolver has the last word on its field: when it returns None (an anonymous request) the field
        stays unbound even if a trusted carrier named it, so a caller cannot pose as a user the
        resolver does not vouch for. A failing resolver (or a bad carrier) is reported (raised in
        strict mode) and gives no ids at all: the request runs unbound rather than half-bound.
        """
        found: dict[str, object] = {}
        if self.trust_carrier and headers is not None:
            found.update(extract_scope(headers))
        resolved = resolve(self.resolvers, request, where=self.where)
        if resolved is None:
            return {}
        for name in self.resolvers:
            found.pop(name, None)
        found.update(resolved)
        return cast(ScopeFields, found)


def header(name: str) -> Resolver:
    """A resolver reading request header ``name`` (any framework's request: Starlette, Werkzeug, Django)."""

    def from_header(request: Any) -> object:
        value: object = request.headers.get(name)
        return value if value != "" else None

    return from_header


def cookie(name: str) -> Resolver:
    """A resolver reading cookie ``name`` (e.g. analytics.js's ``ajs_anonymous_id``, whose quotes it drops)."""

    def from_cookie(request: Any) -> object:
        cookies = getattr(request, "cookies", None)
        if cookies is None:
            cookies = getattr(request, "COOKIES", {})  # Django
        value = cookies.get(name)
        if isinstance(value, str):
            value = value.strip('"') or None
        return value

    return from_cookie


ASGIMessage = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
ASGISend = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[ASGIMessage, ASGIReceive, ASGISend], Awaitable[None]]


async def deliver_at_shutdown() -> None:
    """Deliver what is queued within the client's ``exit_timeout``, off the event loop; say so if not all was.

    For ASGI servers that re-raise SIGTERM after their graceful shutdown (uvicorn, hypercorn), so that
    ``atexit`` never runs: called at the end of the lifespan, after the last request.
    """
    timeout = _client.get_client().exit_timeout
    if not await _client.aflush(timeout):
        logger.warning("analytics: ASGI shutdown: not everything was delivered within %.1f s", timeout)


def answering_lifespan(app: ASGIApp) -> ASGIApp:
    """``app`` with the ASGI lifespan answered here, for apps that do not speak it (Django's ASGI handler).

    Startup is acknowledged; at shutdown what is queued is delivered before it is acknowledged. Every
    other scope goes to ``app``.
    """

    async def with_lifespan(scope: ASGIMessage, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await deliver_at_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return with_lifespan
