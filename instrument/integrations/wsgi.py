"""WSGI middleware (Flask and any WSGI app) binding the scope for each request, streamed responses
included. Requires ``instrument[flask]`` (Werkzeug).

The request runs in its own copy of the worker thread's context, entered for the app call, for every
chunk the server takes from the response, and for ``close()``: the scope is bound exactly while the
request's code runs, wherever the server iterates, and the worker thread's own context never changes,
so a reused thread never shows the next request the previous request's scope.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from werkzeug.wrappers import Request

from instrument import _hints, _scopes
from instrument.integrations._common import REQUEST_CONTEXT, RequestScope, request_context

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def environ_context(request: Request) -> dict[str, Any]:
    """Segment's request context (ip, userAgent, page, locale) of a WSGI request."""
    headers = request.headers
    return request_context(
        ip=request.remote_addr,
        user_agent=headers.get("User-Agent"),
        path=request.path,
        url=request.url,
        referrer=headers.get("Referer"),
        accept_language=headers.get("Accept-Language"),
    )


class _ScopedResponse:
    """The app's response iterable, each step run in the request's context; ``close()`` too."""

    __slots__ = ("_context", "_iterator", "_response")

    def __init__(self, response: Iterable[bytes], context: contextvars.Context) -> None:
        self._response = response
        self._context = context
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._response)
        return self._context.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._response, "close", None)
        if close is not None:
            self._context.run(close)

    def __enter__(self) -> _ScopedResponse:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AnalyticsWSGIMiddleware:
    """Binds scope ids for every request: ``app.wsgi_app = AnalyticsWSGIMiddleware(app.wsgi_app, ...)``.

    ``resolvers`` maps a scope field to a callable taking the request (a Werkzeug ``Request`` over the
    environ) and returning the id, or None. A resolver that raises never fails the request: it runs
    unbound and the error is reported (strict mode: raised). ``trust_carrier=True`` also binds the
    ``instrument-scope`` header written by ``inject_scope`` (internal traffic only). ``request_context``
    (default on) adds Segment's ``context.ip``/``userAgent``/``page``/``locale`` to the request's events.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        resolvers: _scopes.ScopeResolvers | None = None,
        trust_carrier: bool = False,
        request_context: bool = True,
    ) -> None:
        self.app = app
        self.config = RequestScope("wsgi", resolvers, trust_carrier=trust_carrier, with_request_context=request_context)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ, populate_request=False, shallow=True)
        fields = self.config.fields(request, environ)  # the carrier header as HTTP_INSTRUMENT_SCOPE
        context = contextvars.copy_context()
        context.run(self._bind, fields, request)
        return _ScopedResponse(context.run(self.app, environ, start_response), context)

    def _bind(self, fields: _scopes.ScopeFields, request: Request) -> None:
        _hints.set_hint(_hints.WSGI)  # in the request's own context, like the scope
        if fields:
            _scopes.attach(fields)
        if self.config.with_request_context:
            REQUEST_CONTEXT.set(environ_context(request))
