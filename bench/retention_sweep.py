"""The retention sweep on a real PostgreSQL: rows disposed of per second.

Customers each have ``EVENTS_EACH`` events, all past their period. Prints the throughput of a
dry run (``retentionPreview``), of a sweep that deletes, and of one that archives (decrypt,
seal under each customer's key, gzip, write to a local directory).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench.support import benchmark_workspace, report
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_one
from cdlm.customers.models import Event
from cdlm.retention import archive, policies, sweep
from cdlm.retention.models import Action, RetentionPolicy, Trigger
from cdlm.vault.service import Vault

CUSTOMERS = 100
EVENTS_EACH = 200
START = datetime(2024, 1, 1, tzinfo=UTC)


async def run() -> None:
    async with benchmark_workspace() as (workdir, _, vault):
        store = archive.LocalArchiveStore(workdir / "archive")
        for action in (Action.DELETE, Action.ARCHIVE):
            await _events(vault)
            total = await Event.all().count()
            await RetentionPolicy.all().delete()
            await policies.create_policy(
                SYSTEM,
                category="events",
                period_days=365,
                trigger=Trigger.SINCE_COLLECTION,
                action=action,
            )
            later = START + timedelta(days=800)
            with clock.frozen_at(later):
                if action is Action.DELETE:
                    started = time.perf_counter()
                    forecast = await sweep.preview()
                    elapsed = time.perf_counter() - started
                    assert forecast.outcomes[0].disposed == total
                    report(
                        "retention preview",
                        {"rows": total, "rows_per_s": round(total / elapsed)},
                    )
                started = time.perf_counter()
                done = await sweep.sweep(SYSTEM, vault, store)
                elapsed = time.perf_counter() - started
            assert done.outcomes[0].disposed == total
            report(
                f"retention sweep ({action.value})",
                {"rows": total, "rows_per_s": round(total / elapsed), "s": round(elapsed, 2)},
            )


async def _events(vault: Vault) -> None:
    for n in range(CUSTOMERS):
        with clock.frozen_at(START):
            created = await ingest_one(
                SYSTEM,
                vault,
                CustomerIngest(
                    source=Source("crm", SourceKind.CRM, START, LawfulBasis.CONTRACT, "service"),
                    profile={"email": f"p{n}-{time.monotonic_ns()}@example.com"},
                ),
            )
            await store_events(
                vault,
                [
                    EventIngest(
                        type="page.view",
                        occurred_at=START - timedelta(minutes=i + 1),
                        source_system="web",
                        customer_id=created.result.customer_id,
                        properties={"path": f"/p/{i}"},
                    )
                    for i in range(EVENTS_EACH)
                ],
            )
