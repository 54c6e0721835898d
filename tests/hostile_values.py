"""Hypothesis strategies for values a Track may be handed: plain, nested, hostile, and secret-bearing.

Every str made here contains ``SECRET``, every hostile object's exception message and repr too, so a
test can assert that no error text ever shows a value (issue 12, point 3).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SECRET = "SECRET-alice@example.com"

_DUNDERS = ("__eq__", "__repr__", "__str__", "__iter__", "__len__", "__hash__", "__bool__", "__class__")


def hostile(raising: frozenset[str]) -> object:
    """An object whose dunders in ``raising`` raise an exception that quotes the secret."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"leaked {SECRET}")

    namespace: dict[str, Any] = {"__repr__": lambda self: f"<{SECRET}>"}
    for name in raising:
        namespace[name] = property(boom) if name == "__class__" else boom
    if "__eq__" in raising and "__hash__" not in raising:
        namespace["__hash__"] = object.__hash__
    base: type = list if "__iter__" in raising or "__len__" in raising else object
    return type("Hostile", (base,), namespace)()


class _Labelled(list):  # type: ignore[type-arg]
    """A list with a short repr: Hypothesis prints examples, and a deep or cyclic one has no repr."""

    label = ""

    def __repr__(self) -> str:
        return self.label


class _LabelledDict(dict):  # type: ignore[type-arg]
    label = ""

    def __repr__(self) -> str:
        return self.label


def liar(claimed: type) -> object:
    """An object whose ``__class__`` claims to be ``claimed`` (isinstance believes it; JSON does not)."""

    class Liar:
        __class__ = property(lambda self: claimed)  # type: ignore[assignment]

        def __repr__(self) -> str:
            return f"<{SECRET}>"

    return Liar()


def self_containing(kind: str) -> object:
    """A list or dict that contains itself."""
    if kind == "list":
        items = _Labelled([SECRET])
        items.label = "<list containing itself>"
        items.append(items)
        return items
    mapping = _LabelledDict(k=SECRET)
    mapping.label = "<dict containing itself>"
    mapping["self"] = mapping
    return mapping


def deep(depth: int) -> object:
    """A list nested ``depth`` levels deep."""
    value: list[Any] = [SECRET]
    for _ in range(depth):
        value = [value]
    outer = _Labelled(value)
    outer.label = f"<list nested {depth} deep>"
    return outer


secrets = st.text(max_size=8).map(lambda s: f"{s}{SECRET}{s}")
hostiles = st.frozensets(st.sampled_from(_DUNDERS), min_size=1, max_size=3).map(hostile)
# Claims Hypothesis can print (its printers for int, float and bool do arithmetic on the value).
liars = st.sampled_from([str, bytes, list, dict]).map(liar)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    secrets,
    st.binary(max_size=8).map(lambda b: b + SECRET.encode()),
)
#: Anything: scalars, containers of them (secrets as keys too), hostile objects, cycles, deep nesting.
values = (
    st.recursive(
        st.one_of(scalars, hostiles),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.tuples(inner, inner),
            st.dictionaries(secrets, inner, max_size=3),
        ),
        max_leaves=6,
    )
    | st.sampled_from(["list", "dict"]).map(self_containing)
    | st.just(2_000).map(deep)  # deeper than the encoder's limit and Python's recursion limit
)
#: A list nested far past the C stack. Not drawn at random: refusing it costs about 0.1 s and it is always
#: the same value, so each property names it in @examples (both modes) instead. One shared instance: 100,000
#: lists per copy would weigh on every later garbage collection of the worker.
very_deep = deep(100_000)
