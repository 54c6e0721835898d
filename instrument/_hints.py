"""The fix to name when an event misses scope ids, per framework: set by whoever runs the work.

An event recorded without its ids is a ScopeError; the generic text cannot know where it was recorded.
The integrations set a hint for the work they run (a FastAPI request, a WSGI or Django request, a
process pool's worker), and the error names that framework's fix (``scope_dependency``, a resolver,
``PropagatingExecutor``). A context variable: it follows the request's context and nothing else.
"""

from __future__ import annotations

import contextvars

_HINT: contextvars.ContextVar[str | None] = contextvars.ContextVar("instrument_scope_hint", default=None)

#: What ``set_hint`` returns and ``reset_hint`` takes.
HintToken = contextvars.Token[str | None]

ASGI = (
    "in this ASGI (FastAPI/Starlette) request: ids known only after routing are bound with "
    "Depends(instrument.integrations.fastapi.scope_dependency(...)); a scope bound in a `def` dependency is "
    "lost (FastAPI runs it in a thread whose context it discards); request-wide ids come from the "
    "resolvers of AnalyticsMiddleware"
)
WSGI = (
    "in this WSGI request: ids come from the resolvers of AnalyticsWSGIMiddleware(app, resolvers=...), or bind "
    "them in the view with `with analytics_scope(...)`"
)
DJANGO = (
    "in this Django request: ids come from the resolvers named in settings.INSTRUMENT_SCOPE_RESOLVERS, or bind "
    "them in the view with `with analytics_scope(...)`"
)
CELERY = (
    "in this Celery task: the producer's scope arrives only when instrument.integrations.celery.install() "
    "runs where the task is sent too (import it with your Celery app), or bind it in the task with "
    "`with analytics_scope(...)`"
)
POOL_WORKER = (
    "in a process pool worker: a task runs under the scope it was submitted under only through "
    "instrument.PropagatingExecutor(ProcessPoolExecutor()) or with instrument.propagate_scope() on (which "
    "covers multiprocessing.Pool too); the scope the worker inherited when it was started is not the task's"
)


def set_hint(text: str) -> HintToken:
    """Name ``text`` as the fix for events recorded in this context until ``reset_hint``."""
    return _HINT.set(text)


def reset_hint(token: HintToken) -> None:
    """Undo the ``set_hint`` that returned ``token``."""
    _HINT.reset(token)


def current() -> str | None:
    """The hint of the work running in this context, if any."""
    return _HINT.get()
