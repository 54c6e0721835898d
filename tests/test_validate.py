"""The one validation path: what construction checks, what its errors say (never the value), and strictness."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import hostile_values
import pytest
from hostile_values import SECRET
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import instrument
from instrument import (
    AnalyticsError,
    EncodingError,
    MemoryTransport,
    PropertyError,
    ScopeError,
    Track,
    analytics_scope,
    define_scope,
    field,
    to_message,
)
from instrument._encoding import MAX_DEPTH
from instrument.testing import reset


class Counted(Track, event="Counted Thing Happened", scope="project"):
    count: int
    label: str = ""
    tags: list[str] = field(default_factory=list)
    kind: Literal["a", "b"] = "a"
    payload: Any = None


def strict() -> None:
    """Strict mode through the public API (the test's fixture restores the previous client)."""
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)


# -- scope ids -----------------------------------------------------------------------------------


def test_an_empty_user_id_is_a_scope_error_not_sent() -> None:
    with analytics_scope(user_id="", project_id=2):
        event = Counted(count=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert error.field == "user_id"
    assert "non-empty" in str(error)
    with pytest.raises(ScopeError):
        to_message(event)


def test_user_zero_and_str_ids_pass() -> None:
    with analytics_scope(user_id=0, project_id="p-1"):
        event = Counted(count=1)
    assert event.validation_error is None
    assert to_message(event)["userId"] == "0"


def test_id_subclasses_are_accepted_by_the_validator() -> None:
    class Uid(str):
        pass

    with analytics_scope(user_id=Uid("u-1"), project_id=2):
        event = Counted(count=1)
    assert event.validation_error is None
    assert to_message(event)["userId"] == "u-1"


@pytest.mark.parametrize("bad", [True, 1.5, None.__class__, b"x", [1]])
def test_a_bad_project_id_is_a_scope_error_naming_its_type(bad: object) -> None:
    with analytics_scope(user_id=1, project_id=bad):
        event = Counted(count=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert error.field == "project_id"
    assert type(bad).__name__ in str(error)


def test_define_scope_id_fields_get_the_id_checks_and_others_do_not() -> None:
    define_scope("validate_board", parent="project", fields=["board_id", "board_title"], ids=["board_id"])

    class BoardMoved(Track, event="Board Moved", scope="validate_board"):
        position: int

    with analytics_scope(user_id=1, project_id=2, board_id=2.5, board_title=["any", "value"]):
        event = BoardMoved(position=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    assert error.field == "board_id"
    with analytics_scope(user_id=1, project_id=2, board_id="b-1", board_title=["any", "value"]):
        assert BoardMoved(position=1).validation_error is None


# -- missing scope fields ------------------------------------------------------------------------


class Deep(Track, event="Deep Thing Happened", scope="application"):
    n: int


def test_scope_error_names_every_missing_field_at_once() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Deep(n=1)
    error = event.validation_error
    assert isinstance(error, ScopeError)
    for name in ("cluster_id", "app_name", "app_namespace", "chart_name"):
        assert repr(name) in str(error)
    assert error.field == "cluster_id"
    assert "nothing at all is bound" not in str(error)


def test_scope_error_says_when_nothing_is_bound_in_a_thread_that_did_not_receive_the_scope() -> None:
    with analytics_scope(user_id=1, project_id=2), ThreadPoolExecutor(1) as pool:
        event = pool.submit(lambda: Counted(count=1)).result()
    error = event.validation_error
    assert isinstance(error, ScopeError)
    text = str(error)
    assert "'user_id', 'project_id'" in text
    assert "nothing at all is bound in this context" in text
    assert "thread" in text
    assert "executor" in text


# -- error texts never show the value ------------------------------------------------------------


@given(st.text(min_size=6).filter(lambda s: s.strip() == s and s.isprintable()))
def test_a_property_type_error_names_type_and_size_never_the_value(secret: str) -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Counted(count=secret)  # type: ignore[arg-type]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert str(error) == f"Counted.count: expected int, got str ({len(secret)} chars)"


def test_a_scope_id_error_never_shows_the_value() -> None:
    with analytics_scope(user_id=1, project_id=["alice@example.com"]):
        event = Counted(count=1)
    assert "alice" not in str(event.validation_error)
    assert "list (1 item)" in str(event.validation_error)


def test_strict_mode_raises_the_same_error_at_construction() -> None:
    strict()
    with analytics_scope(user_id=1, project_id=2), pytest.raises(PropertyError, match=r"got bytes \(3 bytes\)$"):
        Counted(count=b"abc")  # type: ignore[arg-type]


# -- only AnalyticsErrors ------------------------------------------------------------------------


class Hostile:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        raise RuntimeError("no showing me")


def test_a_value_whose_eq_raises_is_a_property_error() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Counted(count=1, kind=Hostile())  # type: ignore[arg-type]
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "kind"
    assert "raised RuntimeError" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


def test_a_value_whose_repr_raises_is_an_encoding_error_at_to_message() -> None:
    with analytics_scope(user_id=1, project_id=2):
        event = Counted(count=1, payload=Hostile())
    assert event.validation_error is None  # Any accepts it
    assert "repr raised" in repr(event)
    with pytest.raises(EncodingError) as info:
        to_message(event)
    assert info.value.field == "payload"


def test_a_raising_default_factory_is_a_property_error_never_the_raw_exception() -> None:
    def broken() -> list[str]:
        raise LookupError("factory down")

    class WithFactory(Track, event="Factory Thing Happened"):
        items: list[str] = field(default_factory=broken)

    with analytics_scope(user_id=1):
        event = WithFactory()
    error = event.validation_error
    assert isinstance(error, PropertyError)
    assert error.field == "items"
    assert "default_factory raised LookupError" in str(error)
    strict()
    with analytics_scope(user_id=1), pytest.raises(PropertyError, match="default_factory"):
        WithFactory()


@pytest.mark.parametrize("shape", ["deep", "cyclic"])
def test_a_deep_or_cyclic_list_is_an_encoding_error_with_the_path(shape: str) -> None:
    value: list[Any] = []
    if shape == "cyclic":
        value.append(value)
    else:
        for _ in range(100_000):
            value = [value]
    with analytics_scope(user_id=1, project_id=2):
        event = Counted(count=1, payload=value)
    with pytest.raises(EncodingError) as info:
        to_message(event)
    # The path down to the depth limit: payload[0][0]... (the encoder stops at MAX_DEPTH levels).
    assert info.value.field == "payload" + "[0]" * MAX_DEPTH
    assert "recursion" in str(info.value)
    assert f"deeper than {MAX_DEPTH} levels" in str(info.value)


def test_errors_from_every_hostile_input_are_analytics_errors_in_a_thread() -> None:
    # The same checks hold off the main thread (the worker's and the business code's threads).
    caught: list[BaseException] = []

    def run() -> None:
        try:
            with analytics_scope(user_id=1, project_id=2):
                event = Counted(count=1, payload=Hostile())
                to_message(event)
        except BaseException as error:
            caught.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert len(caught) == 1
    assert isinstance(caught[0], AnalyticsError)


# -- arbitrary and hostile values (hypothesis) ----------------------------------------------------


class Anything(Track, event="Anything Thing Happened", scope="project"):
    n: int
    s: str = ""
    f: float = 0.0
    b: bool = False
    items: list[str] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)
    kind: Literal["a", "b"] = "a"
    anything: Any = None
    opt: int | None = None
    numbers: tuple[int, ...] = ()


_FIELDS = [*(p for p in Anything.__annotations__), "user_id", "project_id", "unknown_one", "cluster_id"]


def _no_secret(error: BaseException) -> None:
    assert isinstance(error, AnalyticsError), f"{type(error).__name__} escaped: {error!r}"
    assert SECRET not in str(error), str(error)


@example(given_fields={"n": hostile_values.hostile(frozenset({"__class__"}))}, strict_mode=False)
@example(given_fields={"project_id": hostile_values.hostile(frozenset({"__class__"}))}, strict_mode=True)
@example(given_fields={"kind": hostile_values.hostile(frozenset({"__eq__"}))}, strict_mode=False)
@example(given_fields={"anything": hostile_values.very_deep}, strict_mode=True)
@example(given_fields={"items": [hostile_values.very_deep]}, strict_mode=False)
@example(given_fields={"mapping": {"k": hostile_values.very_deep}}, strict_mode=True)
@example(given_fields={"numbers": hostile_values.very_deep}, strict_mode=False)
@example(given_fields={"mapping": hostile_values.self_containing("dict")}, strict_mode=False)
@example(given_fields={"unknown_one": SECRET, "n": SECRET}, strict_mode=True)
@example(given_fields={"project_id": [SECRET]}, strict_mode=False)
@example(given_fields={"n": 1, "items": [hostile_values.liar(str)]}, strict_mode=True)
@example(given_fields={"s": SECRET * 2_000, "n": 1}, strict_mode=True)  # oversize: the text names keys and sizes
@example(given_fields={"s": SECRET * 2_000, "n": 1}, strict_mode=False)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    given_fields=st.dictionaries(st.sampled_from(_FIELDS), hostile_values.values, max_size=4), strict_mode=st.booleans()
)
def test_arbitrary_values_give_only_analytics_errors_without_the_value_in_their_text(
    given_fields: dict[str, Any], strict_mode: bool
) -> None:
    reported: list[AnalyticsError] = []
    instrument.configure(transport=MemoryTransport(), strict=strict_mode, sync=True, on_error=reported.append)
    try:
        with analytics_scope(user_id=1, project_id=2):
            try:
                record = Anything(**given_fields)
                result = instrument.track(record)
            except AnalyticsError as error:
                assert strict_mode, "production mode raised"
                _no_secret(error)
                return
            repr(record)  # never raises
            if record.validation_error is not None:
                _no_secret(record.validation_error)
            if result.error is not None:
                _no_secret(result.error)
        for error in reported:
            _no_secret(error)
    finally:
        reset()


@pytest.mark.parametrize("strict_mode", [False, True])
@pytest.mark.parametrize("claimed", [int, float, bool])
def test_a_value_lying_about_its_class_is_an_encoding_error_in_both_modes(claimed: type, strict_mode: bool) -> None:
    # isinstance() believes __class__, so the value passes the checks; serialising it fails: an AnalyticsError.
    reported: list[AnalyticsError] = []
    instrument.configure(transport=MemoryTransport(), strict=strict_mode, sync=True, on_error=reported.append)
    field_name = {int: "n", float: "f", bool: "b"}[claimed]
    fields: dict[str, Any] = {"n": 1, field_name: hostile_values.liar(claimed)}
    with analytics_scope(user_id=1, project_id=2):
        record = Anything(**fields)
        if strict_mode:
            with pytest.raises(EncodingError, match="raised TypeError"):
                instrument.track(record)
        else:
            assert isinstance(instrument.track(record).error, EncodingError)
            [error] = reported
            assert SECRET not in str(error)


def test_an_unknown_property_is_named_when_it_is_a_python_name_and_only_sized_otherwise() -> None:
    instrument.configure(transport=MemoryTransport(), strict=True, sync=True)
    try:
        with analytics_scope(user_id=1, project_id=2), pytest.raises(PropertyError) as named:
            Anything(n=1, requestid=1)  # type: ignore[call-arg]
        assert "'requestid'" in str(named.value)
        with analytics_scope(user_id=1, project_id=2), pytest.raises(PropertyError) as sized:
            Anything(n=1, **{SECRET: 1})
        assert SECRET not in str(sized.value)
        assert "a key that is not a Python name (24 chars)" in str(sized.value)
    finally:
        reset()
