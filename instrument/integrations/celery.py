"""Celery: the producer's scope rides with each task, and each worker child delivers before it exits.
Requires ``instrument[celery]``.

``install()`` connects four signals: ``before_task_publish`` writes the bound scope into the message
headers (at the top level and inside ``headers["headers"]``, since custom headers do not reliably reach
``task.request`` otherwise: celery/celery#4875); ``task_prerun`` binds exactly that scope for the task;
``task_postrun`` restores what was bound before; ``worker_process_shutdown`` flushes, so a prefork child
recycled by ``--max-tasks-per-child`` (which ends through ``os._exit``) loses nothing. In eager mode
(``task_always_eager``, ``task.apply()``) the task runs inline under the caller's scope, which is left as
it was.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import signals

from instrument import _client, _hints, _scopes
from instrument._errors import PropagationError
from instrument._propagation import bind_exactly, decode_scope, encode_scope, report, reset_quietly
from instrument._scopes import get_bound

#: The header carrying the scope (an underscore: top-level headers become ``task.request`` attributes).
HEADER = "instrument_scope"

_UID = "instrument.integrations.celery"
_settings = {"require_scope": False, "flush_timeout": 5.0}
# task id -> the tokens of its binding and hint, for task_postrun (prerun and postrun run on the task's thread).
_tokens: dict[str, tuple[_scopes.ScopeToken, _hints.HintToken]] = {}
_tokens_lock = threading.Lock()


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    value = encode_scope(get_bound())
    if value is None:
        return
    headers[HEADER] = value
    nested = headers.get("headers")
    if not isinstance(nested, dict):
        nested = headers["headers"] = {}
    nested[HEADER] = value


def _header_of(request: Any) -> object:
    value = getattr(request, HEADER, None)
    if value is not None:
        return value
    headers = getattr(request, "headers", None)
    if isinstance(headers, dict):
        value = headers.get(HEADER)
        if value is None and isinstance(headers.get("headers"), dict):
            value = headers["headers"].get(HEADER)
    return value


def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    if request is None or getattr(request, "is_eager", False):
        return  # eager: inline, under the caller's own scope
    fields: dict[str, object] = {}
    try:
        fields = _fields_of(task, request)
    finally:
        # Bound even when strict mode raises: a previous task's scope must never show through.
        _bind(task_id, fields)


def _fields_of(task: Any, request: Any) -> dict[str, object]:
    name = getattr(task, "name", "?")
    value = _header_of(request)
    if value is None:
        if _settings["require_scope"]:
            report(
                PropagationError(
                    f"celery: task {name!r} arrived without the {HEADER} header; it runs unbound", source="celery"
                )
            )
        return {}
    try:
        return decode_scope(value, where=f"celery task {name!r}")
    except PropagationError as error:
        report(error)
        return {}


def _bind(task_id: str | None, fields: dict[str, object]) -> None:
    tokens = (bind_exactly(fields), _hints.set_hint(_hints.CELERY))
    if task_id is not None:
        with _tokens_lock:
            _tokens[task_id] = tokens


def _postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    with _tokens_lock:
        tokens = _tokens.pop(task_id, None)
    if tokens is None:
        return
    scope_token, hint_token = tokens
    try:
        _hints.reset_hint(hint_token)
    except (ValueError, RuntimeError):  # another context: reset_quietly reports the scope's own failure
        pass
    reset_quietly(scope_token, "celery")


def _process_shutdown(**_: Any) -> None:
    client = _client.get_client()
    client.flush(float(_settings["flush_timeout"]))


def install(*, require_scope: bool = False, flush_timeout: float = 5.0) -> None:
    """Connect the signals (idempotent), in the producer and in the worker (import it with your app).

    ``require_scope=True`` reports a task that arrives without the scope header (raised in strict mode;
    the task still runs, unbound). A garbage or hostile header always leaves the task unbound and
    running, and is reported. ``flush_timeout`` bounds the flush of a worker child before it exits.
    """
    _settings["require_scope"] = require_scope
    _settings["flush_timeout"] = flush_timeout
    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid=_UID + ".publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid=_UID + ".prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid=_UID + ".postrun")
    signals.worker_process_shutdown.connect(_process_shutdown, weak=False, dispatch_uid=_UID + ".shutdown")


def uninstall() -> None:
    """Disconnect the signals ``install`` connected."""
    signals.before_task_publish.disconnect(dispatch_uid=_UID + ".publish")
    signals.task_prerun.disconnect(dispatch_uid=_UID + ".prerun")
    signals.task_postrun.disconnect(dispatch_uid=_UID + ".postrun")
    signals.worker_process_shutdown.disconnect(dispatch_uid=_UID + ".shutdown")
