"""Legal clocks: month arithmetic, pauses, extensions, overdue, CCPA acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.dsr.deadlines import (
    ClockRule,
    Jurisdiction,
    RequestClock,
    add_business_days,
    add_months,
)

JAN_31 = datetime(2026, 1, 31, 9, tzinfo=UTC)


def test_one_month_ends_on_the_same_day_or_the_months_last_day() -> None:
    assert add_months(datetime(2026, 3, 15, tzinfo=UTC), 1) == datetime(2026, 4, 15, tzinfo=UTC)
    assert add_months(JAN_31, 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("jurisdiction", "due", "extended"),
    [
        (
            Jurisdiction.GDPR,
            datetime(2026, 2, 28, 9, tzinfo=UTC),
            datetime(2026, 4, 28, 9, tzinfo=UTC),
        ),
        (
            Jurisdiction.UK_GDPR,
            datetime(2026, 2, 28, 9, tzinfo=UTC),
            datetime(2026, 4, 28, 9, tzinfo=UTC),
        ),
        (Jurisdiction.CCPA, JAN_31 + timedelta(days=45), JAN_31 + timedelta(days=90)),
        (Jurisdiction.LGPD, JAN_31 + timedelta(days=15), None),
    ],
)
def test_due_dates_and_extensions(
    jurisdiction: Jurisdiction, due: datetime, extended: datetime | None
) -> None:
    clock = RequestClock(JAN_31, jurisdiction)
    assert clock.due_at(JAN_31) == due
    if extended is None:
        assert not clock.can_extend(JAN_31)
    else:
        assert clock.can_extend(JAN_31)
        longer = clock.extend()
        assert longer.due_at(JAN_31) == extended
        assert not longer.can_extend(JAN_31)
    assert not clock.can_extend(due + timedelta(seconds=1))


def test_waiting_on_the_requester_stops_a_clock_that_may_pause() -> None:
    clock = RequestClock(JAN_31, Jurisdiction.GDPR, custom_rule=ClockRule(days=15))
    paused = clock.pause(JAN_31 + timedelta(days=2))
    assert paused.paused()
    assert paused.pause(JAN_31 + timedelta(days=3)) == paused
    later = JAN_31 + timedelta(days=40)
    assert not paused.overdue(later)  # a paused request is never overdue
    resumed = paused.resume(JAN_31 + timedelta(days=7))
    assert resumed.resume(JAN_31 + timedelta(days=9)) == resumed
    assert resumed.due_at(later) == JAN_31 + timedelta(days=15 + 5)
    assert resumed.days_left(JAN_31 + timedelta(days=18)) == 2
    assert resumed.overdue(JAN_31 + timedelta(days=20, seconds=1))
    assert resumed.days_left(JAN_31 + timedelta(days=22)) == -2


@pytest.mark.parametrize("jurisdiction", [Jurisdiction.CCPA, Jurisdiction.LGPD])
def test_a_clock_that_runs_from_receipt_never_pauses(jurisdiction: Jurisdiction) -> None:
    clock = RequestClock(JAN_31, jurisdiction)
    assert clock.pause(JAN_31 + timedelta(days=2)) == clock
    assert not clock.paused()
    assert clock.resume(JAN_31 + timedelta(days=3)) == clock


def test_ccpa_receipt_is_confirmed_within_ten_business_days() -> None:
    friday = datetime(2026, 11, 20, 12, tzinfo=UTC)
    clock = RequestClock(friday, Jurisdiction.CCPA)
    assert clock.acknowledge_by() == datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert RequestClock(friday, Jurisdiction.GDPR).acknowledge_by() is None
    assert add_business_days(friday, 1) == datetime(2026, 11, 23, 12, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=36),
)
def test_adding_months_never_goes_back_and_keeps_the_time(moment: datetime, months: int) -> None:
    later = add_months(moment, months)
    assert later >= moment
    assert later.time() == moment.time()
    assert (later.year - moment.year) * 12 + later.month - moment.month == months
