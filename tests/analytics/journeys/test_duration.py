"""The Duration scalar: ISO 8601 durations of fixed length, canonical output, clear refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.graphql.scalars import format_duration, parse_duration

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [
        ("P7D", timedelta(days=7), "P7D"),
        ("PT36H", timedelta(hours=36), "P1DT12H"),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
        ("PT90M", timedelta(minutes=90), "PT1H30M"),
        ("P2W", timedelta(days=14), "P14D"),
        ("PT0.5S", timedelta(milliseconds=500), "PT0.5S"),
        ("PT1,25S", timedelta(seconds=1.25), "PT1.25S"),
        ("PT0S", timedelta(0), "PT0S"),
        ("P0D", timedelta(0), "PT0S"),
        ("-PT1H", timedelta(hours=-1), "-PT1H"),
        (" P1D ", timedelta(days=1), "P1D"),
    ],
)
def test_durations_are_read_and_written_canonically(
    text: str, value: timedelta, canonical: str
) -> None:
    assert parse_duration(text) == value
    assert format_duration(value) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("P1M", "Years and months are not accepted"),
        ("P1Y2M3D", "Years and months are not accepted"),
        ("-P2Y", "Years and months are not accepted"),
        ("P", "ISO 8601 duration"),
        ("PT", "ISO 8601 duration"),
        ("P1DT", "ISO 8601 duration"),
        ("1D", "ISO 8601 duration"),
        ("P1.5D", "ISO 8601 duration"),
        ("P1W2D", "ISO 8601 duration"),
        ("PT1H1H", "ISO 8601 duration"),
        ("P1H", "ISO 8601 duration"),
        ("seven days", "ISO 8601 duration"),
        ("P\u0663D", "ISO 8601 duration"),  # Arabic-Indic digits are no ISO 8601 digits
        ("P\uff11D", "ISO 8601 duration"),  # nor are full-width ones
        ("PT\u0661H\u0662M", "ISO 8601 duration"),
        ("PT1.\u0665S", "ISO 8601 duration"),
        ("P999999999W", "too long"),
    ],
)
def test_malformed_and_calendar_durations_are_refused_clearly(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(text)


def test_minutes_are_not_mistaken_for_months() -> None:
    assert parse_duration("PT2M") == timedelta(minutes=2)
    assert parse_duration("P1DT2M") == timedelta(days=1, minutes=2)


@given(st.timedeltas(min_value=timedelta(days=-(10**6)), max_value=timedelta(days=10**6)))
def test_every_duration_comes_back_the_same(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
