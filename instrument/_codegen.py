"""Compile generated functions so they read like written code: source in ``linecache``, real names.

Modelled on attrs' ``_make_method``/``_linecache_and_compile``: the source is registered under a readable,
unique filename (``<instrument generated __init__ of app.analytics.ClusterDeleted>``), so tracebacks show
the generated line, ``inspect.getsource`` works, and the function carries ``__module__``,
``__qualname__`` and ``__doc__`` of the class it belongs to.
"""

from __future__ import annotations

import linecache
import threading
from collections.abc import Callable, Mapping
from typing import Any

_lock = threading.Lock()


def _unique_filename(base: str, source: str) -> str:
    # Called under _lock. Two classes of one qualified name (redefined in a test, a reloaded module)
    # get distinct filenames, unless their source is the same.
    filename = f"{base}>"
    counter = 1
    while True:
        cached: tuple[Any, ...] | None = linecache.cache.get(filename)
        if cached is None or "".join(cached[2]) == source:
            return filename
        counter += 1
        filename = f"{base}-{counter}>"


def make_function(
    name: str,
    source: str,
    namespace: Mapping[str, Any],
    *,
    what: str,
    module: str,
    qualname: str,
    doc: str | None = None,
) -> Callable[..., Any]:
    """Compile ``source`` (one ``def name(...)``) with globals ``namespace`` and return the function.

    ``what`` and ``module``/``qualname`` name the source in tracebacks: ``<instrument generated {what} of
    {module}.{qualname}>``; the function's ``__qualname__`` is ``{qualname}.{name}``.
    """
    globs = dict(namespace)
    with _lock:
        filename = _unique_filename(f"<instrument generated {what} of {module}.{qualname}", source)
        code = compile(source, filename, "exec")
        # mtime None: linecache.checkcache() keeps the entry (it only revalidates real files).
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(code, globs)
    function: Callable[..., Any] = globs[name]
    function.__module__ = module
    function.__qualname__ = f"{qualname}.{name}"
    function.__doc__ = doc
    return function
