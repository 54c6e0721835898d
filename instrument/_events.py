"""Event catalogs: ``EventName``, a str enum whose values are checked when the class is defined."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any

from instrument._errors import EventNameError
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
        if wire_keys:
            check_wire_keys(wire_keys, cls_name)
        cls = super().__new__(mcls, cls_name, bases, classdict, **kwds)
        # type.__setattr__: Enum classes refuse setting attributes that look like members.
        type.__setattr__(cls, "__wire_keys__", dict(wire_keys or {}))
        legacy_names = frozenset(legacy)
        seen: dict[str, str] = {}
        # _member_names_ excludes aliases; the members mapping shows them, so a value given twice
        # (an alias, which Enum would accept silently) is found here.
        members: dict[str, Any] = dict(cls.__members__)
        for member_name, member in members.items():
            value: str = member._value_
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
        return cls


class EventName(str, enum.Enum, metaclass=_EventNameMeta):
    """Base of an app's event catalog: ``class Events(EventName): CLUSTER_DELETED = "Cluster Deleted"``.

    Values are checked when the class is defined: each must be two or more Title Case words
    ("[Noun] [Verb] [Subverb]") and appear once. Existing names that break the rule are kept with
    ``class Events(EventName, legacy={"New Project Event"})``. Raises EventNameError.

    ``wire_keys={"project_id": "proj_id"}`` renames scope fields on the wire for every track of this
    catalog, in every client, capture and console: the wire format is declared once, here. Raises
    ConfigurationError for an unknown field, user_id, or a key another scope field is sent under.
    """

    __wire_keys__: Mapping[str, str]

    def __str__(self) -> str:
        return str(self._value_)

    def __format__(self, format_spec: str) -> str:
        return str(self._value_).__format__(format_spec)
