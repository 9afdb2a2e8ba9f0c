"""The single clock: frozen and moved time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdlm.core import clock


def test_now_is_aware_utc() -> None:
    assert clock.now().tzinfo is UTC


def test_frozen_and_travel_compose_and_restore() -> None:
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with clock.frozen_at(moment):
        assert clock.now() == moment
        with clock.travel(timedelta(days=31)):
            assert clock.now() == moment + timedelta(days=31)
        assert clock.now() == moment
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_travel_moves_the_running_clock() -> None:
    with clock.travel(timedelta(days=-400)):
        assert clock.now() < datetime.now(UTC) - timedelta(days=399)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"), clock.frozen_at(datetime(2026, 1, 1)):
        pass


def test_to_utc_gives_the_moment_in_utc_or_none_when_it_cannot() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert clock.to_utc(datetime(2026, 3, 1, 12, tzinfo=plus_two)) == datetime(
        2026, 3, 1, 10, tzinfo=UTC
    )
    assert clock.to_utc(datetime(2026, 3, 1, 12, tzinfo=plus_two)).tzinfo is UTC  # type: ignore[union-attr]
    assert clock.to_utc(datetime(2026, 3, 1, 12)) is None  # no zone: ambiguous
    # In range where given, out of it once in UTC.
    assert clock.to_utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))) is None
    assert (
        clock.to_utc(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=14)))) is None
    )
    assert clock.to_utc(datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)) == datetime(
        1, 1, 1, 0, 0, 1, tzinfo=UTC
    )
    # The very first and last moments are infinities to the database: refused.
    assert clock.to_utc(datetime.min.replace(tzinfo=UTC)) is None
    assert clock.to_utc(datetime.max.replace(tzinfo=UTC)) is None
