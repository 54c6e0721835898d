"""``Destination``: where one copy of every event goes, on which wire, for which events and consents.

A destination is declared once (``configure(destinations=[...])``): its wire (how a message built once
becomes that vendor's JSON), its endpoint and key, its routing (``events``, ``identifies``), its
per-destination event ``renames``, the consent categories it needs (``consent``) and what it does with
personal properties (``personal``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from instrument._consent import categories, granted_in
from instrument._errors import ConfigurationError
from instrument._events import EventName
from instrument._personal import is_personal
from instrument._records import Identify, Track, _spec
from instrument._settings import Settings
from instrument.transports._base import Message, Spool, Transport
from instrument.transports._wire import WireTransport

PERSONAL_POLICIES = ("hash", "omit", "keep")

#: What a routing entry may be: an event name, a catalog (``EventName`` class), or a Track class or
#: scope base (that class and its subclasses).
Route = str | type


class Destination:
    """One destination: a wire, an endpoint and key, routing, renames, consent and personal policy.

    ``name`` identifies it in stats, errors and ``assert_tracked(destination=...)`` (default: the wire's
    name). ``events``: None (every event) or the event names, catalogs, Track classes or scope bases it
    takes; ``scopes``: None or the scope names (``"project"``) whose tracks it takes (an event goes
    when either says so); ``identifies``: whether identifies go. ``renames``: event name -> the name this vendor gets.
    ``consent``: the categories a user must have granted for an event to go here (none: every event).
    ``personal``: "hash" (SHA-256 of the text), "omit" or "keep" for properties marked ``Personal``.
    Raises ConfigurationError for a bad argument (never showing the key).
    """

    #: The wire's name (one encoding per wire and transformation, shared by destinations that agree).
    wire: ClassVar[str] = ""
    #: The name when none is given (None: the wire's).
    default_name: ClassVar[str | None] = None
    #: Where batches go when ``host`` is None (None: a host is required).
    default_host: ClassVar[str | None] = None
    #: The message types this wire maps (None: every type, as the Segment wire carries them all); a
    #: page, screen, group or alias goes only where its type is mapped.
    calls: ClassVar[frozenset[str] | None] = frozenset({"track", "identify"})
    #: Mapping of Segment message fields to this wire's fields (declared, shown, tested).
    mapping: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        key: str,
        *,
        host: str | None = None,
        name: str | None = None,
        events: Iterable[Route] | None = None,
        scopes: Iterable[str] | None = None,
        identifies: bool = True,
        renames: Mapping[str, str] | None = None,
        consent: Iterable[str] | str = (),
        personal: str = "hash",
    ) -> None:
        where = type(self).__name__
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"{where}: key must be a non-empty str")
        self.key = key
        self.name = name if name is not None else (self.default_name or self.wire)
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigurationError(f"{where}: name must be an identifier-like str")
        host = host if host is not None else self.default_host
        if host is None:
            raise ConfigurationError(f"{where}: host is required (this vendor has no default endpoint)")
        self.host = host
        Settings(host=host)  # the same URL checks as configure(host=...)
        self.events = None if events is None else _routes(events, where)
        self.scopes = None if scopes is None else categories(scopes, f"{where}.scopes")
        if not isinstance(identifies, bool):
            raise ConfigurationError(f"{where}: identifies must be True or False")
        self.identifies = identifies
        self.renames = _renames(renames or {}, where)
        self.consent = categories(consent, f"{where}.consent")
        if personal not in PERSONAL_POLICIES:
            raise ConfigurationError(f"{where}: personal must be 'hash', 'omit' or 'keep'")
        self.personal = personal
        self._routed: dict[type, bool] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, host={self.host!r}, key='***')"

    # -- routing and transformation (on the fan-out worker) ----------------------------------------

    def routes(self, cls: type) -> bool:
        """True when events of the record class ``cls`` go to this destination (cached per class)."""
        found = self._routed.get(cls)
        if found is None:
            found = self._routed[cls] = self._decide(cls)
        return found

    def _decide(self, cls: type) -> bool:
        if issubclass(cls, Identify):
            return self.identifies
        if self.events is None and self.scopes is None:
            return True
        if self.scopes is not None and getattr(cls, "_scope_name", None) in self.scopes:
            return True
        names, classes = self.events if self.events is not None else (frozenset(), ())
        event = getattr(cls, "_event", None)
        event = getattr(event, "value", event)  # a catalog member: its name on the wire
        return (event is not None and str(event) in names) or any(issubclass(cls, c) for c in classes)

    def accepts(self, cls: type, message: Message) -> bool:
        """True when an event of record class ``cls`` with this ``message`` goes here (its type, routing
        and consent)."""
        if self.calls is not None and message.get("type") not in self.calls:
            return False
        return (cls is dict or self.routes(cls)) and self.consent <= granted_in(message)

    def view(self, cls: type, message: Message) -> Message:
        """The message as this destination gets it before its wire's encoding (renamed, personal
        properties hashed or omitted): what ``assert_tracked(..., destination=...)`` compares."""
        return self.transform(message, personal_keys(cls) if cls is not dict else frozenset())

    @property
    def encoding(self) -> tuple[Any, ...]:
        """What makes this destination's bytes: equal for destinations that can share one encoding."""
        return (self.wire, tuple(sorted(self.renames.items())), self.personal)

    def transform(self, message: Message, personal: frozenset[str]) -> Message:
        """``message`` as this destination gets it: renamed, personal properties hashed or omitted.

        The message built once is never changed: what differs is a shallow copy.
        """
        event = message.get("event")
        if event is not None and event in self.renames:
            message = {**message, "event": self.renames[event]}
        if personal and self.personal != "keep":
            body_key = "properties" if message.get("type") == "track" else "traits"
            body = dict(message.get(body_key) or {})
            for key in personal & body.keys():
                if self.personal == "omit":
                    del body[key]
                else:
                    body[key] = hashed(body[key])
            message = {**message, body_key: body}
        return message

    def encode(self, message: Message, ts: float) -> Message:
        """The vendor's JSON object for one message (``ts``: the event's time, epoch seconds)."""
        return message

    def users_in(self, item: Message) -> tuple[object, ...]:
        """The user and anonymous ids an encoded item of this wire carries (``forget`` reads them)."""
        return (item.get("userId"), item.get("anonymousId"))

    def transport(self, settings: Settings, spool: Spool | None = None) -> Transport:
        """The transport that sends this destination's batches (each destination has its own)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """This destination's declaration as plain data (``describe_destinations()``, the plan export)."""
        names, classes = self.events if self.events is not None else (None, ())
        return {
            "name": self.name,
            "wire": self.wire,
            "events": None if names is None else sorted(names) + sorted(c.__qualname__ for c in classes),
            "scopes": None if self.scopes is None else sorted(self.scopes),
            "identifies": self.identifies,
            "renames": dict(self.renames),
            "consent": sorted(self.consent),
            "personal": self.personal,
            "mapping": dict(self.mapping),
        }


def personal_keys(cls: type) -> frozenset[str]:
    """The wire keys of ``cls``'s properties marked ``Personal``."""
    found: frozenset[str] | None = cls.__dict__.get("__instrument_personal__")
    if found is None:
        try:
            found = frozenset(p.key for p in _spec(cls).properties if is_personal(p.annotation))
        except Exception:  # not a record class: nothing is marked
            found = frozenset()
        type.__setattr__(cls, "__instrument_personal__", found)
    return found


def hashed(value: Any) -> str:
    """SHA-256 (hex) of a value's text: what a destination with ``personal="hash"`` gets."""
    text = value if isinstance(value, str) else str(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _routes(events: Iterable[Route], where: str) -> tuple[frozenset[str], tuple[type, ...]]:
    if isinstance(events, (str, type)):  # one entry (a catalog is taken whole below)
        events = (events,)
    names: set[str] = set()
    classes: list[type] = []
    for entry in events:
        if isinstance(entry, type) and issubclass(entry, EventName):
            names.update(str(member.value) for member in entry)
        elif isinstance(entry, type) and issubclass(entry, Track):
            classes.append(entry)
        elif isinstance(entry, str) and entry:
            names.add(str(entry))
        else:
            raise ConfigurationError(
                f"{where}: events takes event names, EventName catalogs and Track classes, got {type(entry).__name__}"
            )
    return frozenset(names), tuple(classes)


def _renames(renames: Mapping[str, str], where: str) -> dict[str, str]:
    if not isinstance(renames, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in renames.items()
    ):
        raise ConfigurationError(f"{where}: renames must map event names to non-empty str names")
    return {str(k): str(v) for k, v in renames.items()}


def millis(ts: float) -> int:
    """Epoch milliseconds of ``ts`` as the message's ``timestamp`` text holds them."""
    return round(ts * 1e6) // 1000


def user_of(message: Message) -> str:
    """The id a vendor keys the event by: the user id, else the anonymous id."""
    return str(message.get("userId") or message.get("anonymousId") or "")


def key_in_body(
    destination: Destination, settings: Settings, spool: Spool | None, api_path: str, head: bytes
) -> Transport:
    """The transport of a vendor API that takes the key in the JSON body: POSTs to ``api_path`` the
    document ``{"api_key": key`` + ``head`` (the fields before the items' array, its ``[`` included) +
    the items + ``]}``."""

    def envelope(joined: bytes, key: bytes) -> bytes:
        return b'{"api_key":' + key + head + joined + b"]}"

    return WireTransport(
        destination.key, settings.replace(host=destination.host), api_path=api_path, envelope=envelope, spool=spool
    )
