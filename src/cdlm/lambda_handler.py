"""AWS Lambda entry points (Serverless Framework: ``serverless.yml``).

``handler`` serves API Gateway (HTTP API v2 and REST v1 events) through Mangum. The ASGI
lifespan is off because Mangum would run it on every invocation; instead the database pool is
opened by the first request of a container and reused by the warm invocations after it.

``migrate`` applies pending schema migrations (``serverless invoke -f migrate``).
``dsr_tick`` is the hourly schedule of data subject requests (see :mod:`cdlm.dsr.tick`).
``retention_sweep`` is the hourly retention sweep (see :mod:`cdlm.retention.sweep`); it stops
a minute before the function's time runs out and the next invocation resumes it.
``analytics_refresh`` is the daily analytics run (see :mod:`cdlm.jobs.analytics_refresh`).
``event_partitions`` makes the months of events ahead, daily (see
:mod:`cdlm.jobs.event_partitions`).
``audit_sequencer`` chains the read audit records left pending (every minute); the HTTP function
chains them itself after requests that recorded reads (see :mod:`cdlm.jobs.audit_sequencer`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from cdlm.app import create_app
from cdlm.config import ConfigError, load_settings
from cdlm.core.logs import configure_logging
from cdlm.db.lifecycle import apply_migrations, close_orm, init_orm

log = logging.getLogger("cdlm.lambda")

try:
    settings = load_settings()
except ConfigError as error:
    # One clear line in the function's log instead of a traceback, then fail the init phase.
    logging.basicConfig(format="%(message)s")
    log.critical("cdlm: configuration error: %s", error)
    raise SystemExit(2) from None

configure_logging(settings.log_level)
if settings.database is None:
    log.critical("cdlm: configuration error: DATABASE_URL: is required on Lambda")
    raise SystemExit(2)

try:
    app = create_app(settings, database="lazy")
except ConfigError as error:
    log.critical("cdlm: configuration error: %s", error)
    raise SystemExit(2) from None
# GraphQL-over-HTTP responses are JSON text too: sent as such, not base64-encoded.
handler = Mangum(
    app,
    lifespan="off",
    text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/graphql-response+json"],
)


def dsr_tick(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Flag requests nearing or past their due date, retry notifications and destroy erased
    requesters' details; returns the counts."""
    from cdlm.analytics.segments.export import destroy_unreachable
    from cdlm.dsr.notifier import notifier_from
    from cdlm.dsr.tick import tick
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    assert settings.database is not None
    database = settings.database

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            vault = Vault(provider_from_settings(settings))
            report = await tick(vault, notifier_from(settings), settings)
            destroyed = await destroy_unreachable(vault)
        finally:
            await close_orm(orm)
        return {**asdict(report), "segment_exports_destroyed": destroyed}

    loop = asyncio.new_event_loop()  # its own loop, as for migrate
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def audit_sequencer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Chain the read audit records still pending; returns how many, and how many are left."""
    from cdlm.audit.service import pending_reads
    from cdlm.jobs.audit_sequencer import run_once

    assert settings.database is not None
    database = settings.database

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            chained = await run_once(max_batches=100)  # 50,000 records; the rest next minute
            left, _ = await pending_reads()
        finally:
            await close_orm(orm)
        return {"chained": chained, "pending": left}

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def retention_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispose of data past its retention period; returns the evidence per policy."""
    from cdlm.core.principal import SYSTEM
    from cdlm.retention.archive import archive_store_from
    from cdlm.retention.sweep import sweep
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    assert settings.database is not None
    database = settings.database
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 900_000
    budget = max(remaining_ms / 1000 - 60, 10)

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            vault = Vault(provider_from_settings(settings))
            report = await sweep(SYSTEM, vault, archive_store_from(settings), max_seconds=budget)
        finally:
            await close_orm(orm)
        return {
            "run_id": str(report.run_id),
            "finished": report.finished,
            "outcomes": [
                {
                    "category": o.category,
                    "action": o.action.value,
                    "disposed": o.disposed,
                    "skipped_held": o.skipped_held,
                    "digest": o.digest,
                }
                for o in report.outcomes
            ],
        }

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def match_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A match run (incremental unless the event says ``{"full": true}``; ``{"train": true}``
    retrains first) within the invocation's time; returns its evidence. An unfinished run is
    resumed by the next invocation. Deployed from the package with the ``matching`` extra."""
    from cdlm.core.errors import Conflict
    from cdlm.core.principal import SYSTEM
    from cdlm.matching import runs
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    assert settings.database is not None
    database = settings.database
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 900_000
    options = runs.options_from(
        settings,
        full=bool((event or {}).get("full")),
        train=bool((event or {}).get("train")),
        budget_seconds=max(remaining_ms / 1000 - 90, 10),
    )

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            evidence = await runs.run(SYSTEM, Vault(provider_from_settings(settings)), options)
        except Conflict as refused:
            return {"status": "refused", "reason": refused.message}
        finally:
            await close_orm(orm)
        return runs.evidence_json(evidence)

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def analytics_refresh(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Score every customer (RFM, lifetime value, churn risk) as of now, or as of the event's
    ``{"as_of": "2026-01-01"}``; returns the run's evidence. Deployed from the package with the
    ``analytics`` extra."""
    from datetime import UTC, datetime

    from cdlm.core.errors import Conflict
    from cdlm.jobs.analytics_refresh import run_once

    assert settings.database is not None
    database = settings.database
    raw = (event or {}).get("as_of")
    as_of = datetime.fromisoformat(raw) if raw else None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)

    async def work() -> dict[str, Any]:
        from cdlm.analytics.runs import evidence_json

        orm = await init_orm(database, settings)
        try:
            run = await run_once(settings, as_of)
        except Conflict as refused:
            return {"status": "refused", "reason": refused.message}
        finally:
            await close_orm(orm)
        return evidence_json(run)

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def event_partitions(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make this month of events and the next ones (``{"months_ahead": 3}`` by default), and a
    month for events waiting in the default partition; returns the partitions made."""
    from cdlm.jobs.event_partitions import MAX_MONTHS_AHEAD, MONTHS_AHEAD, run

    assert settings.database is not None
    database = settings.database
    ahead = (event or {}).get("months_ahead", MONTHS_AHEAD)
    if not isinstance(ahead, int) or isinstance(ahead, bool) or not 0 <= ahead <= MAX_MONTHS_AHEAD:
        return {"status": "refused", "reason": f"months_ahead is 0 to {MAX_MONTHS_AHEAD}"}

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            result = await run(months_ahead=ahead)
        finally:
            await close_orm(orm)
        return result.to_json()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work())
    finally:
        loop.close()


def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply pending migrations as the owner (``CDLM_DATABASE_OWNER_URL``, else
    ``DATABASE_URL``); returns the names applied."""
    target = settings.database_owner or settings.database
    assert target is not None
    loop = asyncio.new_event_loop()  # its own loop: Mangum's stays untouched
    try:
        applied = loop.run_until_complete(
            apply_migrations(
                target, settings.db_connect_timeout, app_role=settings.database_app_role
            )
        )
    finally:
        loop.close()
    return {"applied": applied}
