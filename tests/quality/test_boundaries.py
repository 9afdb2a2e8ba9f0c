"""Validation at its limits: invisible characters, lengths, ages, postal codes, countries and
regions, each limit checked on it and one step either side. "Today" is fixed with the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.quality.dates import NOT_A_DATE
from cdlm.quality.validate import MAX_AGE_YEARS, MAX_NAME, MAX_TEXT, validate_profile

pytestmark = pytest.mark.pure

PATHS = {
    "email": "input.profile.email",
    "phone": "input.profile.phone",
    "given_name": "input.profile.givenName",
    "family_name": "input.profile.familyName",
    "birth_date": "input.profile.birthDate",
    "address_line1": "input.profile.address.line1",
    "address_line2": "input.profile.address.line2",
    "city": "input.profile.address.city",
    "region": "input.profile.address.region",
    "postal_code": "input.profile.address.postalCode",
    "country": "input.profile.address.country",
}
NAMES = ["given_name", "family_name"]
TEXTS = ["address_line1", "address_line2", "city", "region"]

ONLY_INVISIBLE = "Only invisible characters."
NEEDS_A_LETTER = "A name needs at least one letter."


def accepted(field: str, raw: str) -> str:
    result = validate_profile({field: raw})
    assert result.issues == []
    assert result.rejected == {}
    return result.values[field]


def refused(field: str, raw: str) -> tuple[ErrorCode, str]:
    result = validate_profile({field: raw})
    assert result.values == {}
    assert result.rejected == {field: raw}
    [issue] = result.issues
    assert issue.field == PATHS[field]
    return issue.code, issue.message


def test_the_limits() -> None:
    assert MAX_NAME == 100
    assert MAX_TEXT == 200
    assert MAX_AGE_YEARS == 120


# ------------------------------------------------------------------ invisible characters

#: Characters that show nothing: format controls (zero-width, direction marks, embeddings,
#: overrides, isolates, byte-order mark, soft hyphen, tags) and the other Unicode
#: default-ignorable code points (fillers and selectors that are letters or marks).
INVISIBLE = {
    "ZERO WIDTH SPACE": "\u200b",
    "LEFT-TO-RIGHT MARK": "\u200e",
    "RIGHT-TO-LEFT MARK": "\u200f",
    "LEFT-TO-RIGHT EMBEDDING": "\u202a",
    "POP DIRECTIONAL FORMATTING": "\u202c",
    "RIGHT-TO-LEFT OVERRIDE": "\u202e",
    "LEFT-TO-RIGHT ISOLATE": "\u2066",
    "RIGHT-TO-LEFT ISOLATE": "\u2067",
    "FIRST STRONG ISOLATE": "\u2068",
    "POP DIRECTIONAL ISOLATE": "\u2069",
    "WORD JOINER": "\u2060",
    "INVISIBLE SEPARATOR": "\u2063",
    "ZERO WIDTH NO-BREAK SPACE (BOM)": "\ufeff",
    "SOFT HYPHEN": "\u00ad",
    "ARABIC LETTER MARK": "\u061c",
    "MONGOLIAN VOWEL SEPARATOR": "\u180e",
    "TAG SPACE": "\U000e0020",
    "NULL": "\x00",
    "ESCAPE": "\x1b",
    "DELETE": "\x7f",
    # default-ignorable letters and marks (not format controls)
    "COMBINING GRAPHEME JOINER": "\u034f",
    "HANGUL CHOSEONG FILLER": "\u115f",
    "HANGUL JUNGSEONG FILLER": "\u1160",
    "KHMER VOWEL INHERENT AQ": "\u17b4",
    "MONGOLIAN FREE VARIATION SELECTOR ONE": "\u180b",
    "HANGUL FILLER": "\u3164",
    "KHMER VOWEL INHERENT AA": "\u17b5",
    "MONGOLIAN FREE VARIATION SELECTOR THREE": "\u180d",
    "MONGOLIAN FREE VARIATION SELECTOR FOUR": "\u180f",
    "VARIATION SELECTOR-1": "\ufe00",
    "VARIATION SELECTOR-16": "\ufe0f",
    "HALFWIDTH HANGUL FILLER": "\uffa0",
    "VARIATION SELECTOR-17": "\U000e0100",
    "VARIATION SELECTOR-256": "\U000e01ef",
}

#: Visible neighbours of those code points: letters, marks and signs that stay.
VISIBLE_NEIGHBOURS = {
    "COMBINING UPWARDS ARROW BELOW": "\u034e",
    "COMBINING RIGHT ARROWHEAD ABOVE": "\u0350",
    "HANGUL CHOSEONG TIKEUT-RIEUL": "\u115e",
    "HANGUL JUNGSEONG A": "\u1161",
    "KHMER INDEPENDENT VOWEL QAU": "\u17b3",
    "KHMER VOWEL SIGN AA": "\u17b6",
    "MONGOLIAN NIRUGU": "\u180a",
    "MONGOLIAN DIGIT ZERO": "\u1810",
    "HANGUL LETTER HIEUH": "\u314e",
    "HANGUL LETTER SSANGNIEUN": "\u3165",
    "COMBINING CONJOINING MACRON BELOW": "\ufe2d",
    "PRESENTATION FORM FOR VERTICAL COMMA": "\ufe10",
    "HALFWIDTH KATAKANA SEMI-VOICED SOUND MARK": "\uff9f",
    "HALFWIDTH HANGUL LETTER KIYEOK": "\uffa1",
}

#: Characters that show as a blank: they separate words like a space.
BLANK = {
    "TAB": "\t",
    "LINE FEED": "\n",
    "CARRIAGE RETURN": "\r",
    "NEXT LINE": "\x85",
    "NO-BREAK SPACE": "\u00a0",
    "OGHAM SPACE MARK": "\u1680",
    "EM SPACE": "\u2003",
    "LINE SEPARATOR": "\u2028",
    "IDEOGRAPHIC SPACE": "\u3000",
    "BRAILLE PATTERN BLANK": "\u2800",
}


@pytest.mark.parametrize("field", NAMES)
@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_invisible_characters_are_dropped_from_names(field: str, char: str) -> None:
    assert accepted(field, f"{char}A{char}da{char}") == "Ada"
    assert accepted(field, f"Ada {char}Lovelace{char}") == "Ada Lovelace"


@pytest.mark.parametrize("field", TEXTS)
@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_invisible_characters_are_dropped_from_texts(field: str, char: str) -> None:
    assert accepted(field, f"S{char}ão {char}Paulo{char}") == "São Paulo"


@pytest.mark.parametrize("field", NAMES + TEXTS)
@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_a_value_of_only_invisible_characters_is_refused(field: str, char: str) -> None:
    assert refused(field, char) == (ErrorCode.IMPLAUSIBLE, ONLY_INVISIBLE)
    assert refused(field, f" {char}{char} {char} ") == (ErrorCode.IMPLAUSIBLE, ONLY_INVISIBLE)


@pytest.mark.parametrize("char", list(VISIBLE_NEIGHBOURS.values()), ids=list(VISIBLE_NEIGHBOURS))
def test_the_visible_neighbours_of_invisible_characters_stay(char: str) -> None:
    assert accepted("city", f"A{char}B") == f"A{char}B"


@pytest.mark.parametrize("field", NAMES + TEXTS)
def test_a_mix_of_invisible_characters_is_refused(field: str) -> None:
    assert refused(field, "".join(INVISIBLE.values())) == (ErrorCode.IMPLAUSIBLE, ONLY_INVISIBLE)


@pytest.mark.parametrize("field", NAMES + TEXTS)
@pytest.mark.parametrize("char", list(BLANK.values()), ids=list(BLANK))
def test_blank_characters_separate_words(field: str, char: str) -> None:
    # A tab or line break between two words is a space, never a join.
    assert accepted(field, f"{char}Jean{char}{char}Luc{char}") == "Jean Luc"


@pytest.mark.parametrize("field", NAMES + TEXTS)
def test_a_value_of_only_blanks_and_invisible_characters_is_refused(field: str) -> None:
    # (A value that str.strip() empties is treated as not given at all.)
    assert refused(field, "\u2800\u200b\u2800") == (ErrorCode.IMPLAUSIBLE, ONLY_INVISIBLE)
    assert refused(field, "\u3164 \u3164") == (ErrorCode.IMPLAUSIBLE, ONLY_INVISIBLE)


def test_blank_values_are_not_given_at_all() -> None:
    result = validate_profile({"given_name": " \t\n\u3000", "city": "\u2028", "email": None})
    assert (result.values, result.issues, result.rejected) == ({}, [], {})
    assert validate_profile({"phone": None, "country": ""}).values == {}


def test_an_unknown_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown profile fields: \['shoe_size'\]$"):
        validate_profile({"shoe_size": "44", "given_name": "Ada"})


def test_email_and_phone_go_through_their_own_checks() -> None:
    result = validate_profile({"email": " Ada@Example.ORG ", "phone": "+44 7911 123456"})
    assert result.values == {"email": "ada@example.org", "phone": "+447911123456"}
    # A national number is read with the profile's country, else the caller's default.
    assert accepted("phone", "+1 202 456 1111") == "+12024561111"
    national = {"phone": "07911 123456"}
    assert validate_profile({**national, "country": "GB"}).values["phone"] == "+447911123456"
    assert validate_profile(national, default_region="GB").values["phone"] == "+447911123456"
    assert refused("phone", "07911 123456")[0] is ErrorCode.INVALID_FORMAT
    assert refused("email", "no-at-sign")[0] is ErrorCode.INVALID_FORMAT


def test_visible_marks_and_letters_are_kept() -> None:
    assert accepted("given_name", "Zoe\u0308") == "Zoe\u0308"  # combining diaeresis
    assert accepted("given_name", "\ud55c\uae00") == "\ud55c\uae00"  # Hangul syllables
    assert accepted("given_name", "\u1112\u1161\u11ab") == "\u1112\u1161\u11ab"  # jamo
    assert accepted("family_name", "Nguyễn-O'Brien") == "Nguyễn-O'Brien"
    assert accepted("city", "Zürich 8 ⛰") == "Zürich 8 ⛰"


@pytest.mark.parametrize("field", NAMES)
@pytest.mark.parametrize("raw", ["1234", "---", "...", "42 7", "⛰", "\u0301\u0301"])
def test_a_name_needs_a_letter(field: str, raw: str) -> None:
    assert refused(field, raw) == (ErrorCode.IMPLAUSIBLE, NEEDS_A_LETTER)


@pytest.mark.parametrize("field", NAMES)
def test_a_name_of_one_letter_or_with_digits_is_accepted(field: str) -> None:
    assert accepted(field, "X") == "X"
    assert accepted(field, "R2") == "R2"


# ------------------------------------------------------------------------ length limits


@pytest.mark.parametrize("field", NAMES)
def test_name_length_at_its_limit(field: str) -> None:
    assert accepted(field, "a" * 99) == "a" * 99
    assert accepted(field, "a" * 100) == "a" * 100
    assert refused(field, "a" * 101) == (ErrorCode.TOO_LONG, "At most 100 characters.")


@pytest.mark.parametrize("field", TEXTS)
def test_text_length_at_its_limit(field: str) -> None:
    assert accepted(field, "a" * 199) == "a" * 199
    assert accepted(field, "a" * 200) == "a" * 200
    assert refused(field, "a" * 201) == (ErrorCode.TOO_LONG, "At most 200 characters.")


@pytest.mark.parametrize(("field", "limit"), [("given_name", 100), ("city", 200)])
def test_length_counts_what_remains_after_cleaning(field: str, limit: int) -> None:
    # Invisible characters and repeated or outer spaces do not count...
    assert accepted(field, "a" * limit + "\u200b" * 5) == "a" * limit
    assert accepted(field, "  " + "a" * limit + " \t ") == "a" * limit
    half = limit // 2
    spaced = "a" * half + "     " + "a" * (limit - half - 1)
    assert accepted(field, spaced) == "a" * half + " " + "a" * (limit - half - 1)
    # ...the one space between words does.
    over = "a" * half + " " + "a" * (limit - half)
    assert refused(field, over) == (ErrorCode.TOO_LONG, f"At most {limit} characters.")


def test_a_region_too_long_is_refused_before_any_lookup() -> None:
    result = validate_profile({"country": "US", "region": "c" * 201})
    assert result.values == {"country": "US"}
    assert result.issues == [
        FieldIssue("input.profile.address.region", ErrorCode.TOO_LONG, "At most 200 characters.")
    ]


# ---------------------------------------------------------------------------- birth date

TODAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TOO_OLD = (ErrorCode.IMPLAUSIBLE, "More than 120 years ago.")
FUTURE = (ErrorCode.IMPLAUSIBLE, "A birth date cannot be in the future.")


@pytest.mark.parametrize(
    ("born", "outcome"),
    [
        ("2026-06-15", "2026-06-15"),  # born today
        ("2026-06-16", FUTURE),  # tomorrow
        ("2027-01-01", FUTURE),
        ("1906-06-16", "1906-06-16"),  # 120 years less one day ago
        ("1906-06-15", "1906-06-15"),  # exactly 120 years ago
        ("1906-06-14", TOO_OLD),  # 120 years and one day ago
        ("1906-12-31", "1906-12-31"),
        ("1906-01-01", TOO_OLD),  # 120 years and five months ago
        ("1905-12-31", TOO_OLD),
        ("1850-01-01", TOO_OLD),
    ],
)
def test_birth_date_limits(born: str, outcome: str | tuple[ErrorCode, str]) -> None:
    with clock.frozen_at(TODAY):
        if isinstance(outcome, str):
            assert accepted("birth_date", born) == outcome
        else:
            assert refused("birth_date", born) == outcome


@pytest.mark.parametrize(
    ("today", "born", "ok"),
    [
        # 120 years before 29 February 2020 is 28 February 1900 (1900 has no 29 February).
        (datetime(2020, 2, 29, tzinfo=UTC), "1900-02-28", True),
        (datetime(2020, 2, 29, tzinfo=UTC), "1900-02-27", False),
        (datetime(2020, 2, 29, tzinfo=UTC), "1900-03-01", True),
        # 1904 has one.
        (datetime(2024, 2, 29, tzinfo=UTC), "1904-02-29", True),
        (datetime(2024, 2, 29, tzinfo=UTC), "1904-02-28", False),
        (datetime(2026, 3, 1, tzinfo=UTC), "1906-03-01", True),
        (datetime(2026, 3, 1, tzinfo=UTC), "1906-02-28", False),
        (datetime(2026, 1, 1, tzinfo=UTC), "1906-01-01", True),
        (datetime(2026, 1, 1, tzinfo=UTC), "1905-12-31", False),
    ],
)
def test_the_age_limit_on_leap_days_and_year_ends(today: datetime, born: str, ok: bool) -> None:
    with clock.frozen_at(today):
        if ok:
            assert accepted("birth_date", born) == born
        else:
            assert refused("birth_date", born) == TOO_OLD


def test_today_is_the_utc_date() -> None:
    # 23:30 in New York (UTC-4 in summer) on 15 June is 03:30 UTC on 16 June.
    new_york = timezone(timedelta(hours=-4))
    with clock.frozen_at(datetime(2026, 6, 15, 23, 30, tzinfo=new_york)):
        assert accepted("birth_date", "2026-06-16") == "2026-06-16"
        assert refused("birth_date", "2026-06-17") == FUTURE
        assert accepted("birth_date", "1906-06-16") == "1906-06-16"
        assert refused("birth_date", "1906-06-15") == TOO_OLD


@pytest.mark.parametrize("raw", ["1990-02-30", "31/04/1990", "1990", "soon"])
def test_a_birth_date_that_is_no_date(raw: str) -> None:
    with clock.frozen_at(TODAY):
        assert refused("birth_date", raw) == (ErrorCode.INVALID_FORMAT, NOT_A_DATE)


@pytest.mark.parametrize("raw", ["1990-2-28", "28/02/1990", "28.02.1990", "28 Feb 1990"])
def test_a_birth_date_in_another_unambiguous_form_is_stored_in_iso(raw: str) -> None:
    with clock.frozen_at(TODAY):
        assert accepted("birth_date", raw) == "1990-02-28"


def test_a_birth_date_is_trimmed_and_stripped_of_invisible_characters() -> None:
    with clock.frozen_at(TODAY):
        assert accepted("birth_date", " 1990-02-28\t") == "1990-02-28"
        assert accepted("birth_date", "\ufeff1990-02-28\u200b") == "1990-02-28"


# --------------------------------------------------------------------------- postal code

NOT_A_POSTAL_CODE = (ErrorCode.INVALID_FORMAT, "Not a postal code.")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("123", "123"),  # 3 characters: the shortest
        ("1-2", "1-2"),
        ("1 2", "1 2"),
        ("a b", "A B"),
        ("sw1a 1aa", "SW1A 1AA"),
        (" sw1a   1aa ", "SW1A 1AA"),
        ("10115", "10115"),
        ("20500-0003", "20500-0003"),
        ("A" * 15, "A" * 15),
        ("A" * 16, "A" * 16),  # 16 characters: the longest
        ("A" * 8 + "     " + "B" * 7, "A" * 8 + " " + "B" * 7),  # 16 once spaces collapse
        ("SW1A\u200b 1AA\ufeff", "SW1A 1AA"),
        ("SW1A\t1AA", "SW1A 1AA"),
    ],
)
def test_postal_code_shapes_that_pass(raw: str, clean: str) -> None:
    assert accepted("postal_code", raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "1",
        "12",  # 2 characters: one too short
        "A" * 17,  # one too long
        "A" * 8 + " " + "B" * 8,
        "-12",
        "12-",
        "1_2",
        "1/2",
        "Ä12",
        "١٢٣",  # Arabic-Indic digits
        "12\u200b\u200b",  # 2 once the invisible characters go
        "\u200b\u200b\u200b",
    ],
)
def test_postal_code_shapes_that_fail(raw: str) -> None:
    assert refused("postal_code", raw) == NOT_A_POSTAL_CODE


# ------------------------------------------------------------------------------ countries

UNKNOWN_COUNTRY = (ErrorCode.UNKNOWN_CODE, "Not an ISO 3166 country.")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("DE", "DE"),  # alpha-2
        ("de", "DE"),
        (" fr ", "FR"),
        ("DEU", "DE"),  # alpha-3
        ("deu", "DE"),
        ("GBR", "GB"),
        ("USA", "US"),
        ("276", "DE"),  # numeric
        ("Germany", "DE"),  # English name
        ("germany", "DE"),
        ("United States", "US"),
        ("Korea, Republic of", "KR"),
        ("Côte d'Ivoire", "CI"),
        ("Bolivia", "BO"),  # common name
        ("\ufeffDE", "DE"),  # a byte-order mark from a CSV file
        ("D\u200bE", "DE"),
    ],
)
def test_countries_become_alpha_2(raw: str, code: str) -> None:
    assert accepted("country", raw) == code


@pytest.mark.parametrize("raw", ["Narnia", "ZZ", "ZZZ", "XK", "EU", "D", "DEUT", "999", "\u200b"])
def test_unknown_countries_are_refused(raw: str) -> None:
    assert refused("country", raw) == UNKNOWN_COUNTRY


# -------------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("country", "region", "clean"),
    [
        ("US", "ca", "US-CA"),
        ("US", "CA", "US-CA"),
        ("US", " ca ", "US-CA"),
        ("US", "US-CA", "US-CA"),
        ("US", "us-ca", "US-CA"),
        ("US", "c\u200ba", "US-CA"),
        ("CA", "on", "CA-ON"),
        ("DE", "by", "DE-BY"),
        ("GB", "eng", "GB-ENG"),
        ("FR", "IDF", "FR-IDF"),
        ("usa", "ny", "US-NY"),  # the country is normalized first
        # no subdivision of that country: kept as written (cleaned)
        ("US", "Nowhere", "Nowhere"),
        ("US", "California", "California"),
        ("CA", "CA", "CA"),
        ("FR", "DE-BY", "DE-BY"),  # a subdivision of another country
        ("US", "GB-ENG", "GB-ENG"),
        ("US", "ca-on", "ca-on"),  # another country's, sorting before the country
        ("GB", "us-ca", "us-ca"),  # another country's, sorting after the country
        ("US", "  Bay   Area ", "Bay Area"),
    ],
)
def test_region_becomes_the_countrys_iso_subdivision(country: str, region: str, clean: str) -> None:
    result = validate_profile({"country": country, "region": region})
    assert result.issues == []
    assert result.values["region"] == clean


def test_without_a_valid_country_a_region_is_kept_as_written() -> None:
    assert accepted("region", "ca") == "ca"
    assert accepted("region", " US-CA ") == "US-CA"
    result = validate_profile({"country": "Narnia", "region": "ca"})
    assert result.values == {"region": "ca"}
    assert result.rejected == {"country": "Narnia"}
    assert result.issues == [FieldIssue("input.profile.address.country", *UNKNOWN_COUNTRY)]


@pytest.mark.parametrize(
    "kept",
    [
        "\u3163",  # HANGUL LETTER I, beside the Hangul filler
        "\ufdff",  # ARABIC LIGATURE AZZA WA JALL, beside the variation selectors
    ],
)
def test_letters_next_to_invisible_ones_are_kept(kept: str) -> None:
    assert accepted("given_name", f"A{kept}") == f"A{kept}"
