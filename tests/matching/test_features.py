"""What the linkage model compares: normalization of a profile into a MatchRecord."""

from __future__ import annotations

import dataclasses

import pytest

from cdlm.matching.features import COLUMNS, MatchRecord, fold, match_record, soundex
from cdlm.matching.nicknames import NICKNAMES, canonical

pytestmark = pytest.mark.pure


def test_a_full_profile_is_normalized_field_by_field() -> None:
    record = match_record(
        "p1",
        {
            "given_name": " Bob ",
            "family_name": "O'Brien-Núñez",
            "email": "J.O.Smith+news@googlemail.com",
            "phone": "+447400123456",
            "birth_date": "1985-03-04",
            "address_line1": "12 High St.",
            "address_line2": "Flat 3",
            "city": "St. Albans",
            "postal_code": "al1 1aa",
            "country": "gb",
        },
        ["crm:abc", "shop:x", "crm:abc"],
    )
    assert dataclasses.asdict(record) == {
        "unique_id": "p1",
        "given_name": "bob",
        "given_canonical": "robert",
        "given_initial": "b",
        "family_name": "obrien nunez",
        "family_key": "O165",
        "birth_date": "1985-03-04",
        "birth_swapped": "1985-04-03",
        "birth_year_month": "1985-03",
        "birth_year": "1985",
        "email": "josmith@gmail.com",
        "email_local": "josmith",
        "email_letters": "josmith",
        "email_domain": "gmail.com",
        "phone": "+447400123456",
        "phone_last7": "0123456",
        "postal_code": "AL11AA",
        "street_tokens": ("12", "3", "flat", "high", "street"),
        "city": "st albans",
        "country": "GB",
        "external_ids": ("crm:abc", "shop:x"),
        "external_namespaces": ("crm", "shop"),
    }


def test_an_empty_profile_has_nothing_but_its_id() -> None:
    record = match_record("p2", {})
    assert record == MatchRecord("p2")
    assert all(getattr(record, name) is None for name in COLUMNS if name != "unique_id")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Mary-Jane   O'Neil ", "mary jane oneil"),
        ("ÉLODIE", "elodie"),
        ("Straße", "strasse"),
        ("D\u2019Arcy", "darcy"),
        ("J.R.", "j r"),
        ("...", ""),
    ],
)
def test_fold_casefolds_strips_accents_and_punctuation(raw: str, expected: str) -> None:
    assert fold(raw) == expected


@pytest.mark.parametrize(
    ("name", "canonical_form"),
    [
        ("Bob", "robert"),
        ("Robbie", "robert"),
        ("Liam", "william"),
        ("Betty", "elizabeth"),
        ("Katie", "catherine"),
        ("Jimmy", "james"),
        ("Mary Beth", "mary elizabeth"),
        ("Olivia", "olivia"),
    ],
)
def test_a_given_name_is_also_read_through_the_nickname_table(
    name: str, canonical_form: str
) -> None:
    assert match_record("x", {"given_name": name}).given_canonical == canonical_form


def test_the_nickname_table_maps_each_nickname_once_to_a_name_that_is_no_nickname() -> None:
    assert len(NICKNAMES) >= 60
    assert all(name not in NICKNAMES for name in NICKNAMES.values())
    assert canonical("bill") == "william"
    assert canonical("zebedee") == "zebedee"


def test_an_initial_is_the_first_letter_of_the_given_name() -> None:
    assert match_record("x", {"given_name": "J."}).given_initial == "j"
    assert match_record("x", {"given_name": "J."}).given_name == "j"
    assert match_record("x", {"given_name": "-"}).given_initial is None


@pytest.mark.parametrize(
    ("email", "key", "local", "domain"),
    [
        ("Ann.Lee@Example.COM", "ann.lee@example.com", "ann.lee", "example.com"),
        ("ann.lee+shop@example.com", "ann.lee@example.com", "ann.lee", "example.com"),
        ("a.n.n.lee+x@gmail.com", "annlee@gmail.com", "annlee", "gmail.com"),
        ("ann.lee@googlemail.com", "annlee@gmail.com", "annlee", "gmail.com"),
        ("not-an-email", None, None, None),
        ("+tag@example.com", None, None, None),
    ],
)
def test_email_is_split_into_a_local_part_without_tags_and_a_domain(
    email: str, key: str | None, local: str | None, domain: str | None
) -> None:
    record = match_record("x", {"email": email})
    assert (record.email, record.email_local, record.email_domain) == (key, local, domain)


def test_email_letters_drop_the_digits_and_dots_providers_add() -> None:
    one = match_record("x", {"email": "ann.lee85@example.com"})
    other = match_record("y", {"email": "ann_lee@example.com"})
    assert one.email_letters == other.email_letters == "annlee"
    assert match_record("x", {"email": "1985@example.com"}).email_letters is None


def test_phone_keeps_its_e164_form_and_its_last_seven_digits() -> None:
    record = match_record("x", {"phone": "+12025550123"})
    assert (record.phone, record.phone_last7) == ("+12025550123", "5550123")
    assert match_record("x", {"phone": "123"}).phone_last7 is None


@pytest.mark.parametrize(
    ("born", "swapped"),
    [("1990-03-04", "1990-04-03"), ("1990-03-13", None), ("1990-05-05", None)],
)
def test_a_birth_date_carries_its_day_month_transposition_when_that_is_a_date(
    born: str, swapped: str | None
) -> None:
    assert match_record("x", {"birth_date": born}).birth_swapped == swapped


def test_a_birth_date_that_is_not_an_iso_date_is_unknown() -> None:
    record = match_record("x", {"birth_date": "04/03/1990"})
    assert (record.birth_date, record.birth_year_month, record.birth_year) == (None, None, None)


def test_street_abbreviations_are_spelt_out() -> None:
    short = match_record("x", {"address_line1": "7 Church Rd", "postal_code": "sw1a 1aa"})
    long = match_record("y", {"address_line1": "7, Church Road", "postal_code": "SW1A1AA"})
    assert short.street_tokens == long.street_tokens == ("7", "church", "road")
    assert short.postal_code == long.postal_code == "SW1A1AA"
    assert match_record("x", {"address_line1": "12 Elm Ave"}).street_tokens == (
        "12",
        "avenue",
        "elm",
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [("Robert", "R163"), ("Rupert", "R163"), ("Ashcraft", "A261"), ("Tymczak", "T522"),
     ("Pfister", "P236"), ("Lee", "L000"), ("Núñez", "N520"), ("123", None)],
)  # fmt: skip
def test_soundex(name: str, code: str | None) -> None:
    assert soundex(name) == code


def test_the_repr_of_a_record_shows_its_id_only() -> None:
    record = match_record("p9", {"given_name": "Zebedee", "email": "zeb@example.com"})
    assert repr(record) == "MatchRecord(unique_id='p9')"
    assert "zeb" not in str(record)


def test_a_record_is_immutable() -> None:
    record = match_record("p9", {"given_name": "Zebedee"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.given_name = "other"  # type: ignore[misc]
