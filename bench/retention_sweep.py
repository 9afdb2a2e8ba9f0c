"""The retention sweep on a real PostgreSQL: rows disposed of per second.

Customers each have ``EVENTS_EACH`` events, all past their period. Prints the throughput of a
dry run (``retentionPreview``), of a sweep that deletes, and of one that archives (decrypt,
seal under each customer's key, gzip, write to a local directory).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.support import benchmark_database, report
from cdlm import clock
from cdlm.auth.principal import SYSTEM
from cdlm.config import load_settings
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_one
from cdlm.customers.models import Event, LawfulBasis, SourceKind
from cdlm.db.lifecycle import close_orm, init_orm
from cdlm.retention import archive, policies, sweep
from cdlm.retention.models import Action, RetentionPolicy, Trigger
from cdlm.vault.keys import LocalKeyProvider
from cdlm.vault.service import Vault

CUSTOMERS = 100
EVENTS_EACH = 200
START = datetime(2024, 1, 1, tzinfo=UTC)


async def run() -> None:
    with tempfile.TemporaryDirectory(prefix="cdlm-bench-") as workdir:
        await _run(Path(workdir))


async def _run(workdir: Path) -> None:
    async with benchmark_database() as target:
        settings = replace(
            load_settings(
                {"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40, "CDLM_DATA_DIR": str(workdir)}
            ),
            database=target,
        )
        orm = await init_orm(target, settings)
        try:
            vault = Vault(LocalKeyProvider.from_file(settings.master_key_file))
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
        finally:
            await close_orm(orm)


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
