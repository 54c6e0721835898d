"""Generated code reads like written code: linecache source, real names, honest signatures, safe names."""

from __future__ import annotations

import inspect
import linecache
import traceback
from typing import Any

import pytest

import instrument
from instrument import MemoryTransport, PropertyError, Track, analytics_scope, field, to_message, tracks
from instrument._codegen import make_function


class Provisioned(Track, event="Thing Provisioned", scope="project"):
    """A thing was provisioned."""

    kind: str
    size: int = 1
    tags: list[str] = field(default_factory=list)


def test_the_generated_init_has_real_names_and_source() -> None:
    init = Provisioned.__init__
    assert init.__qualname__ == "Provisioned.__init__"
    assert init.__module__ == __name__
    assert init.__doc__ is not None
    filename = init.__code__.co_filename
    assert filename == f"<instrument generated __init__ of {__name__}.Provisioned>"
    source = inspect.getsource(init)
    assert source.startswith("def __init__(_self, *, kind=_M, size=_d1, tags=_M, **_over):")
    assert "".join(linecache.getlines(filename)) == source
    assert "True" not in source  # no dead branch


def test_the_signature_shows_required_fields_as_required() -> None:
    signature = inspect.signature(Provisioned)
    params = signature.parameters
    assert params["kind"].default is inspect.Parameter.empty
    assert params["kind"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["size"].default == 1
    assert repr(params["tags"].default) == "<factory>"
    assert list(params) == ["kind", "size", "tags", "user_id", "project_id"]
    assert params["project_id"].default is None
    assert "_M" not in str(signature)


def test_a_traceback_through_the_generated_init_shows_the_generated_line() -> None:
    class Exploding:
        @property
        def __class__(self) -> type:  # type: ignore[override]
            raise KeyboardInterrupt  # not an Exception: it passes through the generated try

    with analytics_scope(user_id=1, project_id=2), pytest.raises(KeyboardInterrupt) as info:
        Provisioned(kind=Exploding())  # type: ignore[arg-type]
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<instrument generated __init__")]
    assert generated
    assert generated[-1].line is not None
    assert "kind.__class__ is _c0" in generated[-1].line


def test_a_redefined_class_gets_its_own_source_entry() -> None:
    def define(extra: bool) -> type[Track]:
        if extra:

            class Again(Track, event="Again Thing Happened"):
                a: int
                b: int = 0

        else:

            class Again(Track, event="Again Thing Happened"):  # type: ignore[no-redef]
                a: int

        return Again

    first, second = define(False), define(True)
    assert first.__init__.__code__.co_filename != second.__init__.__code__.co_filename
    assert "b=_d1" in inspect.getsource(second.__init__)
    assert "b=" not in inspect.getsource(first.__init__)


def test_make_function_names_and_registers_the_source() -> None:
    func = make_function(
        "double",
        "def double(_x):\n    return _factor * _x\n",
        {"_factor": 2},
        what="helper",
        module="some.module",
        qualname="Owner",
        doc="Twice.",
    )
    assert func(4) == 8
    assert (func.__qualname__, func.__module__, func.__doc__) == ("Owner.double", "some.module", "Twice.")
    assert inspect.getsource(func).startswith("def double(_x):")


@pytest.mark.parametrize("name", ["self", "int", "str", "len", "kwargs", "args", "match", "type"])
def test_property_names_that_shadow_generated_or_builtin_names_work(name: str) -> None:
    cls: Any = type(
        f"Named_{name}", (Track,), {"__annotations__": {name: int, "other": str}}, event="Named Thing Happened"
    )
    with analytics_scope(user_id=1):
        event = cls(**{name: 5, "other": "x"})
    assert event.validation_error is None
    assert getattr(event, name) == 5
    assert to_message(event)["properties"] == {name: 5, "other": "x"}
    with analytics_scope(user_id=1):
        assert cls(**{name: "5", "other": "x"}).validation_error.field == name


def test_a_builder_for_a_function_with_such_parameter_names_works() -> None:
    class Copied(Track, event="Thing Copied"):
        self: int
        len: int

    @tracks(Copied)
    def copy(self: int, len: int) -> int:
        return self + len

    from instrument.testing import capture_events

    with capture_events() as events, analytics_scope(user_id=1):
        assert copy(1, 2) == 3
        assert copy(self=3, len=4) == 7
    assert [e.properties for e in events.tracks] == [{"self": 1, "len": 2}, {"self": 3, "len": 4}]


def test_the_tracks_builder_is_generated_readable_code() -> None:
    @tracks(Provisioned)
    def provision(kind: str, size: int = 2) -> None:
        pass

    builders = [
        key for key in linecache.cache if key.startswith("<instrument generated @tracks(Provisioned) builder of ")
    ]
    assert any("provision" in key for key in builders)
    source = "".join(linecache.getlines(next(k for k in builders if "provision" in k)))
    assert "if _kwargs:" in source
    assert "or True" not in source
    assert "or False" not in source


def test_a_strict_error_formatted_by_traceback_shows_the_generated_init_and_builder_lines() -> None:
    # What a user sees in a test failure or a log: the generated file and line, with its source text.
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)

    @tracks(Provisioned)
    def provision(kind: object, size: int = 2) -> None:
        pass

    with analytics_scope(user_id=1, project_id=2):
        try:
            provision(3)
        except PropertyError as error:
            text = traceback.format_exc()
            frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
        else:
            pytest.fail("strict mode did not raise")
    assert "<string>" not in text
    assert "???" not in text
    builder = f'File "<instrument generated @tracks(Provisioned) builder of {__name__}.'
    assert builder in text
    assert "in build\n    return _cls(kind=(_args[0 - _o] if _o <= 0 < _n else _d0)" in text
    init = f'File "<instrument generated __init__ of {__name__}.Provisioned>", line '
    assert init in text
    assert "in __init__\n    _validate(_self, _spec)" in text
    # inspect.getsource works on the generated code objects of both frames.
    codes = {
        frame.f_code.co_name: frame.f_code for frame in frames if frame.f_code.co_filename.startswith("<instrument")
    }
    assert inspect.getsource(codes["build"]).startswith("def build(_instance, _args, _kwargs):")
    assert inspect.getsource(codes["__init__"]).startswith("def __init__(_self, *, kind=_M, size=_d1, tags=_M")


def test_a_builder_for_a_function_feeding_no_field_has_no_lookup_code() -> None:
    @tracks(Provisioned)
    def unrelated(other: int) -> None:
        pass

    [key] = [
        k
        for k in linecache.cache
        if k.startswith("<instrument generated @tracks(Provisioned) builder of ") and k.endswith(".unrelated>")
    ]
    assert "".join(linecache.getlines(key)) == "def build(_instance, _args, _kwargs):\n    return _cls()\n"
