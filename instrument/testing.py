"""Assert what your code emits: ``capture_events()`` routes every event to memory, in strict mode.

Use it as a context manager or as a decorator (the captured events are then passed as the last
positional argument)::

    with capture_events() as events:
        provision_cluster(...)
    events.assert_tracked(ClusterProvisioningSuccess, infra_id=3, cluster_id=7)

Each captured event is the final payload (scope merged, properties encoded and checked, wire keys
and redaction applied): exactly what the Segment transport would send, without ``messageId`` and
``timestamp`` (``.messages`` keeps them). Capture is process-wide: events from every thread and
asyncio task are captured while it is active. Imports no pytest; the pytest plugin (the
``analytics_events`` fixture) is built on it.
"""

from __future__ import annotations

import copy
import enum
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, Union, overload

from instrument import _client, _scopes
from instrument._encoding import encode
from instrument._endpoint import SegmentEndpoint
from instrument._errors import (
    AnalyticsError,
    ClosedError,
    DeliveryError,
    EncodingError,
    NotConfiguredError,
    QueueFullError,
)
from instrument._events import EventName
from instrument._messages import EncodeOptions
from instrument._mode import mode
from instrument._records import Identify, Track, scope_wire_key, spec_of
from instrument.transports import MemoryTransport

__all__ = [
    "ANY",
    "AnalyticsAssertionError",
    "CapturedEvent",
    "CapturedEvents",
    "SegmentEndpoint",
    "capture_events",
]

Message = dict[str, Any]
EventOrTrack = Union[type[Track], EventName, str]  # noqa: UP007 - a runtime alias, so no `|` on 3.10
SequenceItem = Union[EventOrTrack, type[Identify], tuple[Any, Mapping[str, Any]]]  # noqa: UP007

R = TypeVar("R")

_IDS = ("messageId", "timestamp")
_CLOSEST = 3  # how many near misses a failure message shows
# Errors that describe the run, not the code: they never count as violations.
_RUNTIME_ERRORS = (NotConfiguredError, QueueFullError, ClosedError, DeliveryError)


class AnalyticsAssertionError(AssertionError):
    """An analytics assertion failed; the message shows what was expected and the closest captures."""


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


class CapturedEvent(dict[str, Any]):
    """One captured payload: a dict of the wire message without ``messageId`` and ``timestamp``.

    ``.message`` is the full wire dict; ``.type``, ``.event``, ``.user_id``, ``.properties`` and
    ``.traits`` read its parts (empty/None when the message has none); ``.index`` is its position
    in emission order among everything captured.
    """

    message: Message
    index: int

    @classmethod
    def _from(cls, message: Message, index: int) -> CapturedEvent:
        full = copy.deepcopy(message)
        event = cls((k, v) for k, v in copy.deepcopy(message).items() if k not in _IDS)
        event.message = full
        event.index = index
        return event

    @property
    def type(self) -> str:
        """``"track"`` or ``"identify"``."""
        return str(self.get("type"))

    @property
    def event(self) -> str | None:
        """The event name of a track (None for an identify)."""
        event = self.get("event")
        return None if event is None else str(event)

    @property
    def user_id(self) -> str:
        """The message's ``userId`` (always text on the wire)."""
        return str(self.get("userId"))

    @property
    def properties(self) -> dict[str, Any]:
        """A track's properties."""
        props: dict[str, Any] = self.get("properties", {})
        return props

    @property
    def traits(self) -> dict[str, Any]:
        """An identify's traits."""
        traits: dict[str, Any] = self.get("traits", {})
        return traits

    @property
    def body(self) -> dict[str, Any]:
        """The properties of a track, the traits of an identify."""
        return self.traits if self.type == "identify" else self.properties


# -- matching ---------------------------------------------------------------------------------


class _Expected:
    """One expected field: the name the test gave, where to find it in a message, and the matcher."""

    __slots__ = ("key", "name", "raw", "value")

    def __init__(self, name: str, key: str | None, raw: Any) -> None:
        self.name = name
        self.key = key  # the body key; None means the message's userId
        self.raw = raw
        value = _normalize(raw, name)
        if key is None and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = str(value)  # userId is always text on the wire
        self.value = value

    def label(self) -> str:
        if self.key is None:
            return f"{self.name} (userId)" if self.name != "userId" else self.name
        return self.name if self.key == self.name else f"{self.name} (sent as {self.key!r})"

    def lookup(self, event: CapturedEvent) -> tuple[bool, Any]:
        if self.key is None:
            return ("userId" in event, event.get("userId"))
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
    if isinstance(target, type) and issubclass(target, Track):
        event = spec_of(target).event
        if event is None:  # pragma: no cover - spec_of raises for abstract bases
            raise TypeError(f"{target.__qualname__} has no event")
        return event
    if isinstance(target, EventName):
        return str(target.value)
    if isinstance(target, str):
        return target
    raise TypeError(f"expected a Track subclass, an EventName or an event name, got {target!r}")


def _fmt(value: Any) -> str:
    if _is_predicate(value):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or repr(value)
        return f"<predicate {name}>"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


# -- the captured events ------------------------------------------------------------------------


class CapturedEvents:
    """What was emitted while capturing, in emission order.

    Iterating (and ``.tracks``, ``.identifies``, ``.of()``, indexing) gives ``CapturedEvent`` dicts
    without ``messageId``/``timestamp``; ``.messages`` gives the full wire dicts. ``.errors`` lists
    the AnalyticsErrors reported (dropped, not raised) while capturing. Every ``assert_*`` method
    returns what matched and raises ``AnalyticsAssertionError`` (an AssertionError) with a field
    diff of the closest captured events.
    """

    def __init__(self, transport: MemoryTransport, options: EncodeOptions | None = None) -> None:
        self._transport = transport
        self._options = options or EncodeOptions()
        self.errors: list[AnalyticsError] = []

    # -- queries ----------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The exact wire messages, with ``messageId`` and ``timestamp`` (copies)."""
        return copy.deepcopy(self._transport.messages)

    @property
    def events(self) -> list[CapturedEvent]:
        """Every captured event (tracks and identifies) in emission order."""
        return [CapturedEvent._from(m, i) for i, m in enumerate(self._transport.messages)]

    @property
    def tracks(self) -> list[CapturedEvent]:
        """The captured tracks."""
        return [e for e in self.events if e.type == "track"]

    @property
    def identifies(self) -> list[CapturedEvent]:
        """The captured identifies."""
        return [e for e in self.events if e.type == "identify"]

    def of(self, event_or_track: EventOrTrack | type[Identify]) -> list[CapturedEvent]:
        """The tracks of one event (a Track class, an EventName member or the event's name); an
        Identify class gives the identifies."""
        if isinstance(event_or_track, type) and issubclass(event_or_track, Identify):
            return self.identifies
        name = _event_name(event_or_track)
        return [e for e in self.tracks if e.event == name]

    def as_dicts(self, *, with_ids: bool = False) -> list[dict[str, Any]]:
        """Every event as a plain dict with keys sorted at every level: stable, for snapshots.

        ``with_ids=True`` keeps ``messageId`` and ``timestamp``.
        """
        return [
            _sorted(m if with_ids else {k: v for k, v in m.items() if k not in _IDS}) for m in self._transport.messages
        ]

    def clear(self) -> None:
        """Forget the events captured so far (``.errors`` is kept; clear it with ``.errors.clear()``)."""
        self._transport.clear()

    def __len__(self) -> int:
        return len(self._transport.messages)

    def __iter__(self) -> Iterator[CapturedEvent]:
        return iter(self.events)

    def __getitem__(self, index: int) -> CapturedEvent:
        return self.events[index]

    def __repr__(self) -> str:
        return f"<CapturedEvents {_summary(self.events)}>"

    # -- assertions ---------------------------------------------------------------------------------

    def assert_tracked(
        self,
        event_or_track: EventOrTrack,
        count: int | None = None,
        exact: bool = False,
        *,
        props: Mapping[str, Any] | None = None,
        **expected: Any,
    ) -> list[CapturedEvent]:
        """Assert ``event_or_track`` was tracked with ``expected`` fields; return the matching tracks.

        Fields are properties by their declared name (or wire key) and scope fields by name, whatever
        wire key they are sent under; ``user_id`` is compared with the message's userId. Expected values
        are encoded like the real ones (a UUID matches its text); ``ANY``, predicates and objects with
        their own ``__eq__`` (dirty-equals) match as they say. ``count`` demands exactly that many
        matches; ``exact=True`` demands no property beyond the expected ones (scope fields included).
        ``props`` gives fields whose names clash with the arguments (``props={"count": 3}``).
        """
        __tracebackhide__ = True
        name = _event_name(event_or_track)
        fields = self._expected_fields(event_or_track, {**(props or {}), **expected})
        tracks = self.tracks
        matches = [e for e in tracks if e.event == name and _all_match(e, fields, exact)]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        what = f"{count} track(s) of {name!r}" if count is not None else f"a track of {name!r}"
        head = f"expected {what}{_with(fields, exact)}"
        if matches:  # a count was given and not met
            head += f"; {len(matches)} match:\n" + "\n".join(f"  [{m.index}] {_one_line(m)}" for m in matches)
            others = [e for e in tracks if all(e.index != m.index for m in matches)]
            if count is not None and len(matches) < count and others:
                head += "\n" + self._closest(others, name, fields, exact)
            raise AnalyticsAssertionError(head)
        same = sum(e.event == name for e in tracks)
        head += (
            f"; {same} track(s) of {name!r} captured, none matches.\n"
            if same
            else f"; no track of {name!r} was captured.\n"
        )
        raise AnalyticsAssertionError(head + self._closest(tracks, name, fields, exact))

    def assert_not_tracked(
        self, event_or_track: EventOrTrack, *, props: Mapping[str, Any] | None = None, **expected: Any
    ) -> None:
        """Assert no track of ``event_or_track`` matches ``expected`` (any track of it, when none given)."""
        __tracebackhide__ = True
        name = _event_name(event_or_track)
        fields = self._expected_fields(event_or_track, {**(props or {}), **expected})
        tracks = self.tracks
        found = [e for e in tracks if e.event == name and _all_match(e, fields, False)]
        if found:
            raise AnalyticsAssertionError(
                f"expected no track of {name!r}{_with(fields, False)}; {len(found)} captured:\n"
                + "\n".join(f"  [{e.index}] {_one_line(e)}" for e in found)
            )

    def assert_identified(
        self,
        identify: type[Identify] | None = None,
        *,
        user_id: Any = ANY,
        count: int | None = None,
        exact: bool = False,
        props: Mapping[str, Any] | None = None,
        **traits: Any,
    ) -> list[CapturedEvent]:
        """Assert an identify was sent for ``user_id`` with ``traits`` (partial unless ``exact``).

        Give the Identify class to match traits by their declared name when ``field(key=...)`` renames
        them. Returns the matching identifies.
        """
        __tracebackhide__ = True
        fields = [_Expected("user_id", None, user_id)] if not isinstance(user_id, _AnyType) else []
        fields += self._expected_fields(identify, {**(props or {}), **traits}, identify=True)
        identifies = self.identifies
        matches = [e for e in identifies if _all_match(e, fields, exact)]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        what = f"{count} identify call(s)" if count is not None else "an identify"
        head = f"expected {what}{_with(fields, exact)}"
        if matches:  # a count was given and not met
            raise AnalyticsAssertionError(
                f"{head}; {len(matches)} match:\n" + "\n".join(f"  [{m.index}] {_one_line(m)}" for m in matches)
            )
        head += (
            f"; {len(identifies)} identify call(s) captured, none matches.\n"
            if identifies
            else "; no identify was captured.\n"
        )
        raise AnalyticsAssertionError(head + self._closest(identifies, None, fields, exact))

    def assert_sequence(self, expected: Sequence[SequenceItem]) -> list[CapturedEvent]:
        """Assert these events were emitted in this order (others may come between); return them.

        Items are Track classes, EventName members, event names, Identify classes (any identify), or
        ``(event, {fields})`` pairs matched like ``assert_tracked``.
        """
        __tracebackhide__ = True
        steps: list[tuple[str | None, list[_Expected], str]] = []
        for item in expected:
            target: Any = item
            wanted: Mapping[str, Any] = {}
            if isinstance(item, tuple):
                target, wanted = item
            if isinstance(target, type) and issubclass(target, Identify):
                fields = self._expected_fields(target, wanted, identify=True)
                steps.append((None, fields, f"identify{_with(fields, False)}"))
            else:
                event_name = _event_name(target)
                fields = self._expected_fields(target, wanted)
                steps.append((event_name, fields, f"{event_name!r}{_with(fields, False)}"))
        events = self.events
        found: list[CapturedEvent] = []
        position = 0
        for step_index, (step_event, step_fields, _) in enumerate(steps):
            for index in range(position, len(events)):
                event = events[index]
                kind_ok = event.type == "identify" if step_event is None else event.event == step_event
                if kind_ok and _all_match(event, step_fields, False):
                    found.append(event)
                    position = index + 1
                    break
            else:
                lines = [
                    f"expected this sequence of events (others may come between); step {step_index + 1} is missing:"
                ]
                for i, (_, _, step_text) in enumerate(steps):
                    mark = "ok  " if i < step_index else ("MISS" if i == step_index else "    ")
                    lines.append(f"  {mark} {i + 1}. {step_text}")
                after = f" after event [{position - 1}]" if position else ""
                lines.append(f"step {step_index + 1} was looked for{after}. Captured ({len(events)}):")
                lines += [f"  [{e.index}] {_one_line(e)}" for e in events] or ["  (nothing)"]
                candidates = [e for e in events[position:] if (e.type == "identify") == (step_event is None)]
                if candidates and step_fields:
                    lines.append(self._closest(candidates, step_event, step_fields, False))
                raise AnalyticsAssertionError("\n".join(lines))
        return found

    def assert_nothing_tracked(self) -> None:
        """Assert nothing at all was emitted (no track, no identify)."""
        __tracebackhide__ = True
        events = self.events
        if events:
            raise AnalyticsAssertionError(
                f"expected no analytics events; {len(events)} captured:\n"
                + "\n".join(f"  [{i}] {_one_line(e)}" for i, e in enumerate(events))
            )

    # -- helpers ------------------------------------------------------------------------------------

    def _expected_fields(self, target: Any, expected: Mapping[str, Any], *, identify: bool = False) -> list[_Expected]:
        declared: dict[str, str] = {}
        if isinstance(target, type) and issubclass(target, (Track, Identify)):
            declared = {p.name: p.key for p in spec_of(target).properties}
        wire_keys = self._options.wire_keys
        known = _scopes.known_fields()
        fields: list[_Expected] = []
        for name, value in expected.items():
            if name in (_scopes.USER_ID, "userId"):
                fields.append(_Expected(name, None, value))
            elif name in declared:
                fields.append(_Expected(name, declared[name], value))
            elif name in known and not identify:
                key = wire_keys.get(name) or scope_wire_key(target, name)
                fields.append(_Expected(name, key, value))
            else:
                fields.append(_Expected(name, name, value))
        return fields

    def _closest(
        self, candidates: Sequence[CapturedEvent], name: str | None, fields: list[_Expected], exact: bool
    ) -> str:
        if not candidates:
            return f"Nothing of that kind was captured. Captured: {_summary(self.events)}."
        everything = list(candidates)

        def rank(event: CapturedEvent) -> tuple[int, int, int]:
            same = name is None or event.event == name
            return (-int(same), -sum(f.matches(event) for f in fields), event.index)

        ranked = sorted(everything, key=rank)[:_CLOSEST]
        lines = [f"Closest captured ({len(ranked)} of {len(everything)}, best first):"]
        for event in ranked:
            lines.append(_diff(event, name, fields, exact))
        if len(everything) > len(ranked):
            lines.append(f"All captured: {_summary(everything)}")
        return "\n".join(lines)


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
    if event.type == "identify":
        return f"identify userId={event.user_id!r} traits={_fmt(event.traits)}"
    return f"track {event.event!r} userId={event.user_id!r} properties={_fmt(event.properties)}"


def _summary(events: Sequence[CapturedEvent]) -> str:
    if not events:
        return "nothing"
    counts: dict[str, int] = {}
    for e in events:
        label = repr(e.event) if e.type == "track" else "identify"
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
        body = "traits" if event.type == "identify" else "properties"
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


# -- capture ----------------------------------------------------------------------------------------


class _Capture:
    """One ``capture_events()``: a context manager, and a decorator giving each call its own capture."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.active = False
        self._lock = threading.Lock()
        self._events: CapturedEvents | None = None
        self._client: _client.Client | None = None
        self._previous: _client.Client | None = None
        self._previous_strict = False
        self._scope: dict[str, object] = {}
        self._scope_token: Any = None
        self._intruders: list[_client.Client] = []
        self._previous_interceptor: Callable[[_client.Client], None] | None = None

    # -- context manager ----------------------------------------------------------------------------

    def __enter__(self) -> CapturedEvents:
        with self._lock:
            if self.active:
                raise RuntimeError("this capture_events() is already active; make a new one to nest captures")
            self.active = True
        previous = _client.get_client()
        transport = MemoryTransport()
        events = CapturedEvents(transport, previous.options)
        client = _client.Client(
            transport, strict=self.strict, on_error=events.errors.append, options=previous.options, sync=True
        )
        self._events, self._client = events, client
        self._intruders = []
        self._previous_strict = mode.strict
        self._scope = _scopes.get_bound()
        self._scope_token = _scopes._SCOPE.set(self._scope)
        self._previous = _client.swap_client(client)
        self._previous_interceptor, _client._interceptor = _client._interceptor, self.adopt
        return events

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        __tracebackhide__ = True
        previous, client, events = self._previous, self._client, self._events
        if previous is None or client is None or events is None:  # pragma: no cover - misuse
            raise RuntimeError("capture_events(): __exit__ without __enter__")
        try:
            _client._interceptor = self._previous_interceptor
            _client.swap_client(previous)
            mode.strict = self._previous_strict
            try:
                _scopes._SCOPE.reset(self._scope_token)
            except ValueError:  # left in another context than entered: restore the value instead
                _scopes._SCOPE.set(self._scope)
            for intruder in self._intruders:
                intruder.shutdown(0)
        finally:
            self.active = False
            self._previous = self._client = None
            self._scope_token = None
        client.shutdown(0)
        if exc_type is None and self.strict:
            violations = [e for e in events.errors if not isinstance(e, _RUNTIME_ERRORS)]
            if violations:
                raise AnalyticsAssertionError(
                    f"{len(violations)} analytics violation(s) were reported (not raised) while capturing in strict "
                    "mode, e.g. by @tracks(on_error=...) while the business exception propagated:\n"
                    + "\n".join(f"  {type(e).__name__}: {e}" for e in violations)
                    + "\nFix them, capture with strict=False (the analytics_lenient marker under pytest), or "
                    "clear .errors after asserting on them."
                )

    def adopt(self, intruder: _client.Client) -> None:
        """``configure()`` was called while capturing: keep capturing, with its encoding options."""
        self._intruders.append(intruder)
        client, events = self._client, self._events
        if client is not None and events is not None:
            client.options = intruder.options
            events._options = intruder.options

    # -- decorator ----------------------------------------------------------------------------------

    def __call__(self, func: Callable[..., R]) -> Callable[..., R]:
        strict = self.strict
        signature = _without_last_positional(func)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Capture(strict) as events:
                    return await func(*args, events, **kwargs)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Capture(strict) as events:
                    return func(*args, events, **kwargs)

            wrapper = sync_wrapper
        if signature is not None:
            # pytest resolves fixtures from the signature: hide the parameter the capture fills.
            wrapper.__signature__ = signature
        result: Callable[..., R] = wrapper
        return result


def _without_last_positional(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    positional = [i for i, p in enumerate(params) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        return None
    del params[positional[-1]]
    return signature.replace(parameters=params)


@overload
def capture_events(*, strict: bool = True) -> _Capture: ...


@overload
def capture_events(func: Callable[..., R], /, *, strict: bool = True) -> Callable[..., R]: ...


def capture_events(func: Callable[..., R] | None = None, /, *, strict: bool = True) -> _Capture | Callable[..., R]:
    """Capture every event emitted while active, in memory (nothing leaves the process), strict by default.

    As a context manager it yields a ``CapturedEvents``; as a decorator (``@capture_events`` or
    ``@capture_events(strict=False)``, on sync or async functions) each call runs in its own capture,
    passed as the last positional argument. Events from every thread and asyncio task are captured.
    The current client's encoding options (wire keys, redaction) apply, so captures are what would be
    sent. ``strict`` makes violations (missing scope field, bad property, encoding error) raise where
    they happen; with ``strict=False`` they are dropped and listed in ``.errors``. On exit the previous
    client, strict mode and bound scope are restored, also on exceptions; a ``configure()`` made while
    capturing is undone. In strict mode, leaving the block raises AnalyticsAssertionError if
    violations were reported instead of raised (by ``@tracks(on_error=...)``) and not cleared.
    """
    capture = _Capture(strict)
    if func is not None:
        return capture(func)
    return capture
