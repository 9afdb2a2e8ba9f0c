"""Recommendations: hit rate at 10 on a held-out last purchase, the model step's run time and
the time of a recommendations query.

Synthetic customers with latent tastes: items belong to categories (popularity within a
category is Zipf-like), each customer prefers a few categories and buys (and views, about two
views per purchase) mostly from them. Each customer's LAST purchase is held out; everything
before it is loaded straight into ``customers`` and ``events`` with SQL (as the analytics
bench does: the model reads only clear columns), the personalization purpose is defined (opt
out, so every customer may be personalized), and ``cdlm analytics refresh`` builds the model.
Then, for every customer with a held-out purchase:

- hit rate at 10: the held-out item is among ``Customer.recommendations(first: 10)``;
- the popularity baseline: the held-out item is among the 10 most popular items the customer
  has not bought;

and the timings: the whole run, the model step alone, one customer's recommendations (one
statement, p50/p90) and a page of 50 customers.

``python -m bench.recommendations --customers 20000 --items 2000`` (the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from tortoise.connection import get_connection

from bench.bulk import copy_rows, placeholder_customers
from bench.support import benchmark_workspace, percentiles, report
from cdlm.analytics.models import AnalyticsRun
from cdlm.analytics.recommendations import model, service
from cdlm.consent import service as consent
from cdlm.consent.models import Mechanism
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis
from cdlm.jobs.analytics_refresh import run_once

DAYS = 300.0
CATEGORIES = 25
TASTES = 3  # preferred categories per customer
LOYALTY = 0.85  # share of interactions in the preferred categories


def simulate(rng: np.random.Generator, customers: int, items: int) -> dict[str, Any]:
    """Interactions (customer, item, kind, day), each customer's last purchase held out."""
    category = rng.integers(0, CATEGORIES, items)
    by_category = [np.flatnonzero(category == c) for c in range(CATEGORIES)]
    # Zipf-like popularity inside each category.
    weight = 1.0 / (1.0 + rng.permutation(items)) ** 0.8
    within = [weight[m] / weight[m].sum() for m in by_category]
    overall = weight / weight.sum()
    rows: list[tuple[int, int, str, float]] = []
    held: dict[int, int] = {}
    for c in range(customers):
        liked = rng.choice(CATEGORIES, TASTES, replace=False)
        purchases = 2 + rng.poisson(4)
        views = rng.poisson(2 * purchases)
        picks: list[tuple[int, str]] = []
        for kind, n in (("purchase", purchases), ("view", views)):
            for _ in range(n):
                if rng.random() < LOYALTY:
                    cat = liked[rng.integers(0, TASTES)]
                    if by_category[cat].size == 0:
                        continue
                    item = int(rng.choice(by_category[cat], p=within[cat]))
                else:
                    item = int(rng.choice(items, p=overall))
                picks.append((item, kind))
        days = np.sort(rng.uniform(0.0, DAYS, len(picks)))
        rng.shuffle(picks)
        last = max((n for n, (_, kind) in enumerate(picks) if kind == "purchase"), default=None)
        if last is None:
            continue
        held[c] = picks[last][0]
        # Everything from the held-out purchase on is the future: dropped.
        rows += [(c, item, kind, float(days[n])) for n, (item, kind) in enumerate(picks[:last])]
    return {"rows": rows, "held": held}


async def load(rows: list[tuple[int, int, str, float]], customers: int, start: datetime) -> None:
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        await connection.execute(
            "CREATE TABLE bench_events (n int, item int, kind text, day float8)"
        )
        await placeholder_customers(connection, customers, start)
        await copy_rows(connection, "bench_events", rows)
        await connection.execute(
            "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
            "amount, currency, source_system, item_id) "
            "SELECT gen_random_uuid(), c.id, e.kind, 'web', "
            "$1::timestamptz + e.day * interval '1 day', $1::timestamptz + e.day * interval "
            "'1 day', CASE WHEN e.kind = 'purchase' THEN 20 END, "
            "CASE WHEN e.kind = 'purchase' THEN 'EUR' END, 'shop', 'item-' || e.item "
            "FROM bench_events e JOIN bench_customers c USING (n)",
            start,
        )
        await connection.execute("ANALYZE customers; ANALYZE events")


async def _purpose() -> None:
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code="personalization",
            name="Personalization",
            description="Recommendations from what you bought and viewed.",
            lawful_basis=LawfulBasis.LEGITIMATE_INTERESTS,
            mechanism=Mechanism.OPT_OUT,
            data_use="personalize.content.profiled",
            data_categories=["user.behavior.purchase_history"],
            sale_or_sharing=False,
            notice_text="We recommend products from what you bought and viewed.",
        ),
    )


async def run(customers: int, items: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    simulated = simulate(rng, customers, items)
    rows, held = simulated["rows"], simulated["held"]
    as_of = datetime.now(UTC).replace(microsecond=0)
    start = as_of - timedelta(days=DAYS + 1)
    async with benchmark_workspace() as (_, settings, _vault):
        await load(rows, customers, start)
        await _purpose()
        began = time.perf_counter()
        evidence = await run_once(settings, as_of)
        run_s = time.perf_counter() - began
        began = time.perf_counter()
        options = model.options_from(settings)
        run_row = await AnalyticsRun.get(id=evidence.id)
        built = await model.refresh(
            settings.analytics.purchase_types, as_of, replace(options), run_row
        )
        model_s = time.perf_counter() - began
        ids = {
            r["n"]: r["id"]
            for r in await get_connection("default").execute_query_dict(
                "SELECT n, id FROM bench_customers"
            )
        }
        ask = service.Ask(settings.analytics.purchase_types, settings.recommendations.view_types)
        popular = [
            r["item_id"]
            for r in await get_connection("default").execute_query_dict(
                "SELECT item_id FROM popular_items ORDER BY rank"
            )
        ]
        bought: dict[int, set[str]] = {}
        for c, item, kind, _ in rows:
            if kind == "purchase":
                bought.setdefault(c, set()).add(f"item-{item}")
        hits = baseline = 0
        similar_lists = 0
        evaluated = sorted(held)
        for offset in range(0, len(evaluated), 200):
            part = evaluated[offset : offset + 200]
            found = await service.recommended([ids[c] for c in part], ask)
            for c in part:
                target = f"item-{held[c]}"
                listed = found[ids[c]]
                hits += any(i.item_id == target for i in listed)
                similar_lists += any(i.basis is service.Basis.ITEM_SIMILARITY for i in listed)
                top = [p for p in popular if p not in bought.get(c, set())][:10]
                baseline += target in top
        one: list[float] = []
        for c in evaluated[:300]:
            began = time.perf_counter()
            await service.recommended([ids[c]], ask)
            one.append((time.perf_counter() - began) * 1000)
        page: list[float] = []
        for offset in range(0, 50 * 20, 50):
            batch = [ids[c] for c in evaluated[offset : offset + 50]]
            began = time.perf_counter()
            await service.recommended(batch, ask)
            page.append((time.perf_counter() - began) * 1000)
    single = percentiles(one)
    return {
        "customers": customers,
        "items": items,
        "events": len(rows),
        "held_out": len(held),
        "hit_rate_at_10": round(hits / len(held), 4),
        "popularity_hit_rate_at_10": round(baseline / len(held), 4),
        "personal_lists": round(similar_lists / len(held), 4),
        "run_s": round(run_s, 2),
        "model_step_s": round(model_s, 2),
        "model_items": built.items,
        "model_pairs": built.neighbours,
        "query_one_p50_ms": single["p50_ms"],
        "query_one_p90_ms": single["p90_ms"],
        "query_page50_p50_ms": percentiles(page)["p50_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.customers < 100 or args.items < CATEGORIES:
        parser.error(f"at least 100 customers and {CATEGORIES} items")
    report("recommendations", asyncio.run(run(args.customers, args.items, args.seed)))


def run_default() -> None:
    report("recommendations", asyncio.run(run(20_000, 2_000, 7)))


if __name__ == "__main__":
    main()
