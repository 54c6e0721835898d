"""Event catalogs: ``EventName``, a str enum whose values are checked when the class is defined."""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from instrument import _state
from instrument._errors import ConfigurationError, EventNameError
from instrument._scopes import check_wire_keys

# "[Noun] [Verb] [Subverb]": two or more Title Case words (acronyms such as "AWS" and "ID" allowed),
# separated by single spaces.
_WORD = r"[A-Z][A-Za-z0-9]*"
_CONVENTION = re.compile(rf"{_WORD}(?: {_WORD})+")
# Every value is an event, so a name that says so is drift (the seed's "New Project Event").
_REDUNDANT_WORDS = frozenset({"Event", "Events", "Track", "Tracked"})


def check_event_name(name: str, *, catalog: str = "<event>") -> None:
    """Raise EventNameError unless ``name`` follows the "[Noun] [Verb] [Subverb]" convention."""
    if not isinstance(name, str):
        raise EventNameError(
            f"{catalog}: event name must be a str, got {type(name).__name__} {name!r}",
            name=repr(name),
            catalog=catalog,
        )
    if not _CONVENTION.fullmatch(name):
        raise EventNameError(
            f"{catalog}: event name {name!r} breaks the '[Noun] [Verb] [Subverb]' convention: "
            "two or more Title Case words separated by single spaces, e.g. 'Cluster Provisioning "
            "Success' (declare it in legacy=... to keep an existing name)",
            name=name,
            catalog=catalog,
        )
    redundant = _REDUNDANT_WORDS.intersection(name.split(" "))
    if redundant:
        raise EventNameError(
            f"{catalog}: event name {name!r} contains {sorted(redundant)[0]!r}: every catalog value is "
            "an event, so the word adds nothing (declare it in legacy=... to keep an existing name)",
            name=name,
            catalog=catalog,
        )


# Every scope field some catalog renames: field -> (wire key, the catalog that declared it first).
_renamed: dict[str, tuple[str, str]] = {}


def _inherited_wire_keys(cls_name: str, bases: tuple[type, ...], wire_keys: Mapping[str, str] | None) -> dict[str, str]:
    """The renames of a catalog: its base catalogs' (``class Events(MyBase)``), then its own.

    A catalog may add renames to its bases' but not change one: raises ConfigurationError.
    """
    renames: dict[str, str] = {}
    for base in bases:
        renames.update(getattr(base, "__wire_keys__", None) or {})
    if wire_keys is not None and not isinstance(wire_keys, Mapping):
        raise ConfigurationError(f"{cls_name}: wire_keys must be a mapping scope field -> wire key")
    for field, key in (wire_keys or {}).items():
        if renames.get(field, key) != key:
            raise ConfigurationError(
                f"{cls_name}: wire_keys sends {field!r} as {key!r}, but its base catalog sends it as {renames[field]!r}"
            )
        renames[field] = key
    return renames


def check_agreement(renames: Mapping[str, str], where: str, *, catalog: str | None = None) -> None:
    """One process has one wire format: every rename of a field (by a catalog, or ``configure``) is the same.

    Events of one process go to one Segment source, so a field sent as ``proj_id`` by one catalog and
    ``project`` by another would split one column in two. A ``catalog``'s renames are recorded for the
    next check. Raises ConfigurationError naming both.
    """
    with _renamed_lock:
        for field, key in renames.items():
            known = _renamed.get(field)
            if known is not None and known[0] != key and known[1] != catalog:
                raise ConfigurationError(
                    f"{where}: wire_keys sends {field!r} as {key!r}, but catalog {known[1]} sends it as "
                    f"{known[0]!r}; one process sends one wire format: declare the wire keys once, on a "
                    "base catalog the others derive from (class Events(MyCatalogBase): ...)"
                )
        if catalog is None:
            return
        client_keys = getattr(getattr(_state.current.client, "settings", None), "wire_keys", None) or {}
        for field, key in renames.items():  # the installed client's (deprecated) configure(wire_keys=...)
            if client_keys.get(field, key) != key:
                raise ConfigurationError(
                    f"{where}: wire_keys sends {field!r} as {key!r}, but configure(wire_keys=...) sends it as "
                    f"{client_keys[field]!r}; one process sends one wire format: declare it on the catalog only"
                )
        for field, key in renames.items():
            known = _renamed.get(field)
            if known is None or known[1] == catalog:
                _renamed[field] = (key, catalog)


_renamed_lock = threading.Lock()


def _legacy_names(cls_name: str, legacy: object) -> frozenset[str]:
    """``legacy=`` as a set of names. Raises EventNameError for a bare str or anything but str names."""
    if isinstance(legacy, (str, bytes)):
        raise EventNameError(
            f"{cls_name}: legacy= must be a set of event names, not a bare str (write legacy={{{legacy!r}}})",
            name=repr(legacy),
            catalog=cls_name,
        )
    try:
        items: list[object] = list(legacy)  # type: ignore[call-overload]
    except TypeError:
        items = [legacy]  # not iterable: refused below
    bad = next((n for n in items if not isinstance(n, str)), None)
    if bad is not None:
        raise EventNameError(
            f"{cls_name}: legacy= must be a set of event names (str), got {type(bad).__name__}",
            name=repr(bad),
            catalog=cls_name,
        )
    return frozenset(str(n) for n in items)


class _LegacyName(str):
    """A catalog value marked with ``legacy(...)``: kept although it breaks the naming convention."""

    __slots__ = ()


def legacy(name: str) -> str:
    """Mark a catalog value as a name that already ships: ``NEW_PROJECT = legacy("New Project Event")``.

    The value is kept as is and not checked against the naming convention (like ``legacy={...}``).
    Raises EventNameError for anything but a str.
    """
    if not isinstance(name, str):
        raise EventNameError(
            f"legacy() takes an event name (str), got {type(name).__name__}", name="", catalog="<legacy>"
        )
    return _LegacyName(name)


class _EventNameMeta(enum.EnumMeta):
    def __new__(
        mcls,
        cls_name: str,
        bases: tuple[type, ...],
        classdict: Any,
        *,
        legacy: Iterable[str] = (),
        wire_keys: Mapping[str, str] | None = None,
        **kwds: Any,
    ) -> _EventNameMeta:
        renames = _inherited_wire_keys(cls_name, bases, wire_keys)
        if renames:
            check_wire_keys(renames, cls_name)
        marked = {
            str(v) for n in list(getattr(classdict, "_member_names", ())) if isinstance(v := classdict[n], _LegacyName)
        }
        cls = super().__new__(mcls, cls_name, bases, classdict, **kwds)
        # type.__setattr__: Enum classes refuse setting attributes that look like members.
        type.__setattr__(cls, "__wire_keys__", renames)
        legacy_names = _legacy_names(cls_name, legacy) | marked
        seen: dict[str, str] = {}
        # _member_names_ excludes aliases; the members mapping shows them, so a value given twice
        # (an alias, which Enum would accept silently) is found here.
        members: dict[str, Any] = dict(cls.__members__)
        for member_name, member in members.items():
            value: str = member._value_
            if type(value) is not str:  # a legacy(...) marker: the plain name is the value
                value = member._value_ = str(value)
            if value in seen:
                raise EventNameError(
                    f"{cls_name}: event name {value!r} is used twice ({seen[value]} and {member_name})",
                    name=value,
                    catalog=cls_name,
                )
            seen[value] = member_name
            if value not in legacy_names:
                check_event_name(value, catalog=f"{cls_name}.{member_name}")
        unused = legacy_names - seen.keys()
        if unused:
            raise EventNameError(
                f"{cls_name}: legacy= names {sorted(unused)} are not values of the catalog",
                name=sorted(unused)[0],
                catalog=cls_name,
            )
        if renames:  # last: a catalog refused above never claims its renames
            name = f"{cls.__module__}.{cls.__qualname__}"
            check_agreement(renames, name, catalog=name)
        return cls


class EventName(str, enum.Enum, metaclass=_EventNameMeta):
    """Base of an app's event catalog: ``class Events(EventName): CLUSTER_DELETED = "Cluster Deleted"``.

    Values are checked when the class is defined: each must be two or more Title Case words
    (``"[Noun] [Verb] [Subverb]"``) and appear once. Existing names that break the rule are kept with
    ``class Events(EventName, legacy={"New Project Event"})``. Raises EventNameError.

    ``wire_keys={"project_id": "proj_id"}`` renames scope fields on the wire for every track of this
    catalog, in every client, capture and console: the wire format is declared once, here. A catalog
    derived from another (``class Events(MyCatalogBase)``, the base without members) keeps its base's
    wire keys: declare them once on a base when an app has several catalogs. A catalog that declares
    none sends the scope's own keys. Raises ConfigurationError for an unknown field, user_id, a key
    another scope field is sent under, a rename that changes a base's, or one that disagrees with
    another catalog's rename of the same field (one process sends one wire format).
    """

    __wire_keys__: Mapping[str, str]

    def __str__(self) -> str:
        return str(self._value_)

    def __format__(self, format_spec: str) -> str:
        return str(self._value_).__format__(format_spec)
