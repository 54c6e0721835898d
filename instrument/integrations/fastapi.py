"""A FastAPI dependency binding ids known only after routing (path parameters), for ``async def`` and
``def`` endpoints alike. Requires ``instrument[fastapi]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

from instrument import _scopes
from instrument.integrations._common import RequestScope
from instrument.integrations.asgi import AnalyticsMiddleware

__all__ = ["AnalyticsMiddleware", "path_param", "scope_dependency"]


def scope_dependency(**resolvers: Callable[[HTTPConnection], object]) -> Callable[[HTTPConnection], Awaitable[None]]:
    """A dependency that binds scope fields from the routed request: ``Depends(scope_dependency(...))``.

    Each keyword maps a scope field to a callable taking the request (a Starlette ``HTTPConnection``,
    so HTTP and WebSocket routes alike; ``request.path_params`` is set) and returning the id, or None.
    Use it on a route, a router or the app (``FastAPI(dependencies=[...])``), together with
    ``AnalyticsMiddleware``, which restores the scope when the request ends. The dependency is
    ``async`` on purpose: FastAPI runs a ``def`` dependency in a worker thread whose context is then
    thrown away, so a scope bound there would be lost; bound here, it is seen by ``async def`` and
    ``def`` endpoints, ``def`` dependencies declared after it, and background tasks. A resolver that
    raises leaves the request unbound and is reported (raised in strict mode). Raises
    ConfigurationError for a field no scope defines.
    """
    config = RequestScope("fastapi", resolvers, trust_carrier=False, with_request_context=False)

    async def bind_request_scope(request: HTTPConnection) -> None:
        fields = config.fields(request, None)
        if fields:
            # Not reset here: it must outlive this function, for the endpoint and background tasks. It
            # lives in the request's own task context; AnalyticsMiddleware's exit restores what was before.
            _scopes.attach(fields)

    return bind_request_scope


def path_param(name: str, convert: Callable[[str], object] | None = None) -> Callable[[HTTPConnection], object]:
    """A resolver reading path parameter ``name`` (converted by ``convert``, e.g. ``int``); None if absent."""

    def from_path(request: HTTPConnection) -> object:
        value = request.path_params.get(name)
        return convert(value) if convert is not None and value is not None else value

    return from_path
