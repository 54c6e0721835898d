"""Runtime checks compiled once from a field's annotation (done when a Track class is first used).

A check is a plain predicate, so the hot path pays one call; the supported forms are the ones a
property can sensibly hold: classes, ``X | None``, unions, ``Literal``, ``list[T]``, ``tuple[...]``,
``set[T]``, ``dict[str, T]``, ``Annotated[T, ...]``, ``Any``.
"""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[object], bool]


@dataclass(frozen=True)
class Check:
    """A compiled check: ``ok(value)``, the exact classes that pass at once, and a readable form."""

    ok: Predicate
    exact: tuple[type, ...] | None  # value.__class__ in exact -> passes the hot path's test
    text: str
    # True when the exact class is not enough (a container): its items need ok() too, so the generated
    # __init__ calls ok() instead of comparing the class.
    shallow: bool = False


class UnsupportedAnnotation(TypeError):
    """The annotation is not one of the supported forms."""


def _name(tp: object) -> str:
    return getattr(tp, "__name__", None) or repr(tp).replace("typing.", "")


def _class_check(tp: type) -> Check:
    if tp is bool:
        return Check(lambda v: v.__class__ is bool, (bool,), "bool")
    if tp is int:
        # bool is an int subclass, but True is not a count: reject it.
        return Check(lambda v: isinstance(v, int) and not isinstance(v, bool), (int,), "int")
    if tp is float:
        return Check(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), (float, int), "float")
    if tp is object:
        return Check(lambda v: True, None, "object")
    return Check(lambda v: isinstance(v, tp), (tp,), _name(tp))


def _arity(tp: object, args: tuple[Any, ...], expected: int) -> None:
    # ``dict[str]`` and ``list[int, str]`` are accepted by Python at run time, but mean nothing.
    if args and len(args) != expected:
        raise UnsupportedAnnotation(f"{_name(tp)} takes {expected} type argument(s), got {len(args)}")


def compile_check(tp: Any) -> Check:
    """Compile ``tp`` into a Check. Raises UnsupportedAnnotation for forms it cannot check."""
    if tp is Any:
        return Check(lambda v: True, None, "Any")
    if tp is None or tp is type(None):
        return Check(lambda v: v is None, (type(None),), "None")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return compile_check(args[0])
    if origin is typing.Union or origin is types.UnionType:
        parts = [compile_check(a) for a in args]
        exact: tuple[type, ...] | None = ()
        for part in parts:
            exact = None if exact is None or part.exact is None else exact + part.exact
        shallow = any(part.shallow for part in parts)
        preds = [p.ok for p in parts]
        return Check(lambda v: any(p(v) for p in preds), exact, " | ".join(p.text for p in parts), shallow)
    if origin is typing.Literal:
        allowed = args
        return Check(
            lambda v: any(v == a and type(v) is type(a) for a in allowed),
            None,
            f"Literal[{', '.join(map(repr, allowed))}]",
        )
    if origin in (list, cabc.Sequence, cabc.MutableSequence, set, frozenset, cabc.Set, cabc.Iterable):
        _arity(tp, args, 1)
        item = compile_check(args[0]) if args else compile_check(Any)
        container: tuple[type, ...] = {
            list: (list,),
            set: (set,),
            frozenset: (frozenset,),
            cabc.Set: (set, frozenset),
        }.get(origin, (list, tuple))
        item_ok = item.ok
        return Check(
            lambda v: isinstance(v, container) and all(item_ok(x) for x in v),  # type: ignore[attr-defined]
            container,
            f"{_name(origin)}[{item.text}]",
            shallow=True,
        )
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = compile_check(args[0])
            item_ok = item.ok
            return Check(
                lambda v: isinstance(v, tuple) and all(item_ok(x) for x in v),
                (tuple,),
                f"tuple[{item.text}, ...]",
                shallow=True,
            )
        checks = [compile_check(a) for a in args]
        oks = [c.ok for c in checks]
        return Check(
            lambda v: isinstance(v, tuple) and len(v) == len(oks) and all(p(x) for p, x in zip(oks, v, strict=False)),
            (tuple,),
            f"tuple[{', '.join(c.text for c in checks)}]",
            shallow=True,
        )
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        _arity(tp, args, 2)
        key = compile_check(args[0]) if args else compile_check(Any)
        val = compile_check(args[1]) if args else compile_check(Any)
        key_ok, val_ok = key.ok, val.ok
        return Check(
            lambda v: isinstance(v, cabc.Mapping) and all(key_ok(k) and val_ok(x) for k, x in v.items()),
            (dict,),
            f"dict[{key.text}, {val.text}]",
            shallow=True,
        )
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return compile_check(supertype)
    if isinstance(tp, type):
        return _class_check(tp)
    raise UnsupportedAnnotation(f"cannot check values against {tp!r}")
