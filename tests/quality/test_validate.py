"""Validation and normalization of profile values, and the quality score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdlm.core import clock
from cdlm.quality import score as quality
from cdlm.quality.validate import validate_profile


@pytest.mark.parametrize(
    ("field", "raw", "clean"),
    [
        ("given_name", "  Jean-Luc \t ", "Jean-Luc"),
        ("family_name", "O'Brien", "O'Brien"),
        ("email", " Mixed.Case@Example.ORG ", "mixed.case@example.org"),
        ("phone", "+1 (202) 456-1111", "+12024561111"),
        ("birth_date", "1990-02-28", "1990-02-28"),
        ("country", "deu", "DE"),
        ("country", "France", "FR"),
        ("postal_code", " sw1a   1aa ", "SW1A 1AA"),
        ("city", "  São   Paulo ", "São Paulo"),
    ],
)
def test_values_are_normalized(field: str, raw: str, clean: str) -> None:
    result = validate_profile({field: raw})
    assert result.issues == []
    assert result.values == {field: clean}


def test_phone_in_national_format_uses_the_country() -> None:
    result = validate_profile({"phone": "07911 123456", "country": "GB"})
    assert result.values["phone"] == "+447911123456"
    without_country = validate_profile({"phone": "07911 123456"})
    assert without_country.values == {}
    assert without_country.issues[0].field == "input.profile.phone"


def test_region_becomes_an_iso_subdivision_when_known() -> None:
    assert validate_profile({"country": "US", "region": "ca"}).values["region"] == "US-CA"
    assert validate_profile({"country": "US", "region": "Nowhere"}).values["region"] == "Nowhere"


@pytest.mark.parametrize(
    ("field", "raw", "code", "path"),
    [
        ("given_name", "1234", "IMPLAUSIBLE", "input.profile.givenName"),
        ("given_name", "x" * 101, "TOO_LONG", "input.profile.givenName"),
        ("email", "no-at-sign", "INVALID_FORMAT", "input.profile.email"),
        ("email", "test@test.com", "BLOCKED_IDENTIFIER", "input.profile.email"),
        ("phone", "+44 12", "INVALID_FORMAT", "input.profile.phone"),
        ("birth_date", "12/03/1990", "INVALID_FORMAT", "input.profile.birthDate"),
        ("birth_date", "1850-01-01", "IMPLAUSIBLE", "input.profile.birthDate"),
        ("country", "Narnia", "UNKNOWN_CODE", "input.profile.address.country"),
        ("postal_code", "!!", "INVALID_FORMAT", "input.profile.address.postalCode"),
    ],
)
def test_invalid_values_are_refused_with_path_and_code(
    field: str, raw: str, code: str, path: str
) -> None:
    result = validate_profile({field: raw})
    assert result.values == {}
    assert [(i.field, i.code.value) for i in result.issues] == [(path, code)]
    assert result.rejected == {field: raw}


def test_future_birth_date_moves_with_the_clock() -> None:
    with clock.frozen_at(datetime(2000, 1, 1, tzinfo=UTC)):
        assert validate_profile({"birth_date": "2001-01-01"}).issues[0].code == "IMPLAUSIBLE"
    assert validate_profile({"birth_date": "2001-01-01"}).issues == []


def test_blank_values_are_ignored_and_unknown_fields_are_a_programming_error() -> None:
    assert validate_profile({"given_name": "   ", "email": None}).values == {}
    with pytest.raises(ValueError, match="unknown profile fields"):
        validate_profile({"shoe_size": "44"})


def test_score_parts() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    full = quality.score(
        [
            "given_name",
            "family_name",
            "email",
            "phone",
            "birth_date",
            "address_line1",
            "city",
            "postal_code",
            "country",
        ],
        [],
        now,
        now,
    )
    assert full == quality.QualityScore(1.0, 1.0, 1.0, 1.0)
    half_invalid = quality.score(["email"], ["phone"], now, now)
    assert half_invalid.validity == 0.5
    assert quality.freshness(now - timedelta(days=30), now) == 1.0
    assert quality.freshness(now - timedelta(days=4 * 365), now) == 0.0
    assert 0 < quality.freshness(now - timedelta(days=400), now) < 1
    assert quality.freshness(None, now) == 0.0
