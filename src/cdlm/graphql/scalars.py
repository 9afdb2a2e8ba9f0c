"""Custom scalars of the API, registered on the schema through ``StrawberryConfig.scalar_map``
(:data:`SCALARS`); annotate a field or argument with the ``NewType`` (``within: Duration``).

``Duration`` is an ISO 8601 duration of fixed length: weeks (``P2W``), days, hours, minutes
and seconds (``P7D``, ``PT36H``, ``P1DT2H30M``, ``PT0.5S``), with an optional leading ``-``.
Years and months are refused: they have no fixed length (28 to 31 days, 365 or 366), so a
window "within P1M" would mean different things for different customers. A day is 24 hours
(every moment in cdlm is UTC). Values are written back in one canonical form: days, then the
time part with hours below 24, minutes and seconds below 60 (``PT36H`` is ``P1DT12H``; zero
is ``PT0S``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

#: A length of time (a :class:`datetime.timedelta` in Python).
Duration = NewType("Duration", timedelta)

_FORMAT: Final = (
    "Give an ISO 8601 duration in weeks, days, hours, minutes and seconds, such as P7D, "
    "PT36H or P1DT2H30M"
)
_COMPONENT: Final = r"\d{1,9}"
_PATTERN: Final = re.compile(
    rf"(?P<sign>-)?P(?:(?P<weeks>{_COMPONENT})W"
    rf"|(?:(?P<days>{_COMPONENT})D)?"
    rf"(?:T(?=\d)(?:(?P<hours>{_COMPONENT})H)?(?:(?P<minutes>{_COMPONENT})M)?"
    rf"(?:(?P<seconds>{_COMPONENT}(?:[.,]\d{{1,6}})?)S)?)?)",
    re.ASCII,  # digits 0-9 only: int() would read other scripts' digits too
)
#: A date part naming years or months (``P1Y``, ``P2M``, ``P1Y2M3D``), told apart from
#: minutes (``PT2M``) to say why it is refused.
_CALENDAR: Final = re.compile(r"-?P(?:\d+[.,]?\d*[YMD])*?\d+[.,]?\d*[YM]", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` means; :class:`ValueError` with what to write instead when it is
    not a fixed-length ISO 8601 duration."""
    if not isinstance(text, str):
        raise ValueError(f"{_FORMAT} as a string.")
    value = text.strip()
    match = _PATTERN.fullmatch(value)
    if match is None or value.rstrip("T").endswith("P") or value.endswith("T"):
        if _CALENDAR.match(value):
            raise ValueError(
                "Years and months are not accepted: they have no fixed length. "
                f"{_FORMAT} (e.g. P30D instead of P1M)."
            )
        raise ValueError(f"{_FORMAT}.")
    parts = match.groupdict()
    seconds = Decimal((parts["seconds"] or "0").replace(",", "."))
    try:
        found = timedelta(
            weeks=int(parts["weeks"] or 0),
            days=int(parts["days"] or 0),
            hours=int(parts["hours"] or 0),
            minutes=int(parts["minutes"] or 0),
            seconds=int(seconds),
            microseconds=int((seconds - int(seconds)) * 1_000_000),
        )
    except OverflowError:
        raise ValueError("The duration is too long.") from None
    return -found if parts["sign"] else found


def format_duration(value: timedelta) -> str:
    """``value`` in the canonical ISO 8601 form (``P1DT2H30M``, ``PT0.5S``, ``-PT1H``)."""
    sign = "-" if value < timedelta(0) else ""
    whole = abs(value)
    days = whole.days
    minutes, seconds = divmod(whole.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or whole.microseconds:
        fraction = f".{whole.microseconds:06d}".rstrip("0") if whole.microseconds else ""
        time += f"{seconds}{fraction}S"
    if not days and not time:
        return "PT0S"
    return f"{sign}P{f'{days}D' if days else ''}{f'T{time}' if time else ''}"


def _serialize(value: Any) -> str:
    if not isinstance(value, timedelta):
        raise TypeError("a Duration is a timedelta")
    return format_duration(value)


DURATION_SCALAR: Final[ScalarDefinition] = strawberry.scalar(
    name="Duration",
    description="A fixed length of time as an ISO 8601 duration: weeks, days, hours, minutes "
    "and seconds (`P7D`, `PT36H`, `P1DT2H30M`, `PT0.5S`; a leading `-` makes it negative). "
    "A day is 24 hours. Years and months are refused because their length varies (write "
    "`P30D`, not `P1M`). Returned in canonical form: days, then hours below 24, minutes and "
    "seconds below 60 (`PT36H` comes back as `P1DT12H`, zero as `PT0S`).",
    specified_by_url="https://en.wikipedia.org/wiki/ISO_8601#Durations",
    serialize=_serialize,
    parse_value=parse_duration,
)

#: Every custom scalar, by the Python type annotations use (``StrawberryConfig.scalar_map``).
SCALARS: Final[dict[object, ScalarDefinition]] = {Duration: DURATION_SCALAR}
