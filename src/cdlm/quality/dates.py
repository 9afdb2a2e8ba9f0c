"""Calendar dates as people write them: ISO 8601 and the common unambiguous forms.

Accepted (stored as ISO ``YYYY-MM-DD``):

- ISO 8601 calendar dates (``1990-03-14``, ``19900314``; also ISO week dates, ``1990-W11-3``);
- year first with ``-``, ``/`` or ``.`` and one or two digits for month and day
  (``1990/03/14``, ``1990.3.14``): always year, month, day;
- day and month as numbers before a four-digit year, with the same ``/``, ``.`` or ``-``
  twice (``14.03.1990``, ``13/04/1990``, ``3-12-1990``), when only one reading is a date:
  ``13/04/1990`` can only be 13 April. When both day-first and month-first readings are dates
  and differ (``03/04/1990``: 3 April or 4 March?) the date is refused as ambiguous, whatever
  the separator; when they are the same (``04/04/1990``) it is accepted;
- an English month name or its three-letter abbreviation with the day and a four-digit year,
  in any order people use: ``14 March 1990``, ``14th Mar 1990``, ``March 14, 1990``,
  ``14-Mar-1990``, ``1990 March 14``.

Digits are the ASCII 0-9 only (``١٤.٠٣.١٩٩٠`` is refused as not a date). Two-digit years are
refused (which century?). Messages never repeat the value: they are kept in clear with the
refusal while the value is sealed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from cdlm.core.errors import ErrorCode

MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
AMBIGUOUS: Final = (
    "The date is ambiguous: its day and month can be read either way round. Write it as "
    "YYYY-MM-DD (e.g. 1990-04-03 for 3 April 1990)."
)
NOT_A_DATE: Final = (
    "Not a date. Write it as YYYY-MM-DD (e.g. 1990-03-14); unambiguous forms such as "
    "14.03.1990, 14 March 1990 or March 14, 1990 are read too."
)
TWO_DIGIT_YEAR: Final = "Give the year with four digits, e.g. 1990-03-14."

_YEAR_FIRST = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})", re.ASCII)
_YEAR_LAST = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})", re.ASCII)
_SHORT_YEAR = re.compile(r"\d{1,2}([-/.])\d{1,2}\1\d{2}", re.ASCII)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"([a-z]+)\.?"
_YEAR = r"(\d{4})"
_SEP = r"[\s,/.-]+"
_NAMED = (
    (re.compile(f"{_DAY}{_SEP}{_MONTH}{_SEP}{_YEAR}", re.ASCII), (1, 2, 3)),  # 14 March 1990
    (re.compile(f"{_MONTH}{_SEP}{_DAY}{_SEP}{_YEAR}", re.ASCII), (2, 1, 3)),  # March 14, 1990
    (re.compile(f"{_YEAR}{_SEP}{_MONTH}{_SEP}{_DAY}", re.ASCII), (3, 2, 1)),  # 1990 March 14
)


class DateProblem(ValueError):
    """Why a text is not read as a date."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str) -> date:
    """The date ``text`` names (see the module's description); raises :class:`DateProblem`."""
    raw = " ".join(text.split()).lower()
    try:
        return date.fromisoformat(raw.upper())  # ISO week dates have an upper-case W
    except ValueError:
        pass
    if found := _YEAR_FIRST.fullmatch(raw):
        year, month, day = int(found[1]), int(found[3]), int(found[4])
        return _known(_date(year, month, day))
    if found := _YEAR_LAST.fullmatch(raw):
        first, second, year = int(found[1]), int(found[3]), int(found[4])
        readings = {d for d in (_date(year, second, first), _date(year, first, second)) if d}
        if len(readings) > 1:
            raise DateProblem(ErrorCode.INVALID_FORMAT, AMBIGUOUS)
        return _known(readings.pop() if readings else None)
    for pattern, (day_at, month_at, year_at) in _NAMED:
        if (found := pattern.fullmatch(raw)) and found[month_at] in MONTHS:
            month = MONTHS[found[month_at]]
            return _known(_date(int(found[year_at]), month, int(found[day_at])))
    if _SHORT_YEAR.fullmatch(raw):
        raise DateProblem(ErrorCode.INVALID_FORMAT, TWO_DIGIT_YEAR)
    raise DateProblem(ErrorCode.INVALID_FORMAT, NOT_A_DATE)


def _known(found: date | None) -> date:
    if found is None:  # the right shape, but no such day (31 April, 29 February 1990)
        raise DateProblem(ErrorCode.INVALID_FORMAT, NOT_A_DATE)
    return found
