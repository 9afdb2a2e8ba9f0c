"""The quality score of a profile: completeness, validity and freshness."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cdlm.quality.fields import COMPLETENESS_FIELDS

FRESH_FOR = timedelta(days=90)
STALE_AFTER = timedelta(days=3 * 365)
WEIGHTS = {"completeness": 0.5, "validity": 0.3, "freshness": 0.2}


@dataclass(frozen=True)
class QualityScore:
    """Each part is between 0 and 1; ``score`` is their weighted sum."""

    completeness: float
    validity: float
    freshness: float
    score: float


def freshness(last_update: datetime | None, now: datetime) -> float:
    """1 within 90 days of the last source update, falling linearly to 0 at three years."""
    if last_update is None:
        return 0.0
    age = now - last_update
    if age <= FRESH_FOR:
        return 1.0
    if age >= STALE_AFTER:
        return 0.0
    return round(1 - (age - FRESH_FOR) / (STALE_AFTER - FRESH_FOR), 4)


def score(
    present: Iterable[str], invalid_only: Iterable[str], last_update: datetime | None, now: datetime
) -> QualityScore:
    """Score a profile from the fields it has and the fields with only refused values."""
    have = set(present)
    refused = set(invalid_only) - have
    completeness = sum(1 for f in COMPLETENESS_FIELDS if f in have) / len(COMPLETENESS_FIELDS)
    considered = len(have) + len(refused)  # disjoint: refused leaves out what is present
    validity = 1.0 if considered == 0 else 1 - len(refused) / considered
    return combine(completeness, validity, freshness(last_update, now))


def combine(completeness: float, validity: float, fresh: float) -> QualityScore:
    """The score of a profile with these parts: their weighted sum (each rounded to 4 places
    after the sum is taken)."""
    total = (
        WEIGHTS["completeness"] * completeness
        + WEIGHTS["validity"] * validity
        + WEIGHTS["freshness"] * fresh
    )
    return QualityScore(round(completeness, 4), round(validity, 4), fresh, round(total, 4))


def last_update(lineage: Mapping[str, Mapping[str, Any]]) -> datetime | None:
    """When a source last supplied a value of the profile (from its lineage)."""
    return max(
        (datetime.fromisoformat(str(entry["collected_at"])) for entry in lineage.values()),
        default=None,
    )


def current(
    completeness: float,
    validity: float,
    lineage: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> QualityScore:
    """The score now of a profile whose stored parts are ``completeness`` and ``validity``
    (freshness changes with time alone, so it is computed when asked)."""
    return combine(completeness, validity, freshness(last_update(lineage), now))
