"""Analytics refresh: throughput of a run and the accuracy of its scores on held-out data.

Customers' purchases are simulated from known BG/NBD and Gamma-Gamma parameters (each one's
first purchase falls in the calibration window; after it, purchases come at a gamma-distributed
rate and each repeat purchase may be the last) over a calibration window and the holdout after
it. The rows are loaded straight into ``customers`` and ``events`` with SQL (the run reads only
the columns kept in clear; nothing is decrypted), then ``cdlm analytics refresh --as-of
<calibration end>`` runs, and the scores are compared with what happened in the holdout:

- customers/s and the run's duration;
- per-customer MAE of ``expectedPurchases90d`` against the purchase days in the 90-day holdout,
  and the totals of predicted and actual purchases;
- churn AUC (no purchase in the holdout) of ``churnRisk`` against the plain days-since-last-
  purchase baseline.

``python -m bench.analytics_refresh --customers 100000 --events 2000000`` (the defaults; target:
at most 2 minutes on 2 cores); smaller: ``--customers 5000 --events 100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from tortoise.connection import get_connection

from bench.bulk import copy_rows, placeholder_customers
from bench.support import benchmark_workspace, report
from cdlm.analytics import clv
from cdlm.config import AnalyticsSettings
from cdlm.jobs.analytics_refresh import run_once

CALIBRATION_DAYS = 365.0
HOLDOUT_DAYS = 90.0
#: The population's true parameters (time in days; alpha is tuned to the wanted event count).
R, A, B = 1.2, 0.4, 5.0
SPEND = (6.0, 4.0, 15.0)  # p, q, v: mean purchase value p·v/(q-1) = 30


@dataclass(frozen=True)
class Simulated:
    """Purchase times (days from the calibration start) and values, by customer position."""

    customer: npt.NDArray[np.int64]
    day: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]


def simulate(rng: np.random.Generator, customers: int, alpha: float) -> Simulated:
    """Every customer's purchases up to the holdout's end."""
    end = CALIBRATION_DAYS + HOLDOUT_DAYS
    first = rng.uniform(0.0, CALIBRATION_DAYS - 30.0, customers)
    rate = rng.gamma(R, 1.0 / alpha, customers)
    dropout = rng.beta(A, B, customers)
    p, q, v = SPEND
    nu = rng.gamma(q, 1.0 / v, customers)
    owners = [np.arange(customers)]
    days = [first]
    clock = first.copy()
    active = np.ones(customers, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / np.maximum(rate[idx], 1e-300))
        over = clock[idx] > end
        active[idx[over]] = False
        bought = idx[~over]
        owners.append(bought)
        days.append(clock[bought].copy())
        gone = rng.random(bought.shape[0]) < dropout[bought]
        active[bought[gone]] = False
    customer = np.concatenate(owners)
    return Simulated(customer, np.concatenate(days), rng.gamma(p, 1.0 / nu[customer]))


def tuned_alpha(rng: np.random.Generator, per_customer: float) -> float:
    """An alpha giving about ``per_customer`` purchases each (three pilot simulations)."""
    alpha = 30.0
    for _ in range(3):
        pilot = simulate(rng, 4000, alpha)
        mean = pilot.customer.shape[0] / 4000
        alpha *= max(mean - 1.0, 0.05) / max(per_customer - 1.0, 0.05)
    return alpha


async def load(simulated: Simulated, customers: int, start: datetime) -> None:
    """Customers and their purchase events, straight into the tables (placeholder sealed
    profiles: the run never opens them)."""
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        await connection.execute("CREATE TABLE bench_purchases (n int, day float8, value numeric)")
        await placeholder_customers(connection, customers, start)
        rows = list(
            zip(
                simulated.customer.tolist(),
                simulated.day.tolist(),
                np.round(simulated.value, 2).tolist(),
                strict=True,
            )
        )
        await copy_rows(connection, "bench_purchases", rows)
        await connection.execute(
            "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
            "amount, currency, source_system) "
            "SELECT gen_random_uuid(), c.id, 'purchase', 'web', "
            "$1::timestamptz + p.day * interval '1 day', $1::timestamptz + p.day * interval "
            "'1 day', round(p.value, 2), 'EUR', 'shop' "
            "FROM bench_purchases p JOIN bench_customers c USING (n)",
            start,
        )
        await connection.execute("ANALYZE customers; ANALYZE events")


async def scores(customers: int) -> dict[str, npt.NDArray[np.float64]]:
    rows = await get_connection("default").execute_query_dict(
        "SELECT b.n, a.expected_purchases_90d AS e90, a.churn_risk AS churn "
        "FROM bench_customers b JOIN customer_attributes a ON a.customer_id = b.id"
    )
    e90 = np.full(customers, np.nan)
    churn = np.full(customers, np.nan)
    for row in rows:
        e90[row["n"]] = row["e90"] if row["e90"] is not None else np.nan
        churn[row["n"]] = row["churn"] if row["churn"] is not None else np.nan
    return {"e90": e90, "churn": churn}


async def run(customers: int, events: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    alpha = tuned_alpha(rng, events / customers)
    simulated = simulate(rng, customers, alpha)
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(days=HOLDOUT_DAYS + 1)
    start = as_of - timedelta(days=CALIBRATION_DAYS)
    calibration = simulated.day < CALIBRATION_DAYS
    holdout = ~calibration
    # Purchase days, as the run counts them.
    whole = np.floor(simulated.day)
    actual = np.zeros(customers)
    pairs = np.unique(np.stack([simulated.customer[holdout], whole[holdout]]), axis=1)
    np.add.at(actual, pairs[0].astype(np.int64), 1)
    last = np.full(customers, -np.inf)
    np.maximum.at(last, simulated.customer[calibration], simulated.day[calibration])
    since_last = CALIBRATION_DAYS - last

    async with benchmark_workspace() as (_, settings, _vault):
        loading = time.perf_counter()
        await load(simulated, customers, start)
        loaded = time.perf_counter() - loading
        settings = replace(settings, analytics=AnalyticsSettings(currency="EUR"))
        began = time.perf_counter()
        evidence = await run_once(settings, as_of)
        wall = time.perf_counter() - began
        found = await scores(customers)
    scored = np.isfinite(found["e90"])
    churned = actual == 0
    numbers: dict[str, Any] = {
        "customers": customers,
        "events": int(simulated.customer.shape[0]),
        "holdout_events": int(np.count_nonzero(holdout)),
        "load_s": round(loaded, 1),
        "run_s": round(wall, 2),
        "customers_per_s": round(evidence.customers_scored / wall),
        "scored": evidence.customers_scored,
        "status": evidence.status.value,
        "note": evidence.note or "-",
    }
    if scored.any():
        numbers |= {
            "mae_purchases_90d": round(float(np.mean(np.abs(found["e90"] - actual)[scored])), 3),
            "predicted_total": round(float(np.sum(found["e90"][scored]))),
            "actual_total": int(np.sum(actual[scored])),
            "auc_churn_risk": round(clv.auc(found["churn"][scored], churned[scored]), 4),
            "auc_recency": round(clv.auc(since_last[scored], churned[scored]), 4),
            "bgnbd": f"r={evidence.bgnbd_r:.3g},alpha={evidence.bgnbd_alpha:.3g},"
            f"a={evidence.bgnbd_a:.3g},b={evidence.bgnbd_b:.3g}"
            f"(true r={R},alpha={alpha:.3g},a={A},b={B})",
        }
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000, help="about this many")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.customers < 100 or args.events < args.customers:
        parser.error("at least 100 customers and one event per customer")
    report("analytics_refresh", asyncio.run(run(args.customers, args.events, args.seed)))


def run_default() -> None:
    report("analytics_refresh", asyncio.run(run(100_000, 2_000_000, 7)))


if __name__ == "__main__":
    main()
