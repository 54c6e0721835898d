"""Delivery from forked children that end through ``os._exit`` (multiprocessing, billiard, Celery prefork).

Such a child never runs ``atexit``; it does run ``multiprocessing.util`` finalizers after its work
completes normally (billiard shares that registry). The client's after-fork hook calls
``flush_at_child_exit`` so that a finalizer registered in the child delivers what the child recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class _Anchor:
    """A weak-referenceable owner for the after-fork registration (multiprocessing keys it weakly)."""


_anchor = _Anchor()
_on_exit: Callable[[], None] | None = None


def _register_finalizer(_: object = None) -> None:
    util: Any = sys.modules.get("multiprocessing.util")
    if util is None or _on_exit is None:
        return
    # Negative priority: run after the other finalizers, so events they record are delivered too.
    util.Finalize(None, _on_exit, exitpriority=-10)


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
    util.register_after_fork(_anchor, _register_finalizer)
