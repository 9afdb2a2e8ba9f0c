"""Funnels, top paths and journeys over a realistic events table.

Generates customers and their events (bulk COPY into a staging table, then one INSERT into
``events``, as ``analytics_refresh`` loads its purchases): each customer has visits over a
year, a visit is a page view that may go on to a product view (80%), a cart update (35% of
those), a checkout (60%) and an order (75%), minutes apart; besides visits, email opens and
support contacts. Then, each several times (the median is printed):

- a 4-step funnel (product.viewed → cart.updated → checkout.started → order.placed within
  7 days) with entries over the whole year (target: ≤ 2 s at 2,000,000 events), and the plan's
  main nodes (EXPLAIN ANALYZE) to say where the time goes; the same over 30 days;
- top paths of length 3 after ``product.viewed`` over the whole year, and over 30 days;
- a page of 20 journey steps for one customer, and for 20 customers at once (a list's page).

``python -m bench funnels`` (100,000 customers, 2,000,000 events), or
``python -m bench.funnels --customers 10000 --events 200000``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from tortoise.connection import get_connection

from bench.bulk import copy_rows, placeholder_customers
from bench.support import benchmark_workspace, report
from cdlm.analytics.journeys import service, sql
from cdlm.core.principal import SYSTEM

VISIT = ["page.viewed", "product.viewed", "cart.updated", "checkout.started", "order.placed"]
#: Chance a visit goes on from each stage to the next.
GOES_ON = [0.80, 0.35, 0.60, 0.75]
#: Mean minutes between a stage and the next.
MINUTES = [1.5, 6.0, 12.0, 4.0]
OTHER = ["email.opened", "support.contacted"]
OTHER_SHARE = 0.15
DAYS = 365
FUNNEL_STEPS = ("product.viewed", "cart.updated", "checkout.started", "order.placed")
RUNS = 5


def generate(rng: np.random.Generator, customers: int, events: int) -> dict[str, Any]:
    """Arrays of (customer number, type number, seconds from the start) of about ``events``."""
    per_visit = 1.0
    reach = 1.0
    for chance in GOES_ON:
        reach *= chance
        per_visit += reach
    visits = int(events * (1 - OTHER_SHARE) / per_visit)
    owner = rng.integers(0, customers, visits)
    at = rng.uniform(0, DAYS * 86400.0, visits)
    alive = np.ones(visits, dtype=bool)
    owners, kinds, moments = [owner], [np.zeros(visits, dtype=np.int16)], [at.copy()]
    for stage, (chance, minutes) in enumerate(zip(GOES_ON, MINUTES, strict=True), start=1):
        alive &= rng.random(visits) < chance
        at = at + rng.exponential(minutes * 60.0, visits)
        owners.append(owner[alive])
        kinds.append(np.full(int(alive.sum()), stage, dtype=np.int16))
        moments.append(at[alive])
    made = sum(len(o) for o in owners)
    extra = max(events - made, 0)
    owners.append(rng.integers(0, customers, extra))
    kinds.append(rng.choice([len(VISIT), len(VISIT) + 1], extra, p=[0.85, 0.15]).astype(np.int16))
    moments.append(rng.uniform(0, DAYS * 86400.0, extra))
    return {
        "customer": np.concatenate(owners),
        "kind": np.concatenate(kinds),
        "second": np.concatenate(moments),
    }


async def load(data: dict[str, Any], customers: int, start: datetime) -> None:
    """Customers (placeholder sealed profiles: nothing here opens them) and their events."""
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        await connection.execute(
            "CREATE TABLE bench_types (k smallint PRIMARY KEY, type text NOT NULL);"
            "CREATE TABLE bench_events (n int, k smallint, s float8)"
        )
        await placeholder_customers(connection, customers, start)
        await connection.copy_records_to_table(
            "bench_types", records=list(enumerate([*VISIT, *OTHER]))
        )
        rows = list(
            zip(
                data["customer"].tolist(),
                data["kind"].tolist(),
                data["second"].tolist(),
                strict=True,
            )
        )
        await copy_rows(connection, "bench_events", rows)
        await connection.execute(
            "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
            "source_system) "
            "SELECT gen_random_uuid(), c.id, t.type, 'web', "
            "$1::timestamptz + e.s * interval '1 second', "
            "$1::timestamptz + e.s * interval '1 second', 'shop' "
            "FROM bench_events e JOIN bench_customers c USING (n) JOIN bench_types t USING (k)",
            start,
        )
        # A few restricted customers, as in any installation (left out of every answer).
        await connection.execute(
            "UPDATE customers SET restricted_at = $1 WHERE id IN "
            "(SELECT id FROM bench_customers WHERE n % 1000 = 0)",
            start,
        )
        for table in ("customers", "events"):
            await connection.execute(f"VACUUM ANALYZE {table}")


async def timed(work: Callable[[], Awaitable[Any]], runs: int = RUNS) -> tuple[float, Any]:
    """The median wall time of ``runs`` calls (ms) and the last result."""
    samples = []
    result: Any = None
    for _ in range(runs):
        began = time.perf_counter()
        result = await work()
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 1), result


async def plan_notes(compiled: sql.Compiled) -> list[str]:
    """The plan's main nodes with their actual time and rows (EXPLAIN ANALYZE)."""
    rows = await get_connection("default").execute_query_dict(
        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {compiled.statement}", compiled.arguments
    )
    wanted = ("Scan", "Sort", "Unique", "Loop", "Aggregate", "Join", "WindowAgg", "Time")
    notes = []
    for row in rows:
        line = row["QUERY PLAN"].strip().lstrip("-> ").strip()
        if any(word in line for word in wanted):
            notes.append(line[:150])
    return notes


async def run(customers: int, events: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data = generate(rng, customers, events)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=DAYS + 1)
    async with benchmark_workspace():
        began = time.perf_counter()
        await load(data, customers, start)
        loaded = time.perf_counter() - began
        query = service.FunnelQuery(FUNNEL_STEPS, timedelta(days=7), start, end)
        await service.funnel(SYSTEM, query)  # warm the cache, as a running server's is
        funnel_ms, found = await timed(lambda: service.funnel(SYSTEM, query))
        month = service.FunnelQuery(
            FUNNEL_STEPS,
            timedelta(days=7),
            start + timedelta(days=180),
            start + timedelta(days=210),
        )
        month_ms, month_found = await timed(lambda: service.funnel(SYSTEM, month))
        compiled = sql.funnel(FUNNEL_STEPS, timedelta(days=7), start, end)
        notes = await plan_notes(compiled)
        paths = service.TopPathsQuery("product.viewed", start, end, length=3, first=10)
        paths_ms, top = await timed(lambda: service.top_paths(SYSTEM, paths))
        paths_month = service.TopPathsQuery(
            "product.viewed", start + timedelta(days=180), start + timedelta(days=210)
        )
        paths_month_ms, _ = await timed(lambda: service.top_paths(SYSTEM, paths_month))
        paths_notes = await plan_notes(sql.top_paths("product.viewed", 3, start, end, 10))
        rows = await get_connection("default").execute_query_dict(
            "SELECT id FROM bench_customers WHERE n % 1000 <> 0 ORDER BY n LIMIT 20"
        )
        ids = [row["id"] for row in rows]
        page = service.JourneyPage(20)
        one_ms, _ = await timed(lambda: service.journeys(ids[:1], page), runs=21)
        journey = (await service.journeys(ids[:1], page))[ids[0]]
        after = service.JourneyPage(20, (journey.steps[-1].occurred_at, journey.steps[-1].event_id))
        next_ms, _ = await timed(lambda: service.journeys(ids[:1], after), runs=21)
        many_ms, _ = await timed(lambda: service.journeys(ids, page), runs=21)
        total = await get_connection("default").execute_query_dict(
            "SELECT count(*) AS n FROM events"
        )
    numbers: dict[str, Any] = {
        "customers": customers,
        "events": int(total[0]["n"]),
        "load_s": round(loaded, 1),
        "funnel_4_steps_ms": funnel_ms,
        "funnel": "/".join(str(s.customers) for s in found.steps),
        "medians_s": "/".join(
            f"{s.median_seconds_from_previous:.0f}"
            for s in found.steps[1:]
            if s.median_seconds_from_previous
        ),
        "funnel_30_days_ms": month_ms,
        "funnel_30_days": "/".join(str(s.customers) for s in month_found.steps),
        "top_paths_ms": paths_ms,
        "top_paths_30_days_ms": paths_month_ms,
        "top_path": f"{'>'.join(top.paths[0].event_types)}:{top.paths[0].share:.3f}",
        "journey_page_ms": one_ms,
        "journey_next_page_ms": next_ms,
        "journey_20_customers_ms": many_ms,
    }
    report("funnels", numbers)
    print("funnel plan (EXPLAIN ANALYZE, main nodes):")
    for note in notes:
        print(f"  {note}")
    print("top paths plan (EXPLAIN ANALYZE, main nodes):")
    for note in paths_notes:
        print(f"  {note}")
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000, help="about this many")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    if args.customers < 100 or args.events < args.customers:
        parser.error("at least 100 customers and one event per customer")
    asyncio.run(run(args.customers, args.events, args.seed))


def run_default() -> None:
    asyncio.run(run(100_000, 2_000_000, 16))


if __name__ == "__main__":
    main()
