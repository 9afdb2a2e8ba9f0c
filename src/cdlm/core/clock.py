"""The one clock of cdlm: every rule that depends on time asks :func:`now`.

Deadlines, expiries and retention all read this clock, so tests (and the demo) can move time
with :func:`frozen_at` or :func:`travel` instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Final

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


#: The first and last moments Python holds: the database driver (asyncpg) sends them as
#: -infinity and infinity, so they are not moments cdlm takes from outside.
_ENDLESS: Final = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def to_utc(moment: datetime) -> datetime | None:
    """``moment`` in UTC; None when it has no time zone (ambiguous) or is out of range once in
    UTC (``0001-01-01T00:00:00+14:00``, ``9999-12-31T23:59:59-14:00``: comparing or storing those
    would fail), or is the very first or last moment Python holds (stored as an infinity).
    The one check of every moment the API, files and the command line take in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return None
    return None if utc in _ENDLESS else utc


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("cdlm times must be timezone-aware")
    return moment.astimezone(UTC)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Stop the clock at ``moment`` for the duration of the block."""
    global _frozen
    previous, _frozen = _frozen, _require_aware(moment)
    try:
        yield
    finally:
        _frozen = previous


@contextmanager
def travel(delta: timedelta) -> Iterator[None]:
    """Move the clock by ``delta`` (forward or back) for the duration of the block."""
    global _offset, _frozen
    previous_offset, previous_frozen = _offset, _frozen
    _offset += delta
    if _frozen is not None:
        _frozen += delta
    try:
        yield
    finally:
        _offset, _frozen = previous_offset, previous_frozen
