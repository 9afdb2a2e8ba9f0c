"""Rollups of feedback: per period and channel, sentiment, NPS and CSAT, in one SQL aggregate.

Everything is computed from the events' clear columns (``sentiment``, ``nps``, ``csat``, type,
channel, time): nothing is decrypted. Restricted, erased and merged-away customers are left
out, as in analytics runs. Periods are UTC calendar days, ISO weeks (from Monday) or months.

- Sentiment: VADER's compound score; positive from 0.05, negative from -0.05, neutral in
  between (VADER's standard thresholds, :mod:`cdlm.customers.feedback`).
- NPS: promoters (9-10) minus detractors (0-6), as a percentage of the answers (-100 to 100).
- CSAT: the share of satisfied answers (4-5) and the mean answer (1-5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection

from cdlm.core import periods
from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.core.periods import Interval
from cdlm.customers.feedback import NEGATIVE_FROM, POSITIVE_FROM
from cdlm.customers.models import ANALYSABLE

_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class RollupInput:
    """Which feedback to roll up: events of ``types`` that happened in [start, end)."""

    start: datetime
    end: datetime
    interval: Interval
    types: frozenset[str]
    channel: str | None = None


@dataclass(frozen=True)
class Rollup:
    """One period and channel of feedback."""

    period_start: datetime
    channel: str
    feedback: int  #: feedback events
    scored: int  #: of them with a text scored
    average: float | None  #: mean compound score of the scored ones
    positive: int
    neutral: int
    negative: int
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    csat_answers: int
    csat_satisfied: int
    csat_average: float | None

    @property
    def nps(self) -> float | None:
        """Promoters minus detractors, in percent of the answers (None: no answer)."""
        if not self.nps_answers:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.nps_answers

    @property
    def csat_share(self) -> float | None:
        """Share of answers 4 or 5, 0 to 1 (None: no answer)."""
        return self.csat_satisfied / self.csat_answers if self.csat_answers else None


def check(given: RollupInput, path: str = "input") -> tuple[datetime, datetime]:
    """The bounds in UTC, or every problem at once on its camelCase path under ``path``: the
    period's (:func:`cdlm.core.periods.check`: a bound without a time zone or out of range,
    ``to`` not after ``from``, more than :data:`~cdlm.core.periods.MAX_POINTS` periods) and a
    malformed channel."""
    channel = (
        [FieldIssue(f"{path}.channel", ErrorCode.INVALID_FORMAT, "Channels are codes such as web.")]
        if given.channel is not None and not _CHANNEL.fullmatch(given.channel)
        else []
    )
    return periods.check(given.start, given.end, given.interval, path, more=channel)


_ROLLUP = f"""
SELECT date_trunc($4, e.occurred_at, 'UTC') AS period_start, e.channel,
       count(*) AS feedback,
       count(e.sentiment) AS scored,
       avg(e.sentiment) AS average,
       count(*) FILTER (WHERE e.sentiment >= {POSITIVE_FROM}) AS positive,
       count(*) FILTER (WHERE e.sentiment > {NEGATIVE_FROM} AND e.sentiment < {POSITIVE_FROM})
           AS neutral,
       count(*) FILTER (WHERE e.sentiment <= {NEGATIVE_FROM}) AS negative,
       count(e.nps) AS nps_answers,
       count(*) FILTER (WHERE e.nps >= 9) AS promoters,
       count(*) FILTER (WHERE e.nps BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE e.nps <= 6) AS detractors,
       count(e.csat) AS csat_answers,
       count(*) FILTER (WHERE e.csat >= 4) AS csat_satisfied,
       avg(e.csat)::float8 AS csat_average
FROM events e
JOIN customers c ON c.id = e.customer_id
WHERE e.type = ANY($1::text[]) AND e.occurred_at >= $2 AND e.occurred_at < $3
  AND ($5::text IS NULL OR e.channel = $5)
  AND {ANALYSABLE}
GROUP BY 1, 2
ORDER BY 1, 2
"""  # noqa: S608 (only the module's float constants are formatted in)


async def rollup(given: RollupInput) -> list[Rollup]:
    """Feedback per period and channel, oldest first (periods and channels without feedback
    are absent); refused as :func:`check` says."""
    start, end = check(given)
    rows = await get_connection("default").execute_query_dict(
        _ROLLUP,
        [
            sorted(given.types),
            start,
            end,
            given.interval.value,
            given.channel,
        ],
    )
    return [_rollup(row) for row in rows]


def _rollup(row: dict[str, Any]) -> Rollup:
    return Rollup(
        period_start=row["period_start"],
        channel=row["channel"],
        feedback=row["feedback"],
        scored=row["scored"],
        average=row["average"],
        positive=row["positive"],
        neutral=row["neutral"],
        negative=row["negative"],
        nps_answers=row["nps_answers"],
        promoters=row["promoters"],
        passives=row["passives"],
        detractors=row["detractors"],
        csat_answers=row["csat_answers"],
        csat_satisfied=row["csat_satisfied"],
        csat_average=row["csat_average"],
    )
