"""Hard conflicts: each rule, its exceptions, and records without the fields it reads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cdlm.matching.conflicts import Conflict, conflicts
from cdlm.matching.features import MatchRecord, match_record

pytestmark = pytest.mark.pure

HOME = {"address_line1": "12 High Street", "postal_code": "AL1 1AA", "city": "St Albans"}


def rec(uid: str, ids: Sequence[str] = (), **values: str) -> MatchRecord:
    return match_record(uid, values, ids)


def test_records_without_anything_in_common_have_no_conflict() -> None:
    assert conflicts(rec("a", given_name="Ann"), rec("b", given_name="Bea")) == frozenset()
    assert conflicts(rec("a"), rec("b")) == frozenset()


@pytest.mark.parametrize(
    ("left", "right", "differs"),
    [
        (["crm:1"], ["crm:2"], True),
        (["crm:1"], ["crm:1"], False),
        (["crm:1", "shop:7"], ["crm:1", "shop:8"], True),  # one system is enough
        (["crm:1", "crm:3"], ["crm:3"], False),  # one id in common in that system
        (["crm:1"], ["shop:2"], False),  # different systems say nothing
        (["crm:1"], [], False),
    ],
)
def test_external_ids_differ_within_one_system(
    left: list[str], right: list[str], differs: bool
) -> None:
    found = conflicts(rec("a", left), rec("b", right))
    assert (Conflict.EXTERNAL_ID_DIFFERS in found) is differs


@pytest.mark.parametrize(
    ("left", "right", "differs"),
    [
        ("1990-03-04", "1990-03-05", True),
        ("1990-03-04", "1991-03-04", True),
        ("1990-03-04", "1990-03-04", False),
        ("1990-03-04", "1990-04-03", False),  # day and month exchanged: a slip
        ("1990-04-03", "1990-03-04", False),
        ("1990-03-04", "1991-04-03", True),  # exchanged, but another year
        ("1990-03-04", "", False),  # one side unknown
        ("1990-03-04", "not a date", False),
    ],
)
def test_birth_dates_differ_unless_day_and_month_are_exchanged(
    left: str, right: str, differs: bool
) -> None:
    found = conflicts(rec("a", birth_date=left), rec("b", birth_date=right))
    assert (Conflict.BIRTH_DATE_DIFFERS in found) is differs


@pytest.mark.parametrize(
    ("left", "right", "household"),
    [
        ("Eric", "Erica", True),
        ("Francis", "Frances", True),
        ("Anna", "Paul", True),
        ("Anna", "Anna", False),
        ("ANNA", "anna", False),
        ("Bob", "Robert", False),  # nickname
        ("Liz", "Beth", False),  # two nicknames of one name
        ("R", "Robert", False),  # an initial
        ("R.", "Robert", False),
        ("Olivia", "Osivia", True),  # a misspelling, without the same inbox
        ("Anna", "", False),  # a side without a given name
    ],
)
def test_a_shared_phone_with_given_names_that_disagree_is_a_household(
    left: str, right: str, household: bool
) -> None:
    phone = "+447400123456"
    found = conflicts(
        rec("a", given_name=left, phone=phone), rec("b", given_name=right, phone=phone)
    )
    assert (Conflict.HOUSEHOLD in found) is household


def test_a_shared_postal_address_with_other_given_names_is_a_household() -> None:
    found = conflicts(rec("a", given_name="Ann", **HOME), rec("b", given_name="Tom", **HOME))
    assert found == frozenset({Conflict.HOUSEHOLD})


def test_the_address_is_shared_when_postcode_and_street_words_are() -> None:
    spelt_short = {**HOME, "address_line1": "12 High St", "postal_code": "al11aa"}
    assert conflicts(rec("a", given_name="Ann", **HOME), rec("b", given_name="Tom", **spelt_short))
    neighbour = {**HOME, "address_line1": "14 High Street"}
    assert not conflicts(
        rec("a", given_name="Ann", **HOME), rec("b", given_name="Tom", **neighbour)
    )
    no_postcode = {"address_line1": "12 High Street"}
    assert not conflicts(
        rec("a", given_name="Ann", **no_postcode), rec("b", given_name="Tom", **no_postcode)
    )


def test_different_given_names_without_a_shared_phone_or_address_are_no_household() -> None:
    left = rec("a", given_name="Ann", phone="+447400123456", **HOME)
    right = rec("b", given_name="Tom", phone="+447400654321", city="St Albans")
    assert conflicts(left, right) == frozenset()


def test_given_and_family_names_exchanged_are_one_person() -> None:
    left = rec("a", given_name="Smith", family_name="Ella", **HOME)
    right = rec("b", given_name="Ella", family_name="Smith", **HOME)
    assert conflicts(left, right) == frozenset()


def test_with_the_same_email_a_spelling_variant_of_the_given_name_agrees() -> None:
    email = "olivia.hussain@example.com"
    left = rec("a", given_name="Olivia", email=email, **HOME)
    assert conflicts(left, rec("b", given_name="Osivia", email=email, **HOME)) == frozenset()
    # ...but not a different name, nor a variant under another address.
    assert conflicts(left, rec("b", given_name="Paul", email=email, **HOME))
    assert conflicts(left, rec("b", given_name="Osivia", email="o@example.com", **HOME))


def test_records_a_source_system_keys_alike_need_no_agreeing_given_names() -> None:
    left = rec("a", ["crm:7"], given_name="Olivia", **HOME)
    assert conflicts(left, rec("b", ["crm:7", "shop:1"], given_name="Osivia", **HOME)) == set()
    assert conflicts(left, rec("b", ["shop:1"], given_name="Osivia", **HOME)) == {
        Conflict.HOUSEHOLD
    }


def test_twins_are_kept_apart_by_their_given_names() -> None:
    twin = {**HOME, "family_name": "Khan", "birth_date": "2001-05-06", "phone": "+447400123456"}
    assert conflicts(rec("a", given_name="Amir", **twin), rec("b", given_name="Sara", **twin)) == {
        Conflict.HOUSEHOLD
    }


def test_every_conflict_is_reported() -> None:
    left = rec("a", ["crm:1"], given_name="Ann", birth_date="1990-01-01", **HOME)
    right = rec("b", ["crm:2"], given_name="Tom", birth_date="1991-01-01", **HOME)
    assert conflicts(left, right) == frozenset(Conflict)


def test_conflicts_are_symmetric() -> None:
    left = rec("a", ["crm:1"], given_name="R", birth_date="1990-03-04", **HOME)
    right = rec("b", ["crm:1", "shop:2"], given_name="Robert", birth_date="1990-04-03", **HOME)
    assert conflicts(left, right) == conflicts(right, left) == frozenset()
