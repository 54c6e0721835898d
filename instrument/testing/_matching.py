"""Matching expected fields against captured events, and the texts that show why one did not match."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Union

from instrument._encoding import encode
from instrument._errors import EncodingError
from instrument._events import EventName
from instrument._records import Track, spec_of
from instrument.testing._event import CapturedEvent


class AnalyticsAssertionError(AssertionError):
    """An analytics assertion failed; the message shows what was expected and the closest captures."""


EventOrTrack = Union[type[Track], EventName, str]  # noqa: UP007 - a runtime alias, so no `|` on 3.10


class _AnyType:
    """Matches any value that is present (``instrument.testing.ANY``)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _AnyType()


class _Expected:
    """One expected field: the name the test gave, where to find it in a message, and the matcher."""

    __slots__ = ("key", "name", "raw", "top", "value")

    def __init__(self, name: str, key: str | None, raw: Any, top: str = "userId") -> None:
        self.name = name
        self.key = key  # the body key; None means the message's own key ``top`` (userId, anonymousId)
        self.top = top
        self.raw = raw
        value = _normalize(raw, name)
        if key is None and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = str(value)  # userId and anonymousId are always text on the wire
        self.value = value

    def label(self) -> str:
        if self.key is None:
            return f"{self.name} ({self.top})" if self.name != self.top else self.name
        return self.name if self.key == self.name else f"{self.name} (sent as {self.key!r})"

    def lookup(self, event: CapturedEvent) -> tuple[bool, Any]:
        if self.key is None:
            return (self.top in event, event.get(self.top))
        body = event.body
        return (self.key in body, body.get(self.key))

    def matches(self, event: CapturedEvent) -> bool:
        present, actual = self.lookup(event)
        return present and _match(self.value, actual)


def _is_predicate(value: object) -> bool:
    return callable(value) and not isinstance(value, type) and not isinstance(value, _AnyType)


def _normalize(value: Any, path: str) -> Any:
    """Expected value -> its wire form, keeping matchers (ANY, predicates, objects with __eq__) as they are."""
    if isinstance(value, _AnyType) or _is_predicate(value):
        return value
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return [_normalize(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            wire_key = key.value if isinstance(key, enum.Enum) and isinstance(key.value, str) else key
            out[wire_key] = _normalize(item, f"{path}.{key}")
        return out
    try:
        return encode(value, path)
    except EncodingError:
        return value  # an object with its own __eq__ (dirty-equals, a custom matcher)


def _match(expected: Any, actual: Any) -> bool:
    if isinstance(expected, _AnyType):
        return True
    if _is_predicate(expected):
        try:
            return bool(expected(actual))
        except Exception:
            return False
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_match(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_match(e, actual[k]) for k, e in expected.items())
        )
    numeric = (bool, int, float)
    if type(expected) in numeric and type(actual) in numeric and (type(expected) is bool) != (type(actual) is bool):
        return False  # JSON true is not 1
    try:
        return bool(expected == actual)
    except Exception:
        return False


def _event_name(target: EventOrTrack) -> str:
    """The event name of a Track class, a catalog member, or a name (which must be a defined event)."""
    if isinstance(target, type) and issubclass(target, Track):
        event = spec_of(target).event
        if event is None:  # pragma: no cover - spec_of raises for abstract bases
            raise TypeError(f"{target.__qualname__} has no event")
        return event
    if isinstance(target, EventName):
        return str(target.value)
    if isinstance(target, str):
        known = _known_events()
        if target not in known:
            # A typo in a bare string would otherwise make assert_not_tracked pass for ever.
            close = difflib.get_close_matches(target, sorted(known), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise AnalyticsAssertionError(
                f"{target!r} is not an event of any defined catalog (EventName subclass) or Track class{hint}"
            )
        return target
    raise TypeError(f"expected a Track subclass, an EventName or an event name, got {target!r}")


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _known_events() -> set[str]:
    """Every event name defined so far: the values of every catalog, the events of every Track class."""
    names = {str(member.value) for catalog in _subclasses(EventName) for member in catalog}  # type: ignore[attr-defined]
    names.update(event for cls in _subclasses(Track) if isinstance(event := cls.__dict__.get("_event"), str))
    return names


def _unknown_field(cls: type, name: str, valid: set[str]) -> str:
    """Says that ``cls`` has no field ``name``, suggesting the closest of its fields."""
    close = difflib.get_close_matches(name, sorted(valid), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"{cls.__qualname__} has no field {name!r}.{hint} Its fields: {', '.join(sorted(valid))}."


def _fmt(value: Any) -> str:
    if _is_predicate(value):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or repr(value)
        return f"<predicate {name}>"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _all_match(event: CapturedEvent, fields: list[_Expected], exact: bool) -> bool:
    if not all(f.matches(event) for f in fields):
        return False
    if exact:
        keys = {f.key for f in fields if f.key is not None}
        return set(event.body) <= keys
    return True


def _with(fields: list[_Expected], exact: bool) -> str:
    if not fields:
        return " with exactly no properties" if exact else ""
    shown = ", ".join(f"{f.name}={_fmt(f.raw)}" for f in fields)
    return f" with {'exactly ' if exact else ''}{shown}"


def _one_line(event: CapturedEvent) -> str:
    kind = event.type
    if kind == "identify":
        return f"identify userId={event.user_id!r} traits={_fmt(event.traits)}"
    if kind == "group":
        return f"group groupId={event.get('groupId')!r} userId={event.user_id!r} traits={_fmt(event.traits)}"
    if kind == "alias":
        return f"alias previousId={event.get('previousId')!r} userId={event.user_id!r}"
    if kind in ("page", "screen"):
        return f"{kind} {event.get('name')!r} userId={event.user_id!r} properties={_fmt(event.properties)}"
    return f"track {event.event!r} userId={event.user_id!r} properties={_fmt(event.properties)}"


def _summary(events: Sequence[CapturedEvent]) -> str:
    if not events:
        return "nothing"
    counts: dict[str, int] = {}
    for e in events:
        label = repr(e.event) if e.type == "track" else e.type
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{label} x{n}" if n > 1 else label for label, n in counts.items())


def _diff(event: CapturedEvent, name: str | None, fields: list[_Expected], exact: bool) -> str:
    good = sum(f.matches(event) for f in fields)
    title = f"  [{event.index}] {_one_line(event)}"
    lines = [title, f"      {good} of {len(fields)} expected field(s) match"]
    if name is not None and event.event != name:
        lines.append(f"      event: expected {name!r}, got {event.event!r}")
    differing: list[str] = []
    missing: list[str] = []
    for f in fields:
        present, actual = f.lookup(event)
        if not present:
            missing.append(f"        {f.label()}: expected {_fmt_expected(f)}")
        elif not _match(f.value, actual):
            differing.append(f"        {f.label()}: expected {_fmt_expected(f)}, got {_fmt(actual)}")
    if differing:
        lines += ["      Differing items:", *differing]
    if missing:
        body = "traits" if event.type in ("identify", "group") else "properties"
        lines += [f"      Missing keys (not in the {body}):", *missing]
    if exact:
        keys = {f.key for f in fields if f.key is not None}
        extra = [f"        {k}: {_fmt(v)}" for k, v in event.body.items() if k not in keys]
        if extra:
            lines += ["      Extra keys (exact=True):", *extra]
    return "\n".join(lines)


def _fmt_expected(f: _Expected) -> str:
    if f.value is f.raw or type(f.value) is type(f.raw):
        return _fmt(f.raw)
    return f"{_fmt(f.value)} (encoded from {_fmt(f.raw)})"


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
