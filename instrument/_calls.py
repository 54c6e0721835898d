"""The other Segment calls, typed: Group, Page, Screen and Alias on the Track/Identify machinery.

Each is a declared class (PEP 681) whose generated ``__init__`` checks its traits or properties and fills
its ids from the bound scope, exactly as a Track's does; ``_messages`` gives each its Segment wire form.
"""

from __future__ import annotations

from typing import Any, ClassVar

from instrument import _scopes
from instrument._errors import TrackDefinitionError
from instrument._fields import ScopeId
from instrument._records import _Record, _ScopeAttr, compile_record, register_machinery

__all__ = ["Alias", "ClusterGroup", "Group", "Page", "ProjectGroup", "RegistryGroup", "Screen"]


class _GroupIdAttr:
    """``group.group_id`` of a Group whose groupId is a scope field: that field's resolved value."""

    def __get__(self, obj: _Record | None, owner: type[_Record]) -> object:
        field = owner._group_field
        if obj is None or field is None:
            return None
        value = obj._over.get(field)
        return value if value is not None else obj._ctx.get(field)


class Group(_Record):
    """Base of typed group calls: ``class Company(Group): name: str``, sent with ``instrument.group()``.

    The fields are the group's traits. Its groupId is ``group_id=`` (required: type checkers see it), or,
    on a group base such as ``ProjectGroup``, the scope field it names (``project_id``), bound by
    analytics_scope or given. userId/anonymousId come from the bound scope as for a Track. Declaring one
    wrongly raises TrackDefinitionError when the class is defined; constructing one raises as a Track does.
    """

    _kind = "group"
    _machinery = True
    _id_inputs: ClassVar[tuple[str, ...]] = ("group_id",)

    group_id: ScopeId
    user_id: ScopeId | None = None
    anonymous_id: ScopeId | None = None

    def __init_subclass__(cls, *, group_by: str | None = None, **kw: Any) -> None:
        if group_by is None:
            if "group_id" in cls.__dict__.get("__annotations__", {}):
                raise TrackDefinitionError(
                    f"{cls.__qualname__}.group_id: a Group's group id is not a trait (give group_id=, or "
                    "derive from a group base such as ProjectGroup)",
                    track=cls.__qualname__,
                )
            super().__init_subclass__(**kw)
            return
        # A group base: its groupId is the scope field group_by; its annotations are that scope's fields.
        where = cls.__qualname__
        owner = [s for s in _scopes.scopes().values() if group_by in s.own_fields and group_by != _scopes.USER_ID]
        if not owner or kw:
            raise TrackDefinitionError(
                f"{where}: group_by= names a scope field other than user_id (known: "
                f"{sorted(_scopes.known_fields() - {_scopes.USER_ID})}) and takes no other class keyword",
                track=where,
            )
        type.__setattr__(cls, "_machinery", True)  # a base: its annotations are scope fields, not traits
        super().__init_subclass__()
        cls._group_field = group_by
        cls._scope_name = owner[0].name
        cls._id_inputs = ()
        type.__setattr__(cls, "__instrument_scope_base__", True)
        for f in owner[0].fields:
            setattr(cls, f, _ScopeAttr(f))
        type.__setattr__(cls, "group_id", _GroupIdAttr())


class ProjectGroup(Group, group_by="project_id"):
    """Base of groups that are projects: groupId is the bound (or given) ``project_id``."""

    project_id: ScopeId | None = None
    group_id: None = None  # type: ignore[assignment]  # the project is the group: give project_id


class ClusterGroup(Group, group_by="cluster_id"):
    """Base of groups that are clusters: groupId is the bound (or given) ``cluster_id``."""

    project_id: ScopeId | None = None
    cluster_id: ScopeId | None = None
    group_id: None = None  # type: ignore[assignment]  # the cluster is the group: give cluster_id


class RegistryGroup(Group, group_by="registry_id"):
    """Base of groups that are registries: groupId is the bound (or given) ``registry_id``."""

    project_id: ScopeId | None = None
    registry_id: ScopeId | None = None
    group_id: None = None  # type: ignore[assignment]  # the registry is the group: give registry_id


class _Named(_Record):
    """Page and Screen: a name and a category as class keywords, typed properties."""

    _machinery = True

    def __init_subclass__(
        cls, *, name: str | None = None, category: str | None = None, scope: str | None = None, **kw: Any
    ) -> None:
        where = cls.__qualname__
        for what, value in (("name", name), ("category", category)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise TrackDefinitionError(f"{where}: {what}= must be a non-empty str", track=where)
        if name is not None:
            cls._event = name
        if category is not None:
            cls._category = category
        super().__init_subclass__(scope=scope, **kw)

    user_id: ScopeId | None = None
    anonymous_id: ScopeId | None = None


class Page(_Named):
    """Base of typed page calls: ``class Pricing(Page, name="Pricing", category="Docs"): plan: str``.

    Sent with ``instrument.page()``: the fields are its properties, ``name``/``category`` go where Segment's
    spec puts them (top level), and ``scope=`` works as for a Track (its fields are sent as properties).
    Raises as Track does.
    """

    _kind = "page"
    _machinery = True


class Screen(_Named):
    """Base of typed screen calls (a mobile or desktop app's screen): declared and sent as a Page is."""

    _kind = "screen"
    _machinery = True


class Alias(_Record):
    """An alias call: ``instrument.alias(Alias(previous_id=anonymous_id))`` ties the previous id to the user.

    userId is the bound (or given) ``user_id`` (an anonymous id does not stand in for it); ``previous_id``
    is required. Usable as it is or subclassed for a name; an Alias has no properties (declaring one raises
    TrackDefinitionError). Constructing one raises as a Track does.
    """

    _kind = "alias"
    _machinery = True
    _id_inputs: ClassVar[tuple[str, ...]] = ("previous_id",)

    previous_id: ScopeId
    user_id: ScopeId | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        declared = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_")]
        if declared:
            raise TrackDefinitionError(
                f"{cls.__qualname__}.{declared[0]}: an Alias has no properties (Segment's alias sends ids only)",
                track=cls.__qualname__,
            )
        super().__init_subclass__(**kw)


register_machinery(Group, ProjectGroup, ClusterGroup, RegistryGroup, _Named, Page, Screen, Alias)
for _base in (Group, Page, Screen, Alias):
    for _name in ("user_id", "anonymous_id"):
        setattr(_base, _name, _ScopeAttr(_name))
for _usable in (Group, Page, Screen, Alias):  # usable as they are: Alias(previous_id=...)
    compile_record(_usable)
