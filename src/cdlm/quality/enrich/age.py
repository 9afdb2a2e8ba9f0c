"""Birth date → age band, as of an explicit day (never the clock).

Age is counted in whole years: a person born on 29 February turns a year older on 1 March in
years without one. A birth date after ``as_of``, or an age over :data:`MAX_AGE`, gives nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from cdlm.quality.enrich.base import Attribute, text

#: Older than this is a data error, not an age.
MAX_AGE = 130
#: ``YYYY-MM-DD`` plus room for a stray time or basic-format variant ``date.fromisoformat`` takes.
MAX_INPUT = 32


class AgeBand(StrEnum):
    """Age bands used in analysis."""

    UNDER_18 = "under-18"
    FROM_18_TO_24 = "18-24"
    FROM_25_TO_34 = "25-34"
    FROM_35_TO_44 = "35-44"
    FROM_45_TO_54 = "45-54"
    FROM_55_TO_64 = "55-64"
    FROM_65 = "65+"


#: (lowest age in the band, band), youngest first.
AGE_BANDS: Final[tuple[tuple[int, AgeBand], ...]] = (
    (0, AgeBand.UNDER_18),
    (18, AgeBand.FROM_18_TO_24),
    (25, AgeBand.FROM_25_TO_34),
    (35, AgeBand.FROM_35_TO_44),
    (45, AgeBand.FROM_45_TO_54),
    (55, AgeBand.FROM_55_TO_64),
    (65, AgeBand.FROM_65),
)


def age_on(born: date, as_of: date) -> int:
    """Whole years between ``born`` and ``as_of``."""
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def band_of(age: int) -> AgeBand | None:
    """The band of ``age`` in years, or None when it is negative or above :data:`MAX_AGE`."""
    if age < 0 or age > MAX_AGE:
        return None
    band = AGE_BANDS[0][1]
    for lowest, candidate in AGE_BANDS:
        if age >= lowest:
            band = candidate
    return band


@dataclass(frozen=True)
class AgeBandEnricher:
    """Birth date (ISO 8601) → ``age_band`` as of ``as_of``."""

    name: str = "age_band"
    version: int = 1
    reads: tuple[str, ...] = ("birth_date",)
    derives: tuple[Attribute, ...] = (Attribute.AGE_BAND,)

    def derive(self, values: Mapping[str, str], *, as_of: date) -> dict[Attribute, str]:
        """See the module's description."""
        raw = text(values, "birth_date", MAX_INPUT)
        if raw is None:
            return {}
        try:
            born = date.fromisoformat(raw)
        except ValueError:
            return {}
        band = band_of(age_on(born, as_of))
        return {} if band is None else {Attribute.AGE_BAND: band.value}
