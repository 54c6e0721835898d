"""EventName: the naming convention is enforced when a catalog class is defined."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from instrument import (
    ConfigurationError,
    EventName,
    EventNameError,
    Track,
    analytics_scope,
    define_scope,
    legacy,
    to_message,
)
from instrument._events import check_event_name


def make_catalog(*values: str, legacy: frozenset[str] = frozenset()) -> type[EventName]:
    """Define a catalog class with members E0, E1, ... holding ``values``, as a class statement would."""
    body = "".join(f"    E{i} = {value!r}\n" for i, value in enumerate(values))
    namespace: dict[str, object] = {"EventName": EventName, "legacy": legacy}
    exec(f"class Catalog(EventName, legacy=legacy):\n{body}", namespace)
    catalog = namespace["Catalog"]
    assert isinstance(catalog, type)
    return catalog


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"
    AWS_ACCOUNT_ID_INPUTTED = "AWS Account ID Inputted"
    USER_VERIFIED_EMAIL = "User Verified Email"


def test_a_catalog_following_the_convention_is_accepted_acronyms_included() -> None:
    assert [e.value for e in Events] == [
        "Cluster Provisioning Success",
        "AWS Account ID Inputted",
        "User Verified Email",
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("cluster provisioning success", "lower case"),
        ("Cluster provisioning Success", "a lowercase word"),
        ("Deleted", "a single word"),
        ("Cluster  Deleted", "a double space"),
        (" Cluster Deleted", "a leading space"),
        ("Cluster Deleted ", "a trailing space"),
        ("Cluster_Deleted Now", "an underscore"),
        ("Cluster Re-deploy", "a hyphen"),
        ("", "empty"),
    ],
)
def test_a_value_breaking_the_convention_fails_at_class_definition(value: str, why: str) -> None:
    with pytest.raises(EventNameError, match="convention") as info:
        make_catalog("Cluster Deleted Fine", value)
    assert info.value.name == value, why
    assert info.value.catalog == "Catalog.E1"


@pytest.mark.parametrize("word", ["Event", "Events", "Track", "Tracked"])
def test_a_value_containing_a_redundant_word_is_rejected(word: str) -> None:
    with pytest.raises(EventNameError, match=repr(word)) as info:
        make_catalog(f"New Project {word}")
    assert info.value.name == f"New Project {word}"


def test_a_word_merely_starting_like_a_redundant_word_is_fine() -> None:
    catalog = make_catalog("Eventual Consistency Reached", "Tracking Started")
    assert len(list(catalog)) == 2


def test_a_duplicate_value_is_an_error_naming_both_members() -> None:
    with pytest.raises(EventNameError, match="used twice") as info:
        exec(
            "class Dup(EventName):\n    FIRST = 'Cluster Deleted'\n    SECOND = 'Cluster Deleted'\n",
            {"EventName": EventName},
        )
    message = str(info.value)
    assert "FIRST" in message
    assert "SECOND" in message
    assert info.value.name == "Cluster Deleted"
    assert info.value.catalog == "Dup"


def test_legacy_keeps_names_that_break_the_convention() -> None:
    class Legacy(EventName, legacy={"New Project Event", "Triggered Re-deploy via Webhook"}):
        NEW_PROJECT = "New Project Event"
        REDEPLOY = "Triggered Re-deploy via Webhook"
        CLUSTER_DELETED = "Cluster Deleted"

    assert Legacy.NEW_PROJECT == "New Project Event"  # type: ignore[comparison-overlap]
    assert Legacy.REDEPLOY == "Triggered Re-deploy via Webhook"  # type: ignore[comparison-overlap]


def test_legacy_only_exempts_the_names_it_lists() -> None:
    with pytest.raises(EventNameError) as info:
        make_catalog("New Project Event", "bad name", legacy=frozenset({"New Project Event"}))
    assert info.value.name == "bad name"


def test_a_legacy_name_that_is_not_in_the_catalog_is_an_error() -> None:
    with pytest.raises(EventNameError, match="not values of the catalog") as info:
        make_catalog("Cluster Deleted", legacy=frozenset({"New Project Event"}))
    assert info.value.name == "New Project Event"


def test_str_and_format_give_the_value() -> None:
    member = Events.CLUSTER_PROVISIONING_SUCCESS
    assert str(member) == "Cluster Provisioning Success"
    assert f"{member}" == "Cluster Provisioning Success"
    assert f"[{member:>30}]" == "[  Cluster Provisioning Success]"
    assert "{}".format(member) == "Cluster Provisioning Success"  # noqa: UP032 - str.format is what is tested


def test_members_compare_equal_to_their_string_and_hash_like_it() -> None:
    member = Events.USER_VERIFIED_EMAIL
    assert member == "User Verified Email"
    assert member != "User Verified"
    assert {"User Verified Email": 1}[member] == 1
    assert Events("User Verified Email") is member
    assert json.dumps(member) == '"User Verified Email"'


def test_check_event_name_rejects_a_non_str() -> None:
    with pytest.raises(EventNameError, match="must be a str"):
        check_event_name(42)  # type: ignore[arg-type]


def test_event_name_error_is_a_value_error_too() -> None:
    with pytest.raises(ValueError, match="convention"):
        check_event_name("nope")


TITLE_CASE = r"[A-Z][A-Za-z0-9]{0,8}( [A-Z][A-Za-z0-9]{0,8}){1,4}"
REDUNDANT = {"Event", "Events", "Track", "Tracked"}


@given(st.from_regex(TITLE_CASE, fullmatch=True))
def test_any_title_case_name_of_two_or_more_words_is_accepted(name: str) -> None:
    assume(not REDUNDANT.intersection(name.split(" ")))
    catalog = make_catalog(name)
    assert catalog(name).value == name


@given(
    st.from_regex(TITLE_CASE, fullmatch=True),
    st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True),
    st.integers(min_value=0, max_value=5),
)
def test_a_name_with_a_lowercase_initial_word_is_rejected(name: str, lower_word: str, position: int) -> None:
    words = name.split(" ")
    words.insert(min(position, len(words)), lower_word)
    with pytest.raises(EventNameError):
        make_catalog(" ".join(words))


# -- wire keys declared with the catalog -----------------------------------------------------------


def test_a_catalog_declares_scope_wire_keys_once() -> None:
    class Renaming(EventName, wire_keys={"project_id": "proj_id"}):
        THING_RENAMED = "Thing Renamed"

    class ThingRenamed(Track, event=Renaming.THING_RENAMED, scope="cluster"):
        count: int

    with analytics_scope(user_id=1, project_id=2, cluster_id=3):
        message = to_message(ThingRenamed(count=1))
    assert message["properties"] == {"count": 1, "proj_id": 2, "cluster_id": 3}


@pytest.mark.parametrize(
    ("wire_keys", "match"),
    [
        ({"projectid": "p"}, "projectid"),
        ({"user_id": "uid"}, "user_id"),
        ({"project_id": ""}, "non-empty"),
        ({"project_id": "cluster_id"}, "'project_id' and 'cluster_id' would both be sent as 'cluster_id'"),
        ({"project_id": "k", "cluster_id": "k"}, "would both be sent as 'k'"),
        ({"project_id": "userId"}, "userId"),
    ],
)
def test_bad_catalog_wire_keys_are_a_configuration_error(wire_keys: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):

        class Bad(EventName, wire_keys=wire_keys):
            THING_HAPPENED = "Thing Happened"


def test_a_catalog_derived_from_a_base_catalog_keeps_its_wire_keys() -> None:
    # Several catalogs, one wire format: the keys are declared once, on a base without members.
    class PorterCatalog(EventName, wire_keys={"project_id": "proj_id"}):
        pass

    class BuildEvents(PorterCatalog):
        BUILD_STARTED = "Build Started"

    class DerivedBuildStarted(Track, event=BuildEvents.BUILD_STARTED, scope="project"):
        pass

    assert BuildEvents.__wire_keys__ == {"project_id": "proj_id"}
    with analytics_scope(user_id=1, project_id=2):
        message = to_message(DerivedBuildStarted())
    assert message["properties"] == {"proj_id": 2}


def test_a_derived_catalog_may_not_change_its_bases_wire_key() -> None:
    class RenamingBase(EventName, wire_keys={"project_id": "proj_id"}):
        pass

    with pytest.raises(ConfigurationError, match="base catalog sends it as 'proj_id'"):

        class Changing(RenamingBase, wire_keys={"project_id": "project"}):
            THING_CHANGED = "Thing Changed"


def test_two_catalogs_renaming_one_field_differently_is_a_configuration_error_naming_both() -> None:
    class FirstCatalog(EventName, wire_keys={"project_id": "proj_id"}):
        FIRST_THING_HAPPENED = "First Thing Happened"

    with pytest.raises(ConfigurationError) as info:

        class SecondCatalog(EventName, wire_keys={"project_id": "projectId"}):
            SECOND_THING_HAPPENED = "Second Thing Happened"

    text = str(info.value)  # names the first catalog of the process that renamed it (maybe another test's)
    assert "sends it as 'proj_id'" in text
    assert "SecondCatalog: wire_keys sends 'project_id' as 'projectId'" in text
    assert "base catalog" in text
    assert "'projectId'" in text

    class AgreeingCatalog(EventName, wire_keys={"project_id": "proj_id"}):  # the same rename is fine
        THIRD_THING_HAPPENED = "Third Thing Happened"

    assert AgreeingCatalog.__wire_keys__ == {"project_id": "proj_id"}


def test_a_catalog_refused_for_its_names_claims_no_wire_key() -> None:
    # A field of its own, so no other test's catalog renames it (the renames are process-wide).
    define_scope("refusal", parent="user", fields=["refusal_id"])
    with pytest.raises(EventNameError):

        class Refused(EventName, wire_keys={"refusal_id": "rid"}):
            BAD = "bad name"

    class Fine(EventName, wire_keys={"refusal_id": "refusal"}):
        THING_REFUSED = "Thing Refused"

    assert Fine.__wire_keys__ == {"refusal_id": "refusal"}


@pytest.mark.parametrize(
    ("legacy", "match"),
    [
        ("New Project Event", "not a bare str"),
        (5, "got int"),
        ([["New Project Event"]], "got list"),
    ],
)
def test_a_malformed_legacy_argument_is_an_event_name_error(legacy: object, match: str) -> None:
    with pytest.raises(EventNameError, match=match):

        class Legacy(EventName, legacy=legacy):  # type: ignore[call-arg]
            NEW_PROJECT = "New Project Event"


def test_a_member_marked_legacy_keeps_its_name_and_is_not_checked() -> None:
    class Marked(EventName):
        NEW_PROJECT = legacy("New Project Event")
        PROJECT_DELETED = "Project Deleted"

    assert Marked.NEW_PROJECT.value == "New Project Event"
    assert type(Marked.NEW_PROJECT.value) is str
    assert Marked("New Project Event") is Marked.NEW_PROJECT
    assert str(Marked.NEW_PROJECT) == "New Project Event"


def test_an_unmarked_member_breaking_the_convention_is_still_refused() -> None:
    with pytest.raises(EventNameError, match="Event"):

        class Unmarked(EventName):
            NEW_PROJECT = legacy("New Project Event")
            OTHER_PROJECT = "Other Project Event"


def test_legacy_takes_only_a_str() -> None:
    with pytest.raises(EventNameError, match="int"):
        legacy(5)  # type: ignore[arg-type]
