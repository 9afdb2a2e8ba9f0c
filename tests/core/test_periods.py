"""Report periods (pure): weeks start on Monday, months on the 1st, in UTC; the count agrees with
the listed buckets; :func:`check` lists every problem of a period at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed
from cdlm.core.periods import MAX_POINTS, Interval, check, count, following, starts, truncate

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


def test_the_last_buckets_before_the_year_10000_end_the_listing() -> None:
    assert following(_at(2025, 12, 1), Interval.MONTH) == _at(2026, 1, 1)
    with pytest.raises(OverflowError):
        following(_at(9999, 12, 1), Interval.MONTH)
    end = datetime.max.replace(tzinfo=UTC)
    assert starts(_at(9999, 11, 15), end, Interval.MONTH) == [_at(9999, 11, 1), _at(9999, 12, 1)]
    assert starts(_at(9999, 12, 30), end, Interval.DAY) == [_at(9999, 12, 30), _at(9999, 12, 31)]
    assert count(_at(9999, 12, 30), end, Interval.DAY) == 2


def _issues(*args: Any, **kwargs: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        check(*args, **kwargs)
    return [(i.field, i.code.value, i.message) for i in refused.value.issues]


def test_a_good_period_comes_back_in_utc() -> None:
    in_new_york = timezone(timedelta(hours=-5))
    start, end = check(datetime(2026, 3, 1, 22, tzinfo=in_new_york), _at(2026, 3, 5), Interval.DAY)
    assert (start, end) == (_at(2026, 3, 2, 3), _at(2026, 3, 5))
    assert start.tzinfo is UTC


def test_the_most_buckets_are_allowed_and_one_more_is_not() -> None:
    start = _at(2024, 1, 1)
    assert check(start, start + timedelta(days=MAX_POINTS), Interval.DAY)[1] == _at(2026, 9, 27)
    ((field, code, message),) = _issues(
        start, start + timedelta(days=MAX_POINTS, microseconds=1), Interval.DAY, "filter"
    )
    assert (field, code) == ("filter.interval", "TOO_MANY_ITEMS")
    assert message.startswith("The period has 1001 days; at most 1000")


@pytest.mark.parametrize(
    ("start", "end", "field", "code"),
    [
        (None, _at(2026, 3, 5), "input.from", "REQUIRED"),
        (_at(2026, 3, 5), None, "input.to", "REQUIRED"),
        (datetime(2026, 3, 2), _at(2026, 3, 5), "input.from", "INVALID_FORMAT"),
        (_at(2026, 3, 5), _at(2026, 3, 5), "input.to", "VALIDATION"),
        (_at(2026, 3, 6), _at(2026, 3, 5), "input.to", "VALIDATION"),
    ],
)
def test_each_problem_is_on_its_path(
    start: datetime | None, end: datetime | None, field: str, code: str
) -> None:
    assert [(f, c) for f, c, _ in _issues(start, end, Interval.DAY)] == [(field, code)]


def test_moments_out_of_range_once_in_utc_are_refused_not_crashed() -> None:
    earliest = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    latest = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    assert _issues(earliest, latest, Interval.MONTH) == [
        ("input.from", "INVALID_FORMAT", "The moment is out of range once in UTC."),
        ("input.to", "INVALID_FORMAT", "The moment is out of range once in UTC."),
    ]
    # The database reads the very first and last moments as -infinity and infinity.
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    assert [(f, c) for f, c, _ in _issues(first, _at(1, 1, 2), Interval.DAY)] == [
        ("input.from", "INVALID_FORMAT")
    ]
    assert [(f, c) for f, c, _ in _issues(_at(9999, 12, 1), last, Interval.MONTH)] == [
        ("input.to", "INVALID_FORMAT")
    ]
    tick = timedelta(microseconds=1)
    assert check(first + tick, _at(1, 1, 2), Interval.DAY) == (first + tick, _at(1, 1, 2))
    assert check(_at(9999, 12, 1), last - tick, Interval.MONTH)[1] == last - tick


def test_every_problem_is_listed_at_once_with_the_others_of_the_input() -> None:
    extra = FieldIssue("input.channel", ErrorCode.INVALID_FORMAT, "Channels are codes.")
    found = _issues(
        datetime(2026, 3, 2),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),
        Interval.WEEK,
        more=[extra],
    )
    assert [(f, c) for f, c, _ in found] == [
        ("input.from", "INVALID_FORMAT"),
        ("input.to", "INVALID_FORMAT"),
        ("input.channel", "INVALID_FORMAT"),
    ]
    with pytest.raises(ValidationFailed) as refused:
        check(None, _at(2026, 3, 1), Interval.DAY, more=[extra])
    assert refused.value.message == "2 fields are invalid"
    assert refused.value.field == "input.from"


MONDAY = _at(2026, 6, 1)


@pytest.mark.parametrize(
    ("start", "end", "interval", "expected"),
    [
        (MONDAY, MONDAY + timedelta(days=1), Interval.DAY, 1),
        (MONDAY, MONDAY + timedelta(days=1, seconds=1), Interval.DAY, 2),
        (MONDAY + timedelta(hours=23), MONDAY + timedelta(hours=25), Interval.DAY, 2),
        (MONDAY, MONDAY + timedelta(days=7), Interval.WEEK, 1),
        (MONDAY - timedelta(days=1), MONDAY + timedelta(days=1), Interval.WEEK, 2),
        (MONDAY, _at(2026, 7, 1), Interval.MONTH, 1),
        (_at(2025, 12, 31), _at(2026, 1, 2), Interval.MONTH, 2),
    ],
)
def test_buckets_touched(start: datetime, end: datetime, interval: Interval, expected: int) -> None:
    assert count(start, end, interval) == expected
    assert len(starts(start, end, interval)) == expected
