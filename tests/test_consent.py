"""Consent as typed data: categories granted/denied, bound in the context, stamped in both vendors' shapes."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instrument import ConfigurationError, Consent, consent_scope
from instrument._consent import current, granted_in


class Purpose(enum.StrEnum):
    ANALYTICS = "analytics"
    ADS = "advertising"


def test_a_str_enum_makes_the_categories_typed_and_they_travel_as_plain_text() -> None:
    consent = Consent(granted={Purpose.ANALYTICS}, denied=[Purpose.ADS])
    assert consent.granted == {"analytics"}
    assert consent.denied == {"advertising"}
    assert consent.stamp()["consent"] == {"categoryPreferences": {"analytics": True, "advertising": False}}


def test_consent_is_bound_only_inside_its_scope() -> None:
    assert current() is None
    with consent_scope(Consent(granted={"a"})) as consent:
        assert current() is consent
    assert current() is None


@pytest.mark.parametrize("bad", [[""], [1], 5])
def test_a_category_that_is_not_a_non_empty_str_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="Consent"):
        Consent(granted=bad)  # type: ignore[arg-type]


def test_a_category_both_granted_and_denied_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="both"):
        Consent(granted={"a"}, denied={"a"})


def test_consent_scope_takes_only_a_consent() -> None:
    with pytest.raises(ConfigurationError, match="expected a Consent"):
        consent_scope({"analytics": True})  # type: ignore[arg-type]


@given(st.dictionaries(st.text(min_size=1), st.booleans()))
def test_the_stamp_reads_back_as_the_granted_categories(preferences: dict[str, bool]) -> None:
    consent = Consent.from_preferences(preferences)
    assert granted_in({"context": consent.stamp()}) == {c for c, ok in preferences.items() if ok}
    management = consent.stamp()["consentManagement"]
    assert set(management["allowedConsentIds"]) | set(management["deniedConsentIds"]) == set(preferences)


def test_a_message_without_a_stamp_grants_nothing() -> None:
    assert granted_in({}) == frozenset()
    assert granted_in({"context": {"consent": "x"}}) == frozenset()


def test_consent_follows_work_handed_to_a_propagating_executor() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from instrument import PropagatingExecutor

    consent = Consent(granted={"analytics"})
    with ThreadPoolExecutor(max_workers=1) as threads:
        pool = PropagatingExecutor(threads)
        with consent_scope(consent):
            seen = pool.submit(current).result(timeout=10)
        assert threads.submit(current).result(timeout=10) is None  # a plain pool: not propagated
    assert seen is consent


def test_the_testing_kits_reset_unbinds_consent() -> None:
    from instrument._consent import _CONSENT
    from instrument.testing import reset

    _CONSENT.set(Consent(granted={"a"}))  # a consent left bound, as a test that never exits its scope would
    reset()
    assert current() is None
