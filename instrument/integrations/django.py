"""Django middleware binding the scope for each request, sync and async capable. Requires
``instrument[django]``.

Settings (all optional): ``INSTRUMENT_SCOPE_RESOLVERS`` maps a scope field to a callable taking the
``HttpRequest`` (or its dotted path), e.g. ``{"user_id": "myapp.analytics.user_id_of"}``;
``INSTRUMENT_TRUST_CARRIER`` binds the ``instrument-scope`` header of internal calls;
``INSTRUMENT_REQUEST_CONTEXT`` (default True) adds Segment's request context to the request's events.
Under an ASGI server, serve ``asgi_application()`` (Django's ASGI handler answering the lifespan): it
delivers at shutdown, which uvicorn and hypercorn need since they re-raise SIGTERM (atexit never runs).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

from instrument import _hints, _scopes
from instrument._scopes import analytics_scope
from instrument.integrations._common import (
    REQUEST_CONTEXT,
    ASGIApp,
    RequestScope,
    answering_lifespan,
    request_context,
)

GetResponse = Callable[[HttpRequest], Any]


def django_request_context(request: HttpRequest) -> dict[str, Any]:
    """Segment's request context (ip, userAgent, page, locale) of a Django request."""
    meta = request.META
    return request_context(
        ip=meta.get("REMOTE_ADDR"),
        user_agent=meta.get("HTTP_USER_AGENT"),
        path=request.path,
        url=request.build_absolute_uri(),
        referrer=meta.get("HTTP_REFERER"),
        accept_language=meta.get("HTTP_ACCEPT_LANGUAGE"),
    )


def _configured() -> RequestScope:
    resolvers = {
        field: import_string(resolver) if isinstance(resolver, str) else resolver
        for field, resolver in dict(getattr(settings, "INSTRUMENT_SCOPE_RESOLVERS", {})).items()
    }
    return RequestScope(
        "django",
        resolvers,
        trust_carrier=bool(getattr(settings, "INSTRUMENT_TRUST_CARRIER", False)),
        with_request_context=bool(getattr(settings, "INSTRUMENT_REQUEST_CONTEXT", True)),
    )


def asgi_application() -> ASGIApp:
    """Django's ASGI application (``get_asgi_application()``) that also answers the ASGI lifespan.

    Django's handler refuses the lifespan, so a server never tells it that it shuts down; uvicorn and
    hypercorn then re-raise SIGTERM and ``atexit`` never delivers what the last requests recorded. This
    one delivers at the lifespan's shutdown. In ``asgi.py``: ``application = asgi_application()``.
    """
    return answering_lifespan(get_asgi_application())


class AnalyticsMiddleware:
    """Add ``"instrument.integrations.django.AnalyticsMiddleware"`` to ``MIDDLEWARE`` (after authentication
    if a resolver reads ``request.user``).

    Each request's ids come from the resolvers in the settings. A resolver that raises never fails the
    request: it runs unbound and the error is reported (strict mode: raised). Under WSGI the request runs
    in its own copy of the thread's context, streamed content included, so a reused thread never shows
    the next request this scope; under ASGI the scope is bound for the request's task.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.config = _configured()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        fields = self.config.fields(request, request.META)
        context = contextvars.copy_context()
        context.run(self._bind, fields, request)
        response: HttpResponseBase = context.run(self.get_response, request)
        if response.streaming:
            content = response.streaming_content
            if not hasattr(content, "__aiter__"):
                response.streaming_content = _in_context(context, content)
        return response

    def _bind(self, fields: _scopes.ScopeFields, request: HttpRequest) -> None:
        _hints.set_hint(_hints.DJANGO)  # in the request's own context, like the scope
        if fields:
            _scopes.attach(fields)
        if self.config.with_request_context:
            REQUEST_CONTEXT.set(django_request_context(request))

    async def __acall__(self, request: HttpRequest) -> Any:
        fields = self.config.fields(request, request.META)
        token = REQUEST_CONTEXT.set(django_request_context(request)) if self.config.with_request_context else None
        hint = _hints.set_hint(_hints.DJANGO)
        try:
            async with analytics_scope(**fields):
                get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
                response = await get_response(request)
                if response.streaming:
                    content = response.streaming_content
                    if not hasattr(content, "__aiter__"):
                        # Django's ASGI handler consumes a sync iterator in a worker thread after this
                        # returned: each step runs in the request's context.
                        response.streaming_content = _in_context(contextvars.copy_context(), content)
                    elif sys.version_info >= (3, 11):
                        response.streaming_content = _in_async_context(contextvars.copy_context(), content)
                return response
        finally:
            _hints.reset_hint(hint)
            if token is not None:
                REQUEST_CONTEXT.reset(token)


def _in_context(context: contextvars.Context, content: Any) -> Iterator[Any]:
    iterator = context.run(iter, content)
    while True:
        try:
            yield context.run(next, iterator)
        except StopIteration:
            return


async def _in_async_context(context: contextvars.Context, content: Any) -> AsyncIterator[Any]:
    iterator = content.__aiter__()
    while True:
        try:
            # Each step as a task in the request's context: streamed after the middleware returned.
            yield await asyncio.create_task(iterator.__anext__(), context=context)  # type: ignore[call-arg,unused-ignore]
        except StopAsyncIteration:
            return
