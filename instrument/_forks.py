"""Delivery from multiprocessing children, whatever their start method and however they end.

A fork child never runs ``atexit``: multiprocessing (and billiard) end it through ``os._exit``. A
forkserver child is a fork of the fork server and ends the same way. Both, and spawn children, run
``multiprocessing.util`` finalizers after their target returns. Fork and forkserver children run the
after-fork callbacks (``util.register_after_fork``) when their bootstrap starts, before the target;
spawned children do not, so for their pool workers the target itself is wrapped. There a finalizer is
registered that delivers what the child recorded, and the callbacks of ``at_child_start`` run (the
SIGTERM handler of pool workers, dropping a pool worker's inherited scope). The client's after-fork
hook calls ``flush_at_child_exit``; ``watch_children`` covers children that import instrument afresh.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any


class _Anchor:
    """A weak-referenceable owner for the after-fork registration (multiprocessing keys it weakly)."""


_anchor = _Anchor()
_on_exit: Callable[[], None] | None = None
_child_start: list[Callable[[], None]] = []
# Whether ``_child_started`` is in multiprocessing's after-fork registry (a fork child inherits both).
_watching = False
# Names of the functions multiprocessing runs as a pool's worker processes: they take tasks from a
# queue long after they were started, so the scope they inherited is not any task's.
_POOL_WORKERS = {("multiprocessing.pool", "worker"), ("concurrent.futures.process", "_process_worker")}


def _register_finalizer(_: object = None) -> None:
    util: Any = sys.modules.get("multiprocessing.util")
    if util is None or _on_exit is None:
        return
    # Negative priority: run after the other finalizers, so events they record are delivered too.
    util.Finalize(None, _on_exit, exitpriority=-10)


def _child_started(_: object = None) -> None:
    _register_finalizer()
    for callback in _child_start:
        callback()
    current: Any = _current_process()
    if _is_pool_worker_target(getattr(current, "_target", None)) and isinstance(getattr(current, "_args", None), tuple):
        current._args = _responsive_args(current._args)


class _ResponsiveQueue:
    """A pool worker's task queue whose ``get`` wakes every half second while it waits.

    A signal sent to a process may be taken by any of its threads (the delivery thread, say); Python
    then runs the handler on the main thread only when it next runs Python code. An idle pool worker's
    main thread waits in ``SimpleQueue.get`` (a lock, then a pipe read) without a timeout, so a SIGTERM
    taken by another thread would never be handled and ``Pool.terminate()`` would wait forever. Waiting
    in half-second steps lets the handler run.
    """

    _STEP = 0.5

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def get(self) -> Any:
        queue = self._queue
        while not queue._rlock.acquire(timeout=self._STEP):
            pass
        try:
            while not queue._reader.poll(self._STEP):
                pass
            data = queue._reader.recv_bytes()
        finally:
            queue._rlock.release()
        from multiprocessing.reduction import ForkingPickler

        return ForkingPickler.loads(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def _responsive_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    # multiprocessing.pool.worker(inqueue, outqueue, ...): only a SimpleQueue of this shape is wrapped.
    if not args or isinstance(args[0], _ResponsiveQueue):
        return args
    inqueue = args[0]
    if not all(hasattr(inqueue, name) for name in ("_rlock", "_reader")):
        return args
    return (_ResponsiveQueue(inqueue), *args[1:])


def _current_process() -> Any:
    process_module: Any = sys.modules.get("multiprocessing.process")
    return None if process_module is None else process_module.current_process()


def _is_pool_worker_target(target: object) -> bool:
    name = (getattr(target, "__module__", None), getattr(target, "__qualname__", None))
    return name == ("multiprocessing.pool", "worker")


def at_child_start(callback: Callable[[], None]) -> None:
    """Run ``callback`` in each multiprocessing child when its bootstrap starts, before its target (main thread)."""
    if callback not in _child_start:
        _child_start.append(callback)


def is_pool_worker() -> bool:
    """True in a process started by ``multiprocessing.Pool`` or ``ProcessPoolExecutor`` to run its tasks."""
    target = getattr(_current_process(), "_target", None)
    return (getattr(target, "__module__", None), getattr(target, "__qualname__", None)) in _POOL_WORKERS


def flush_at_child_exit(on_exit: Callable[[], None]) -> None:
    """In a forked child: run ``on_exit`` when the child's multiprocessing bootstrap finishes its work.

    multiprocessing (and billiard) clear the finalizer registry after the fork and then run the
    after-fork callbacks, so the finalizer is registered both now (a bare fork) and from such a callback.
    """
    global _on_exit
    _on_exit = on_exit
    if "multiprocessing" not in sys.modules and "billiard" not in sys.modules:
        return  # a bare os.fork(): nothing would run the finalizer
    # billiard imports its util (which is multiprocessing.util's registries) only after the fork.
    from multiprocessing import util

    _register_finalizer()
    _watch(util)


def _watch(util: Any) -> None:
    global _watching
    if not _watching:
        _watching = True
        util.register_after_fork(_anchor, _child_started)


def watch_children(on_exit: Callable[[], None]) -> None:
    """At import: make multiprocessing children that import instrument themselves (spawn, forkserver) deliver.

    When imported while a child is being prepared (its target unpickled), the after-fork callback is
    registered for its bootstrap; when imported later, by a child already running its target (a task
    unpickled in a spawned pool worker), the child-start work is done at once.
    """
    global _on_exit
    _on_exit = on_exit
    if "multiprocessing" not in sys.modules:
        return  # not a multiprocessing child; a parent that imports it later gets the after-fork hook
    from multiprocessing import process, util

    _watch(util)
    current: Any = process.current_process()
    if getattr(current, "_inheriting", False):
        _start_pool_workers_here()
    elif process.parent_process() is not None and threading.current_thread() is threading.main_thread():
        _child_started()


def _start_pool_workers_here() -> None:
    # A spawned child runs no after-fork callbacks (SpawnProcess._after_fork does nothing), and is only
    # being prepared here: its target is unpickled next, by name. A Pool worker's target is
    # multiprocessing.pool.worker, so the child-start work runs from a wrapper of it, in this child only.
    from multiprocessing import pool

    original: Any = getattr(pool, "worker")  # noqa: B009 - the stubs do not declare it
    if getattr(original, "_instrument_child_start", False):
        return

    @functools.wraps(original)
    def worker(*args: Any, **kwargs: Any) -> Any:
        _child_started()
        return original(*_responsive_args(args), **kwargs)

    worker._instrument_child_start = True  # type: ignore[attr-defined]
    setattr(pool, "worker", worker)  # noqa: B010 - the stubs do not declare it
