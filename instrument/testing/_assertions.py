"""``CapturedEvents``: what a capture holds, its queries, and the ``assert_*`` methods."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Union, overload

from instrument import _scopes
from instrument._calls import Group, Page, Screen
from instrument._errors import AnalyticsError
from instrument._messages import EncodeOptions
from instrument._records import Identify, _Record, scope_wire_key, spec_of
from instrument.destinations import Destination
from instrument.testing._event import _IDS, CapturedEvent, Message
from instrument.testing._matching import (
    ANY,
    AnalyticsAssertionError,
    EventOrTrack,
    _all_match,
    _AnyType,
    _diff,
    _event_name,
    _Expected,
    _one_line,
    _sorted,
    _summary,
    _unknown_field,
    _with,
)
from instrument.transports import MemoryTransport

SequenceItem = Union[EventOrTrack, type[Identify], tuple[Any, Mapping[str, Any]]]  # noqa: UP007

_CLOSEST = 3  # how many near misses a failure message shows
# The message's own keys an assertion of a call matches (not in its body).
_TOPS = {
    "user_id": "userId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "name": "name",
    "category": "category",
}


class _OfType:
    """A read-only attribute of ``CapturedEvents``: the captured events of one message type."""

    def __init__(self, kind: str, doc: str) -> None:
        self._kind = kind
        self.__doc__ = doc

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _OfType: ...
    @overload
    def __get__(self, instance: CapturedEvents, owner: type[Any]) -> list[CapturedEvent]: ...
    def __get__(self, instance: CapturedEvents | None, owner: type[Any]) -> _OfType | list[CapturedEvent]:
        if instance is None:
            return self
        return [e for e in instance.events if e.type == self._kind]


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
        #: The destinations configured (before or while capturing), by name: ``destination=`` looks here.
        self.destinations: dict[str, Destination] = {}

    def _tracks_at(self, destination: str | None) -> list[CapturedEvent]:
        """The captured tracks, or those ``destination`` gets, as it gets them (routing, consent,
        renames, personal properties hashed or omitted)."""
        if destination is None:
            return self.tracks
        found = self.destinations.get(destination)
        if found is None:
            known = ", ".join(sorted(self.destinations)) or "none configured"
            raise AnalyticsAssertionError(f"no destination named {destination!r} (destinations: {known})")
        pairs = zip(self._transport.messages, self._transport.record_classes, strict=False)
        return [
            CapturedEvent._from(found.view(cls, m), i)
            for i, (m, cls) in enumerate(pairs)
            if m.get("type") == "track" and found.accepts(cls, m)
        ]

    # -- queries ----------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The exact wire messages, with ``messageId`` and ``timestamp`` (copies)."""
        return copy.deepcopy(self._transport.messages)

    @property
    def events(self) -> list[CapturedEvent]:
        """Every captured event (tracks and identifies) in emission order."""
        return [CapturedEvent._from(m, i) for i, m in enumerate(self._transport.messages)]

    tracks = _OfType("track", "The captured tracks.")
    identifies = _OfType("identify", "The captured identifies.")
    groups = _OfType("group", "The captured group calls.")
    pages = _OfType("page", "The captured page calls.")
    screens = _OfType("screen", "The captured screen calls.")
    aliases = _OfType("alias", "The captured alias calls.")

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
        destination: str | None = None,
        **expected: Any,
    ) -> list[CapturedEvent]:
        """Assert ``event_or_track`` was tracked with ``expected`` fields; return the matching tracks.

        ``destination`` (a configured destination's name): only the tracks that destination gets,
        compared as it gets them (its renames, personal properties hashed or omitted).

        Fields are properties by their declared name (or wire key) and scope fields by name, whatever
        wire key they are sent under; ``user_id`` is compared with the message's userId. Expected values
        are encoded like the real ones (a UUID matches its text); ``ANY``, predicates and objects with
        their own ``__eq__`` (dirty-equals) match as they say. ``count`` demands exactly that many
        matches; ``exact=True`` demands no property beyond the expected ones (scope fields included).
        ``props`` gives fields whose names clash with the arguments (``props={"count": 3}``).
        """
        __tracebackhide__ = True
        name = _event_name(event_or_track)
        wanted = {**(props or {}), **expected}
        fields = self._expected_fields(event_or_track, wanted)
        unknown = self._unknown_fields(event_or_track, wanted)
        tracks = self._tracks_at(destination)
        if destination is not None:
            name = self.destinations[destination].renames.get(name, name)
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
            raise AnalyticsAssertionError(_with_hint(head, unknown))
        same = sum(e.event == name for e in tracks)
        head += (
            f"; {same} track(s) of {name!r} captured, none matches.\n"
            if same
            else f"; no track of {name!r} was captured.\n"
        )
        raise AnalyticsAssertionError(_with_hint(head + self._closest(tracks, name, fields, exact), unknown))

    def assert_not_tracked(
        self, event_or_track: EventOrTrack, *, props: Mapping[str, Any] | None = None, **expected: Any
    ) -> None:
        """Assert no track of ``event_or_track`` matches ``expected`` (any track of it, when none given)."""
        __tracebackhide__ = True
        name = _event_name(event_or_track)
        wanted = {**(props or {}), **expected}
        unknown = self._unknown_fields(event_or_track, wanted)
        if unknown:  # it would pass whatever was captured: say so instead
            raise AnalyticsAssertionError(unknown)
        fields = self._expected_fields(event_or_track, wanted)
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
        return self._assert_call("identify", identify, {"user_id": user_id}, count, exact, {**(props or {}), **traits})

    def assert_grouped(
        self,
        group: type[Group] | None = None,
        *,
        group_id: Any = ANY,
        user_id: Any = ANY,
        count: int | None = None,
        exact: bool = False,
        props: Mapping[str, Any] | None = None,
        **traits: Any,
    ) -> list[CapturedEvent]:
        """Assert a group call was sent for ``group_id`` (its groupId) and ``user_id`` with ``traits``.

        Matches and fails as ``assert_identified`` (a field diff of the closest group calls, the Group
        class's field names suggested for a misspelt one). Returns the matching group calls.
        """
        __tracebackhide__ = True
        tops = {"group_id": group_id, "user_id": user_id}
        return self._assert_call("group", group, tops, count, exact, {**(props or {}), **traits})

    def assert_paged(
        self,
        page: type[Page] | None = None,
        *,
        name: Any = ANY,
        category: Any = ANY,
        user_id: Any = ANY,
        count: int | None = None,
        exact: bool = False,
        props: Mapping[str, Any] | None = None,
        **properties: Any,
    ) -> list[CapturedEvent]:
        """Assert a page call was sent with ``properties`` (scope fields by name, as for tracks).

        A Page class gives its name and category (unless given); returns the matching page calls.
        """
        __tracebackhide__ = True
        tops = self._named(page, name, category, user_id)
        return self._assert_call("page", page, tops, count, exact, {**(props or {}), **properties})

    def assert_screened(
        self,
        screen: type[Screen] | None = None,
        *,
        name: Any = ANY,
        category: Any = ANY,
        user_id: Any = ANY,
        count: int | None = None,
        exact: bool = False,
        props: Mapping[str, Any] | None = None,
        **properties: Any,
    ) -> list[CapturedEvent]:
        """Assert a screen call was sent, matched as ``assert_paged`` matches a page call."""
        __tracebackhide__ = True
        tops = self._named(screen, name, category, user_id)
        return self._assert_call("screen", screen, tops, count, exact, {**(props or {}), **properties})

    def assert_aliased(
        self, *, previous_id: Any = ANY, user_id: Any = ANY, count: int | None = None
    ) -> list[CapturedEvent]:
        """Assert an alias call tied ``previous_id`` to ``user_id``; return the matching alias calls."""
        __tracebackhide__ = True
        tops = {"previous_id": previous_id, "user_id": user_id}
        return self._assert_call("alias", None, tops, count, False, {})

    @staticmethod
    def _named(target: type[Page] | type[Screen] | None, name: Any, category: Any, user_id: Any) -> dict[str, Any]:
        if target is not None:
            spec = spec_of(target)
            name = spec.event if isinstance(name, _AnyType) and spec.event is not None else name
            category = spec.category if isinstance(category, _AnyType) and spec.category is not None else category
        return {"name": name, "category": category, "user_id": user_id}

    def _assert_call(
        self, kind: str, target: Any, tops: Mapping[str, Any], count: int | None, exact: bool, wanted: dict[str, Any]
    ) -> list[CapturedEvent]:
        """The assertion of every call but a track: ``tops`` are the message's own keys (ANY: not checked)."""
        __tracebackhide__ = True
        fields = [_Expected(n, None, v, top=_TOPS[n]) for n, v in tops.items() if not isinstance(v, _AnyType)]
        identify = kind not in ("page", "screen")  # whether the body lacks scope fields
        fields += self._expected_fields(target, wanted, identify=identify)
        unknown = self._unknown_fields(target, wanted, identify=identify)
        calls = [e for e in self.events if e.type == kind]
        matches = [e for e in calls if _all_match(e, fields, exact)]
        if (count is None and matches) or (count is not None and len(matches) == count):
            return matches
        what = f"{count} {kind} call(s)" if count is not None else f"a {kind} call"
        head = f"expected {what}{_with(fields, exact)}"
        if matches:  # a count was given and not met
            raise AnalyticsAssertionError(
                _with_hint(
                    f"{head}; {len(matches)} match:\n" + "\n".join(f"  [{m.index}] {_one_line(m)}" for m in matches),
                    unknown,
                )
            )
        head += (
            f"; {len(calls)} {kind} call(s) captured, none matches.\n"
            if calls
            else f"; no {kind}{'' if kind == 'identify' else ' call'} was captured.\n"
        )
        raise AnalyticsAssertionError(_with_hint(head + self._closest(calls, None, fields, exact), unknown))

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

    def _unknown_fields(self, target: Any, names: Iterable[str], *, identify: bool = False) -> str:
        """For a Track/Identify class: the text saying which expected names it has no field for, with the
        closest names (difflib); empty when every name is one of its fields or wire keys."""
        if not (isinstance(target, type) and issubclass(target, _Record)):
            return ""
        spec = spec_of(target)
        if spec.free_form:
            return ""
        wire_keys = self._options.wire_keys
        valid = {_scopes.USER_ID, "userId", _scopes.ANONYMOUS_ID, _scopes.ANONYMOUS_WIRE_KEY}
        for p in spec.properties:
            valid.update((p.name, p.key))
        if not identify:
            scope = spec.scope.property_fields
            valid.update(scope, (scope_wire_key(target, f, wire_keys) for f in scope))
        return "\n".join(_unknown_field(target, name, valid) for name in names if name not in valid)

    def _expected_fields(self, target: Any, expected: Mapping[str, Any], *, identify: bool = False) -> list[_Expected]:
        declared: dict[str, str] = {}
        wire_keys = self._options.wire_keys
        if isinstance(target, type) and issubclass(target, _Record):
            declared = {p.name: p.key for p in spec_of(target).properties}
        known = _scopes.known_fields()
        fields: list[_Expected] = []
        for name, value in expected.items():
            if name in (_scopes.USER_ID, "userId"):
                fields.append(_Expected(name, None, value))
            elif name in (_scopes.ANONYMOUS_ID, _scopes.ANONYMOUS_WIRE_KEY):
                fields.append(_Expected(name, None, value, top=_scopes.ANONYMOUS_WIRE_KEY))
            elif name in declared:
                fields.append(_Expected(name, declared[name], value))
            elif name in known and not identify:
                key = scope_wire_key(target, name, wire_keys)
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


def _with_hint(text: str, hint: str) -> str:
    return f"{text}\n{hint}" if hint else text
