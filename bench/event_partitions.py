"""Events partitioned by month, before and after, on the same data.

One database is loaded as ``bench.funnels`` loads it (placeholder customers, a year of visits,
``bench.bulk``), under the schema before partitioning; it is copied (``CREATE DATABASE ...
TEMPLATE``), and the copy is migrated to monthly partitions (the migration's time is printed).
Then, on each of the two:

- analysis reads: a 4-step funnel over the year and over 30 days, top paths, a page of journey
  steps for one and for 20 customers, the dashboard by month (median ms, and the SQL statements
  each sends);
- ingestion through the service (``store_events``: batches of 500 events with external ids for
  real customers, committed one by one) and a bulk ``COPY`` of 200,000 rows (events/s);
- disposal of the oldest whole month by the retention sweep: row by row before, the whole
  partition after (seconds, events).

``python -m bench event_partitions`` (20,000 customers, 1,000,000 events), or
``python -m bench.event_partitions --customers 5000 --events 200000``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from tests.support.sql_counter import CountingConnection, StatementRecorder
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationTarget
from tortoise.transactions import in_transaction

from bench import funnels
from bench.support import report
from cdlm.analytics.journeys import service as journeys
from cdlm.config import AnalyticsSettings, DatabaseTarget, Settings, load_settings
from cdlm.core import clock
from cdlm.core.periods import Interval
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_batch
from cdlm.db import lifecycle
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import apply_migrations, close_orm, connect, ensure_database, init_orm
from cdlm.db.orm_config import APP_LABEL
from cdlm.insight import service as insight
from cdlm.insight.api import revenue_rules
from cdlm.retention import archive, policies, sweep
from cdlm.retention.models import Action, Trigger
from cdlm.vault.keys import LocalKeyProvider
from cdlm.vault.service import Vault

BEFORE = "0029_database_roles"
START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=funnels.DAYS + 1)
RUNS = 5
INGEST_BATCHES = 20
BATCH = 500
COPY_ROWS = 200_000
REAL_CUSTOMERS = 50
PERIOD_DAYS = 365


#: The unpartitioned database gets the other tables and columns of the partitioning migration
#: (empty keys: its unique constraint on events still decides), so today's code runs on it.
SHIM = """
ALTER TABLE retention_sweep_evidence ADD COLUMN months jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN month_cursor varchar(7);
CREATE TABLE event_keys (event_id uuid PRIMARY KEY, source_system varchar(64) NOT NULL,
    external_id varchar(128) NOT NULL, UNIQUE (source_system, external_id));
"""


async def timed(work: Callable[[], Awaitable[Any]], runs: int = RUNS) -> tuple[float, int]:
    """Median ms of ``runs`` calls after a warm-up, and the statements one call sends."""
    await work()
    recorder = StatementRecorder()
    with recorder.recording():
        await work()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 1), recorder.count


async def reads() -> dict[str, Any]:
    """Funnels, paths, journeys and the dashboard over the loaded year."""
    steps, week = funnels.FUNNEL_STEPS, timedelta(days=7)
    month_start, month_end = START + timedelta(days=180), START + timedelta(days=210)
    rows = await get_connection("default").execute_query_dict(
        "SELECT id FROM bench_customers WHERE n % 1000 <> 0 ORDER BY n LIMIT 20"
    )
    ids = [row["id"] for row in rows]
    purchases, rates = revenue_rules(
        AnalyticsSettings(currency="EUR", rates={"USD": Decimal("0.92")})
    )
    work: dict[str, Callable[[], Awaitable[Any]]] = {
        "funnel_year": lambda: journeys.funnel(
            SYSTEM, journeys.FunnelQuery(steps, week, START, END)
        ),
        "funnel_30d": lambda: journeys.funnel(
            SYSTEM, journeys.FunnelQuery(steps, week, month_start, month_end)
        ),
        "top_paths_year": lambda: journeys.top_paths(
            SYSTEM, journeys.TopPathsQuery("product.viewed", START, END, length=3, first=10)
        ),
        "journey_1": lambda: journeys.journeys(ids[:1], journeys.JourneyPage(20)),
        "journeys_20": lambda: journeys.journeys(ids, journeys.JourneyPage(20)),
        "dashboard_month": lambda: insight.dashboard(
            SYSTEM, insight.DashboardQuery(START, END, Interval.MONTH, purchases, rates)
        ),
    }
    numbers: dict[str, Any] = {}
    for name, call in work.items():
        ms, statements = await timed(call, runs=21 if name.startswith("journey") else RUNS)
        numbers[f"{name}_ms"] = ms
        numbers[f"{name}_sql"] = statements
    return numbers


async def ingest(vault: Vault, seed: int) -> dict[str, Any]:
    """Events per second through the service, and by COPY."""
    async with in_transaction():
        made = await ingest_batch(
            vault,
            [
                CustomerIngest(source=funnels_source(), profile={"email": f"buyer{n}@example.com"})
                for n in range(REAL_CUSTOMERS)
            ],
        )
    owners = [r.customer_id for r in made if not isinstance(r, Exception)]
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    now = END - timedelta(days=1)
    with clock.frozen_at(now):
        for number in range(INGEST_BATCHES):
            batch = [
                EventIngest(
                    type="order.placed",
                    occurred_at=START + timedelta(seconds=float(rng.uniform(0, 364 * 86400))),
                    source_system="shop",
                    customer_id=owners[int(rng.integers(0, len(owners)))],
                    external_id=f"bench-{number}-{position}",
                    properties={"sku": f"sku-{position}"},
                )
                for position in range(BATCH)
            ]
            async with in_transaction():
                result, _ = await store_events(vault, batch)
            assert len(result.accepted) == BATCH, result.rejected
    service_rate = INGEST_BATCHES * BATCH / (time.perf_counter() - began)
    rows = [
        (uuid.uuid4(), owners[i % len(owners)], "page.viewed", "web",
         START + timedelta(seconds=i * 150.0), END, "shop", f"copy-{i}")
        for i in range(COPY_ROWS)
    ]  # fmt: skip
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        began = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table(
                "events",
                records=rows,
                columns=["id", "customer_id", "type", "channel", "occurred_at", "received_at",
                         "source_system", "external_id"],
            )  # fmt: skip
        copy_rate = COPY_ROWS / (time.perf_counter() - began)
    return {"ingest_service_events_s": round(service_rate), "copy_events_s": round(copy_rate)}


def funnels_source() -> Source:
    return Source("shop", SourceKind.CRM, START, LawfulBasis.CONTRACT, "essential.service")


async def dispose_oldest_month(vault: Vault, store: archive.ArchiveStore) -> dict[str, Any]:
    """The sweep, as of one period after the end of the first month: that month is due."""
    first_month_end = datetime(START.year, START.month + 1, 1, tzinfo=UTC)
    as_of = first_month_end + timedelta(days=PERIOD_DAYS)
    count = await get_connection("default").execute_query_dict(
        "SELECT count(*) AS n FROM events WHERE occurred_at < $1", [first_month_end]
    )
    await policies.create_policy(
        SYSTEM,
        category="events",
        period_days=PERIOD_DAYS,
        trigger=Trigger.SINCE_COLLECTION,
        action=Action.DELETE,
    )
    began = time.perf_counter()
    with clock.frozen_at(as_of):
        result = await sweep.sweep(SYSTEM, vault, store)
    took = time.perf_counter() - began
    [outcome] = result.outcomes
    return {
        "month_events": int(count[0]["n"]),
        "disposed": outcome.disposed,
        "whole_months": ",".join(outcome.months) or "none",
        "dispose_s": round(took, 2),
    }


async def measure(
    label: str, target: DatabaseTarget, settings: Settings, vault: Vault, store: Path, seed: int
) -> dict[str, Any]:
    orm = await init_orm(target, settings, connection_class=CountingConnection)
    try:
        numbers = await reads()
        numbers.update(await dispose_oldest_month(vault, archive.LocalArchiveStore(store)))
        numbers.update(await ingest(vault, seed))
    finally:
        await close_orm(orm)
    report(f"event_partitions {label}", numbers)
    return numbers


async def run(customers: int, events: int, seed: int) -> None:
    import shutil
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="cdlm-bench-"))
    server = EmbeddedPostgres(workdir / "pg", delete_on_stop=True)
    base = server.start()
    try:
        environ = {"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40, "CDLM_DATA_DIR": str(workdir)}
        settings = load_settings(environ)
        vault = Vault(LocalKeyProvider.from_file(settings.master_key_file))
        before = base.with_database("cdlm_before")
        after = base.with_database("cdlm_after")
        await ensure_database(before)
        async with lifecycle._migration_context(before) as executor:
            await executor.migrate(targets=[MigrationTarget(app_label=APP_LABEL, name=BEFORE)])
        orm = await init_orm(before, replace(settings, database=before))
        began = time.perf_counter()
        try:
            data = funnels.generate(np.random.default_rng(seed), customers, events)
            await funnels.load(data, customers, START)
        finally:
            await close_orm(orm)
        loaded = time.perf_counter() - began
        admin = await connect(base.with_database("postgres"))
        try:
            await admin.execute('CREATE DATABASE "cdlm_after" TEMPLATE "cdlm_before"')
        finally:
            await admin.close()
        began = time.perf_counter()
        await apply_migrations(after)
        migrated = time.perf_counter() - began
        check = await connect(after)
        try:
            months = await check.fetchval(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
            )
            await check.execute("VACUUM ANALYZE events")
        finally:
            await check.close()
        plain = await connect(before)
        try:  # what the code reads besides events, with events left as they were
            await plain.execute(SHIM)
        finally:
            await plain.close()
        report(
            "event_partitions data",
            {"customers": customers, "events": events, "load_s": round(loaded, 1),
             "migrate_s": round(migrated, 1), "partitions": months},
        )  # fmt: skip
        await measure("unpartitioned", before, settings, vault, workdir / "a1", seed)
        await measure("partitioned", after, settings, vault, workdir / "a2", seed)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.events, args.seed))


def run_default() -> None:
    """The default sizes (``python -m bench event_partitions``)."""
    asyncio.run(run(20_000, 1_000_000, 7))


if __name__ == "__main__":
    main()
