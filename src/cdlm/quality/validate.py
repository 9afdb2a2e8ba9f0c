"""Validation and normalization of profile values.

Each field is checked and put in canonical form (trimmed names, lower-cased email, E.164 phone,
ISO 3166 country code, ISO birth date read from the common unambiguous forms
(:mod:`cdlm.quality.dates`), postal code in its country's format (:mod:`cdlm.quality.postcodes`)).
A value that fails is kept out of the profile and reported with a field path and code; the caller
stores it (encrypted) with its reason. Messages never repeat the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.core.identifiers import InvalidIdentifier, normalize_email, normalize_phone
from cdlm.quality.dates import DateProblem, parse_date
from cdlm.quality.fields import INPUT_PATHS, PROFILE_FIELDS
from cdlm.quality.postcodes import rules_for

MAX_NAME = 100
MAX_TEXT = 200
MAX_AGE_YEARS = 120
_POSTAL = re.compile(r"^[A-Z0-9][A-Z0-9 -]{1,14}[A-Z0-9]$")


class _Invalid(ValueError):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ValidatedProfile:
    """Clean values, the problems found, and the raw values that were refused."""

    values: dict[str, str] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


#: Unicode's default-ignorable code points (DerivedCoreProperties.txt) that are not control
#: or format characters: fillers and selectors that are letters or marks but show nothing, so a
#: "name" made of them would pass as one. (The control and format ones go by category.)
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors (and vowel separator)
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_IGNORABLE = frozenset(
    chr(point) for first, last in _IGNORABLE_RANGES for point in range(first, last + 1)
)
#: Characters that show as an empty space but are no whitespace to ``str.split``.
_BLANK = frozenset({"\u2800"})  # braille pattern blank


def _visible(raw: str) -> str:
    """``raw`` as it shows: whitespace and blanks become spaces (so they still separate
    words), control and format characters (zero-width spaces, direction marks, byte-order
    marks, soft hyphens) and the other default-ignorable code points are dropped."""
    kept: list[str] = []
    for ch in raw:
        if ch.isspace() or ch in _BLANK:
            kept.append(" ")
        elif ch not in _IGNORABLE and unicodedata.category(ch)[0] != "C":
            kept.append(ch)
    return "".join(kept)


def _clean_text(raw: str, limit: int) -> str:
    text = " ".join(_visible(raw).split())
    if not text:
        raise _Invalid(ErrorCode.IMPLAUSIBLE, "Only invisible characters.")
    if len(text) > limit:
        raise _Invalid(ErrorCode.TOO_LONG, f"At most {limit} characters.")
    return text


def _name(raw: str) -> str:
    text = _clean_text(raw, MAX_NAME)
    if not any(ch.isalpha() for ch in text):
        raise _Invalid(ErrorCode.IMPLAUSIBLE, "A name needs at least one letter.")
    return text


def _birth_date(raw: str) -> str:
    try:
        born = parse_date(_visible(raw))
    except DateProblem as problem:
        raise _Invalid(problem.code, problem.message) from None
    today = clock.now().date()
    if born > today:
        raise _Invalid(ErrorCode.IMPLAUSIBLE, "A birth date cannot be in the future.")
    if born < _years_before(today, MAX_AGE_YEARS):
        raise _Invalid(ErrorCode.IMPLAUSIBLE, f"More than {MAX_AGE_YEARS} years ago.")
    return born.isoformat()


def _years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (28 February for a 29 February with none)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def country_code(raw: str) -> str:
    """ISO 3166-1 alpha-2 code for a code or English name; raises for unknown countries."""
    import pycountry  # not needed at start-up

    try:
        # Any case of an alpha-2, alpha-3 or numeric code, or a name.
        found = pycountry.countries.lookup(_visible(raw).strip())
    except LookupError:
        raise _Invalid(ErrorCode.UNKNOWN_CODE, "Not an ISO 3166 country.") from None
    code: str = found.alpha_2
    return code


def _region(raw: str, country: str | None) -> str:
    text = _clean_text(raw, MAX_TEXT)
    if country is None:
        return text
    import pycountry

    code = f"{country}-{text.upper()}"
    lookup: Any = pycountry.subdivisions.get
    subdivision = lookup(code=code) or lookup(code=text.upper())
    if subdivision is not None and subdivision.country_code == country:
        return str(subdivision.code)
    return text


def postal_code(raw: str, country: str | None = None) -> str:
    """The postal code in the canonical form of ``country`` (when its rules are known, see
    :mod:`cdlm.quality.postcodes`), else checked for the generic shape; raises when refused."""
    text = " ".join(_visible(raw).upper().split())
    if not _POSTAL.fullmatch(text):
        raise _Invalid(ErrorCode.INVALID_FORMAT, "Not a postal code.")
    rules = rules_for(country) if country else None
    if rules is None:
        return text
    normalized = rules.normalize(text)
    if normalized is None:
        raise _Invalid(
            ErrorCode.INVALID_FORMAT,
            f"Not a postal code of {country}; they look like {rules.example}.",
        )
    return normalized


def validate_profile(
    raw: Mapping[str, str | None],
    *,
    prefix: str = "input.profile",
    default_region: str | None = None,
) -> ValidatedProfile:
    """Check and normalize every given field of ``raw`` (keys of ``PROFILE_FIELDS``)."""
    result = ValidatedProfile()
    given = {name: value for name, value in raw.items() if value is not None and value.strip()}
    unknown = set(given) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"unknown profile fields: {sorted(unknown)}")

    def attempt(name: str, check: object) -> None:
        value = given[name]
        try:
            result.values[name] = check(value)  # type: ignore[operator]
        except (_Invalid, InvalidIdentifier) as problem:
            path = f"{prefix}.{INPUT_PATHS[name]}"
            result.issues.append(FieldIssue(path, problem.code, problem.message))
            result.rejected[name] = value

    if "country" in given:
        attempt("country", country_code)
    country = result.values.get("country")
    region_for_phone = country or default_region
    checks: dict[str, object] = {
        "given_name": _name,
        "family_name": _name,
        "email": lambda v: normalize_email(v).value,
        "phone": lambda v: normalize_phone(v, region_for_phone).value,
        "birth_date": _birth_date,
        "address_line1": lambda v: _clean_text(v, MAX_TEXT),
        "address_line2": lambda v: _clean_text(v, MAX_TEXT),
        "city": lambda v: _clean_text(v, MAX_TEXT),
        "region": lambda v: _region(v, country),
        "postal_code": lambda v: postal_code(v, country),
    }
    for name, check in checks.items():
        if name in given:
            attempt(name, check)
    return result
