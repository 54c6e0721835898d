"""Pure ASGI middleware (Starlette, FastAPI, any ASGI app) binding the scope for each request.

Pure ASGI on purpose: Starlette's ``BaseHTTPMiddleware`` runs the endpoint in another task, so a scope
bound there is not seen by the endpoint. Requires ``instrument[fastapi]`` (Starlette).

uvicorn and hypercorn re-raise SIGTERM after their graceful shutdown, so the process dies by the signal
and ``atexit`` never delivers what the last requests recorded. The middleware therefore delivers at the
end of the ASGI lifespan (after the app's own shutdown, before the server is told it is complete),
which those servers run once the last request is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import HTTPConnection

from instrument import _hints
from instrument._scopes import ScopeResolvers, analytics_scope
from instrument.integrations._common import (
    REQUEST_CONTEXT,
    RequestScope,
    deliver_at_shutdown,
    request_context,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def connection_context(connection: HTTPConnection) -> dict[str, Any]:
    """Segment's request context (ip, userAgent, page, locale) of an ASGI connection."""
    headers = connection.headers
    client = connection.client
    return request_context(
        ip=client.host if client else None,
        user_agent=headers.get("user-agent"),
        path=connection.url.path,
        url=str(connection.url),
        referrer=headers.get("referer"),
        accept_language=headers.get("accept-language"),
    )


class AnalyticsMiddleware:
    """Binds scope ids for every HTTP and WebSocket request: ``app.add_middleware(AnalyticsMiddleware, ...)``.

    ``resolvers`` maps a scope field to a callable taking the request (a Starlette ``HTTPConnection``:
    headers, cookies, ``.user`` behind an auth middleware) and returning the id, or None. A resolver
    that raises never fails the request: it runs unbound and the error is reported (strict mode:
    raised). ``trust_carrier=True`` also binds the ``instrument-scope`` header another service wrote
    with ``inject_scope`` (only for internal traffic). ``request_context`` (default on) puts Segment's
    ``context.ip``/``userAgent``/``page``/``locale`` on every event of the request. Ids known only after
    routing (path parameters): ``instrument.integrations.fastapi.scope_dependency``. The scope is
    restored exactly when the response (background tasks included) is done. At lifespan shutdown it
    delivers what is queued (within the client's ``exit_timeout``) before the server exits.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolvers: ScopeResolvers | None = None,
        trust_carrier: bool = False,
        request_context: bool = True,
    ) -> None:
        self.app = app
        self.config = RequestScope("asgi", resolvers, trust_carrier=trust_carrier, with_request_context=request_context)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _deliver_before_shutdown_completes(send))
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        fields = self.config.fields(connection, connection.headers)
        token = REQUEST_CONTEXT.set(connection_context(connection)) if self.config.with_request_context else None
        hint = _hints.set_hint(_hints.ASGI)
        try:
            # analytics_scope's exit also undoes a binding left by a dependency (scope_dependency).
            async with analytics_scope(**fields):
                await self.app(scope, receive, send)
        finally:
            _hints.reset_hint(hint)
            if token is not None:
                REQUEST_CONTEXT.reset(token)


def _deliver_before_shutdown_completes(send: Send) -> Send:
    async def send_after_delivery(message: MutableMapping[str, Any]) -> None:
        if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            await deliver_at_shutdown()
        await send(message)

    return send_after_delivery
