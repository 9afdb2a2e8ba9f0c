"""An analytics run: score every customer's purchasing as of a moment.

Run by ``cdlm analytics refresh``, ``cdlm worker`` (daily) and the daily Lambda schedule
(:mod:`cdlm.jobs.analytics_refresh`); never by the API (it imports numpy and scipy). One run
at a time: a second is refused while a PostgreSQL advisory lock, held on a connection of its
own for the whole run, says one is going.

``as_of`` is the end of the observation window: only purchase events strictly before it
count, and every age and recency is measured from it, so a past moment can be scored and
checked against what happened after it. The run

1. summarises purchases per customer in ONE SQL aggregate over ``events`` (type, time, amount
   and currency are in clear: nothing is decrypted); restricted, erased and merged-away
   customers are left out;
2. fits BG/NBD and Gamma-Gamma (:mod:`cdlm.analytics.clv`) on that population, in days;
   too little history is not an error: the fit's refusal is the run's ``note`` and only what
   can be computed (RFM) is written;
3. writes RFM quintiles, expected purchases in 90 and 365 days, P(alive), expected value over
   365 days and churn risk to ``customer_attributes`` in batches (one upsert statement per
   batch, ``scored_at`` = as-of), and clears the scores of every customer it did not score;
4. computes every customer's feedback sentiment average again (kept current at ingestion; the
   run catches up events moved by merges or removed by retention, and restrictions).

Purchases are counted per day, as the models' papers do: a customer's repeat purchases are
their purchase days after the first, and the mean repeat amount is what they spent on those
days divided by their number. RFM frequency counts purchase events.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from tortoise.connection import get_connection

from cdlm.analytics import clv, rfm
from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus
from cdlm.analytics.recommendations import model as item_model
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode
from cdlm.customers import attributes
from cdlm.customers.models import ANALYSABLE
from cdlm.db.connection import try_session_lock
from cdlm.insight import snapshots

log = logging.getLogger(__name__)

RUN_LOCK: Final = 0x616E6C79  # "anly"
BATCH: Final = 10_000
#: Horizons of the stored scores, in days.
SHORT_HORIZON: Final = 90.0
LONG_HORIZON: Final = 365.0
#: Churn risk is the probability of no purchase within this many days.
CHURN_HORIZON: Final = 90.0
#: Largest expected value stored (numeric(14, 2)).
_MAX_VALUE: Final = 10**12 - 1


@dataclass(frozen=True)
class RefreshOptions:
    """What a run counts and how."""

    as_of: datetime
    rules: rfm.PurchaseRules
    rates: rfm.ExchangeRates
    min_repeat_buyers: int = clv.MIN_REPEAT_BUYERS
    batch_size: int = BATCH
    items: item_model.ModelOptions = field(default_factory=item_model.ModelOptions)

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")


def options_from(settings: Settings, as_of: datetime | None = None) -> RefreshOptions:
    """The options of the installation's settings, as of ``as_of`` (default: now)."""
    config = settings.analytics
    return RefreshOptions(
        as_of=as_of or clock.now(),
        rules=rfm.PurchaseRules(frozenset(config.purchase_types)),
        rates=rfm.ExchangeRates(config.currency, dict(config.rates)),
        min_repeat_buyers=config.min_repeat_buyers,
        items=item_model.options_from(settings),
    )


async def refresh(options: RefreshOptions) -> AnalyticsRun:
    """One analytics run (refused with ``RUN_IN_PROGRESS`` while another runs); returns its
    evidence."""
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        if not await try_session_lock(connection, RUN_LOCK):
            raise Conflict(
                "An analytics run is already running; this one was not started.",
                code=ErrorCode.RUN_IN_PROGRESS,
            )
        try:
            return await _run(options)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", RUN_LOCK)


async def _run(options: RefreshOptions) -> AnalyticsRun:
    started = time.monotonic()
    # Rows still "running" belong to a process that died (this one holds the lock).
    await AnalyticsRun.filter(status=AnalyticsRunStatus.RUNNING).update(
        status=AnalyticsRunStatus.FAILED, error="Interrupted", finished_at=clock.now()
    )
    evidence = await AnalyticsRun.create(
        id=uuid.uuid4(),
        status=AnalyticsRunStatus.RUNNING,
        as_of=options.as_of,
        started_at=clock.now(),
        purchase_types=sorted(options.rules.event_types),
        currency=options.rates.reporting,
    )
    try:
        await _work(options, evidence)
        evidence.status = AnalyticsRunStatus.FINISHED
    except Exception as error:
        evidence.status = AnalyticsRunStatus.FAILED
        evidence.error = type(error).__name__
        raise
    finally:
        evidence.finished_at = clock.now()
        evidence.duration_seconds = round(time.monotonic() - started, 3)
        await evidence.save()
    return evidence


# --------------------------------------------------------------------------------------------
# 1. Purchases per customer


_SUMMARY = f"""
WITH rates (currency, rate) AS (SELECT * FROM unnest($3::text[], $4::numeric[])),
purchases AS (
    SELECT e.customer_id, e.occurred_at, (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
           e.amount * r.rate AS value,
           CASE WHEN e.amount IS NOT NULL AND r.rate IS NULL
                THEN coalesce(e.currency, $5) END AS skipped
    FROM events e
    JOIN customers c ON c.id = e.customer_id
    LEFT JOIN rates r ON r.currency = coalesce(e.currency, $5)
    WHERE e.type = ANY($1::text[]) AND e.occurred_at < $2
      AND {ANALYSABLE}
),
days AS (
    SELECT customer_id, day, max(occurred_at) AS last_at, count(*) AS purchases,
           sum(value) AS value, string_agg(skipped, ',') AS skipped
    FROM purchases GROUP BY customer_id, day
)
SELECT customer_id,
       count(*) - 1 AS repeat_days,
       max(day) - min(day) AS recency_days,
       extract(epoch FROM $2 - (min(day)::timestamp AT TIME ZONE 'UTC')) / 86400.0 AS age_days,
       floor(extract(epoch FROM $2 - max(last_at)) / 86400.0)::int AS since_last_days,
       sum(purchases)::int AS purchases,
       coalesce(sum(value), 0) AS total,
       coalesce(sum(value), 0) - coalesce((array_agg(value ORDER BY day))[1], 0) AS repeat_total,
       string_agg(skipped, ',') AS skipped
FROM days GROUP BY customer_id ORDER BY customer_id
"""  # noqa: S608 (constants only)


@dataclass(frozen=True)
class Population:
    """Every scorable customer's purchasing as of the run's moment, as columns."""

    ids: list[uuid.UUID]
    histories: clv.PurchaseHistories
    rfm_inputs: dict[int, rfm.RfmInput]
    purchases: int
    skipped: dict[str, int]


async def summarise(options: RefreshOptions) -> Population:
    """The purchases of every customer who may be scored (one statement)."""
    rates = options.rates.rates
    rows = await get_connection("default").execute_query_dict(
        _SUMMARY,
        [
            sorted(options.rules.event_types),
            options.as_of,
            list(rates),
            [rates[c] for c in rates],
            options.rates.reporting,
        ],
    )
    n = len(rows)
    repeat = np.fromiter((r["repeat_days"] for r in rows), dtype=np.float64, count=n)
    recency = np.fromiter((r["recency_days"] for r in rows), dtype=np.float64, count=n)
    age = np.fromiter((r["age_days"] for r in rows), dtype=np.float64, count=n)
    repeat_total = np.fromiter((r["repeat_total"] for r in rows), dtype=np.float64, count=n)
    mean_repeat = np.divide(
        repeat_total, repeat, out=np.zeros(n), where=repeat > 0
    )  # refunds counted as purchases can make it negative: no spend then
    skipped: Counter[str] = Counter()
    for row in rows:
        if row["skipped"]:
            skipped.update(row["skipped"].split(","))
    return Population(
        ids=[r["customer_id"] for r in rows],
        histories=clv.PurchaseHistories.from_arrays(
            repeat, recency, np.maximum(age, recency), np.maximum(mean_repeat, 0.0)
        ),
        rfm_inputs={
            i: rfm.RfmInput(max(int(r["since_last_days"]), 0), int(r["purchases"]), r["total"])
            for i, r in enumerate(rows)
        },
        purchases=sum(int(r["purchases"]) for r in rows),
        skipped=dict(skipped),
    )


# --------------------------------------------------------------------------------------------
# 2. Fits and scores


FloatArray = npt.NDArray[np.float64]


@dataclass
class Scores:
    """Per customer (in the population's order); None: not computed this run."""

    rfm: dict[int, rfm.RfmScore]
    expected_90d: FloatArray | None = None
    expected_365d: FloatArray | None = None
    p_alive: FloatArray | None = None
    churn_risk: FloatArray | None = None
    expected_value_365d: FloatArray | None = None


def score(population: Population, options: RefreshOptions, evidence: AnalyticsRun) -> Scores:
    """Fit the models on the population and score everyone; the fits (or why there are
    none) go into ``evidence``."""
    scores = Scores(rfm=rfm.score(population.rfm_inputs))
    histories = population.histories
    notes: list[str] = []
    bgnbd = clv.fit_bgnbd(histories, min_repeat_buyers=options.min_repeat_buyers)
    if isinstance(bgnbd, clv.InsufficientHistory):
        evidence.note = bgnbd.message
        return scores
    evidence.bgnbd_r, evidence.bgnbd_alpha = bgnbd.r, bgnbd.alpha
    evidence.bgnbd_a, evidence.bgnbd_b = bgnbd.a, bgnbd.b
    evidence.bgnbd_log_likelihood = bgnbd.log_likelihood
    evidence.bgnbd_converged = bgnbd.converged
    scores.expected_90d = clv.expected_purchases(bgnbd, histories, SHORT_HORIZON)
    scores.expected_365d = clv.expected_purchases(bgnbd, histories, LONG_HORIZON)
    scores.p_alive = clv.p_alive(bgnbd, histories)
    scores.churn_risk = clv.churn_risk(bgnbd, histories, CHURN_HORIZON)
    spend = clv.fit_gamma_gamma(histories, min_repeat_buyers=options.min_repeat_buyers)
    if isinstance(spend, clv.InsufficientHistory):
        notes.append(spend.message)
    else:
        evidence.gamma_gamma_p, evidence.gamma_gamma_q = spend.p, spend.q
        evidence.gamma_gamma_v = spend.v
        evidence.gamma_gamma_log_likelihood = spend.log_likelihood
        evidence.gamma_gamma_converged = spend.converged
        if spend.q > 1:
            scores.expected_value_365d = clv.expected_value(bgnbd, spend, histories, LONG_HORIZON)
        else:
            notes.append(
                f"Gamma-Gamma q = {spend.q:.3g} <= 1: the expected spend is unbounded, "
                "no expected value was written"
            )
    evidence.note = "; ".join(notes) or None
    return scores


# --------------------------------------------------------------------------------------------
# 3. Writing


_UPSERT = (
    """
WITH written AS (
INSERT INTO customer_attributes AS a (
    customer_id, rfm_recency, rfm_frequency, rfm_monetary, expected_purchases_90d,
    expected_purchases_365d, p_alive, expected_value_365d, churn_risk, scored_at, derivation)
SELECT u.*, $10::timestamptz, '{}'::jsonb
FROM unnest($1::uuid[], $2::int2[], $3::int2[], $4::int2[], $5::float8[], $6::float8[],
            $7::float8[], $8::numeric[], $9::float8[])
     AS u (customer_id, r, f, m, e90, e365, alive, value, churn)
JOIN customers c ON c.id = u.customer_id
WHERE """
    + ANALYSABLE
    + """
ON CONFLICT (customer_id) DO UPDATE SET
    rfm_recency = EXCLUDED.rfm_recency, rfm_frequency = EXCLUDED.rfm_frequency,
    rfm_monetary = EXCLUDED.rfm_monetary,
    expected_purchases_90d = EXCLUDED.expected_purchases_90d,
    expected_purchases_365d = EXCLUDED.expected_purchases_365d,
    p_alive = EXCLUDED.p_alive, expected_value_365d = EXCLUDED.expected_value_365d,
    churn_risk = EXCLUDED.churn_risk, scored_at = EXCLUDED.scored_at
RETURNING 1)
SELECT count(*) AS n FROM written
"""
)

_CLEAR = """
UPDATE customer_attributes SET rfm_recency = NULL, rfm_frequency = NULL, rfm_monetary = NULL,
    expected_purchases_90d = NULL, expected_purchases_365d = NULL, p_alive = NULL,
    expected_value_365d = NULL, churn_risk = NULL, scored_at = NULL
WHERE scored_at IS NOT NULL AND NOT (customer_id = ANY($1::uuid[]))
"""


def _floats(column: FloatArray | None, rows: range) -> list[float | None]:
    if column is None:
        return [None] * len(rows)
    return [float(v) if math.isfinite(v) else None for v in column[rows.start : rows.stop]]


def _money(column: FloatArray | None, rows: range) -> list[Decimal | None]:
    return [
        None if v is None else Decimal(str(round(min(max(v, 0.0), _MAX_VALUE), 2)))
        for v in _floats(column, rows)
    ]


async def write(population: Population, scores: Scores, options: RefreshOptions) -> tuple[int, int]:
    """Store the scores in batches, then clear everyone else's; returns (written, cleared)."""
    client = get_connection("default")
    written = 0
    for start in range(0, len(population.ids), options.batch_size):
        rows = range(start, min(start + options.batch_size, len(population.ids)))
        quintiles = [scores.rfm[i] for i in rows]
        arguments: list[Any] = [
            population.ids[rows.start : rows.stop],
            [q.r for q in quintiles],
            [q.f for q in quintiles],
            [q.m for q in quintiles],
            _floats(scores.expected_90d, rows),
            _floats(scores.expected_365d, rows),
            _floats(scores.p_alive, rows),
            _money(scores.expected_value_365d, rows),
            _floats(scores.churn_risk, rows),
            options.as_of,
        ]
        _, counted = await client.execute_query(_UPSERT, arguments)
        written += int(counted[0]["n"])
    cleared, _ = await client.execute_query(_CLEAR, [population.ids])
    return written, cleared


async def _work(options: RefreshOptions, evidence: AnalyticsRun) -> None:
    population = await summarise(options)
    evidence.purchases = population.purchases
    evidence.buyers = len(population.ids)
    evidence.repeat_buyers = population.histories.repeat_buyers
    evidence.skipped_amounts = population.skipped
    await evidence.save()
    scores = score(population, options, evidence)
    evidence.customers_scored, evidence.customers_cleared = await write(population, scores, options)
    await attributes.refresh_all_sentiment()
    await item_model.refresh(options.rules.event_types, options.as_of, options.items, evidence)
    await snapshots.take(evidence.id)  # the quality figures of the day, for the dashboard
    log.info(
        "analytics run finished",
        extra={"run_id": str(evidence.id), "scored": evidence.customers_scored},
    )


def evidence_json(run: AnalyticsRun) -> dict[str, Any]:
    """The evidence as plain JSON (for the Lambda result and the CLI)."""
    return {
        "run_id": str(run.id),
        "status": run.status.value,
        "as_of": run.as_of.isoformat(),
        "customers_scored": run.customers_scored,
        "customers_cleared": run.customers_cleared,
        "purchases": run.purchases,
        "buyers": run.buyers,
        "repeat_buyers": run.repeat_buyers,
        "skipped_amounts": dict(run.skipped_amounts),
        "duration_seconds": run.duration_seconds,
        "bgnbd": None
        if run.bgnbd_r is None
        else {
            "r": run.bgnbd_r,
            "alpha": run.bgnbd_alpha,
            "a": run.bgnbd_a,
            "b": run.bgnbd_b,
            "log_likelihood": run.bgnbd_log_likelihood,
            "converged": run.bgnbd_converged,
        },
        "gamma_gamma": None
        if run.gamma_gamma_p is None
        else {
            "p": run.gamma_gamma_p,
            "q": run.gamma_gamma_q,
            "v": run.gamma_gamma_v,
            "log_likelihood": run.gamma_gamma_log_likelihood,
            "converged": run.gamma_gamma_converged,
        },
        "note": run.note,
    }
