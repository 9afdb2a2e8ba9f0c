"""Bucket arithmetic of the dashboard (pure): weeks start on Monday, months on the 1st, in UTC,
and the count agrees with the listed buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdlm.insight.buckets import Interval, count, starts, truncate

pytestmark = pytest.mark.pure


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def test_truncation_is_in_utc_with_monday_weeks_and_first_of_month() -> None:
    late_sunday_in_new_york = datetime(2026, 3, 1, 22, tzinfo=timezone(timedelta(hours=-5)))
    assert truncate(late_sunday_in_new_york, Interval.DAY) == _at(2026, 3, 2)
    assert truncate(late_sunday_in_new_york, Interval.WEEK) == _at(2026, 3, 2)
    assert truncate(_at(2026, 3, 1, 23, 59), Interval.WEEK) == _at(2026, 2, 23)
    assert truncate(_at(2026, 2, 28, 23), Interval.MONTH) == _at(2026, 2, 1)
    assert truncate(_at(2024, 12, 31, 23), Interval.WEEK) == _at(2024, 12, 30)


@pytest.mark.parametrize(
    ("start", "end", "interval", "expected"),
    [
        (_at(2026, 3, 2), _at(2026, 3, 5), Interval.DAY, [_at(2026, 3, d) for d in (2, 3, 4)]),
        (
            _at(2026, 3, 2, 12),
            _at(2026, 3, 3, 0, 0, 1),
            Interval.DAY,
            [_at(2026, 3, 2), _at(2026, 3, 3)],
        ),
        (_at(2026, 2, 25), _at(2026, 3, 2), Interval.WEEK, [_at(2026, 2, 23)]),
        (
            _at(2026, 2, 25),
            _at(2026, 3, 2, 0, 0, 1),
            Interval.WEEK,
            [_at(2026, 2, 23), _at(2026, 3, 2)],
        ),
        (_at(2026, 1, 31), _at(2026, 3, 1), Interval.MONTH, [_at(2026, 1, 1), _at(2026, 2, 1)]),
        (_at(2025, 12, 15), _at(2026, 1, 2), Interval.MONTH, [_at(2025, 12, 1), _at(2026, 1, 1)]),
    ],
)
def test_buckets_cover_the_half_open_period(
    start: datetime, end: datetime, interval: Interval, expected: list[datetime]
) -> None:
    assert starts(start, end, interval) == expected
    assert count(start, end, interval) == len(expected)


def test_the_count_of_a_huge_period_needs_no_listing() -> None:
    assert count(_at(1, 1, 1), _at(9999, 12, 31), Interval.MONTH) == 9999 * 12
    assert count(_at(2026, 3, 2), _at(2026, 3, 2), Interval.DAY) == 0
