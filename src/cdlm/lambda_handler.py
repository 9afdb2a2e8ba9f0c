"""AWS Lambda entry points (Serverless Framework: ``serverless.yml``).

``handler`` serves API Gateway (HTTP API v2 and REST v1 events) through Mangum. The ASGI
lifespan is off because Mangum would run it on every invocation; instead the database pool is
opened by the first request of a container and reused by the warm invocations after it.

Secrets (the database logins, the token secret, the ledger key) are not in the environment,
which only names them (:data:`cdlm.config.SECRET_SETTINGS`): they are read from AWS Secrets
Manager on first need, by the first invocation of a container (:func:`runtime_settings`), and
cached (:mod:`cdlm.aws_secrets`). The container's start builds the GraphQL schema, the bulk of
the work, without them; the first request builds the app around it with the secrets in.

``migrate`` applies pending schema migrations (``serverless invoke -f migrate``).
``dsr_tick`` is the hourly schedule of data subject requests (see :mod:`cdlm.dsr.tick`).
``retention_sweep`` is the hourly retention sweep (see :mod:`cdlm.retention.sweep`); it stops
a minute before the function's time runs out and the next invocation resumes it.
``analytics_refresh`` is the daily analytics run (see :mod:`cdlm.jobs.analytics_refresh`).
``ledger_checkpoint`` verifies the ledgers and checkpoints them hourly (see
:mod:`cdlm.jobs.ledger_checkpoint`).
``audit_sequencer`` chains the read audit records left pending (every minute); the HTTP function
chains them itself after requests that recorded reads (see :mod:`cdlm.jobs.audit_sequencer`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any, NoReturn

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from cdlm.api.schema import create_schema
from cdlm.app import create_app
from cdlm.config import ConfigError, Settings, load_settings
from cdlm.core.logs import configure_logging
from cdlm.db.lifecycle import apply_migrations, close_orm, ensure_login, init_orm

log = logging.getLogger("cdlm.lambda")


def _stop(error: ConfigError) -> NoReturn:
    """One clear line in the function's log instead of a traceback, then end the container."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    log.critical("cdlm: configuration error: %s", error)
    raise SystemExit(2) from None


try:
    settings = load_settings()  # the secrets it names are read by runtime_settings()
except ConfigError as error:
    _stop(error)

configure_logging(settings.log_level)
if settings.database is None:
    _stop(ConfigError("DATABASE_URL", "is required on Lambda"))

_runtime: Settings | None = None


def runtime_settings() -> Settings:
    """The settings with their secrets read (once per container; the database logins stay
    live, see :mod:`cdlm.aws_secrets`). A missing or malformed secret ends the container."""
    global _runtime
    if _runtime is None:
        if settings.secret_ids:
            from cdlm.aws_secrets import resolve

            try:
                _runtime = resolve(settings)
            except ConfigError as error:
                _stop(error)
        else:
            _runtime = settings
    return _runtime


def _serve(app: Any) -> Mangum:
    # GraphQL-over-HTTP responses are JSON text too: sent as such, not base64-encoded.
    return Mangum(
        app,
        lifespan="off",
        text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/graphql-response+json"],
    )


_http: Mangum | None = None
try:
    # The schema is the bulk of the start-up and needs no secret: built with the container.
    schema = create_schema(settings)
    if not settings.secret_ids:  # nothing to read: the app is built now (a bad setting stops)
        _http = _serve(create_app(settings, database="lazy", schema=schema))
except ConfigError as error:
    _stop(error)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway's entry point (the app is built by a container's first request when its
    secrets are to be read)."""
    global _http
    if _http is None:
        try:
            _http = _serve(create_app(runtime_settings(), database="lazy", schema=schema))
        except ConfigError as error:
            _stop(error)
    response: dict[str, Any] = _http(event, context)
    return response


def dsr_tick(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Flag requests nearing or past their due date, retry notifications and destroy erased
    requesters' details; returns the counts."""
    from cdlm.analytics.segments.export import destroy_unreachable
    from cdlm.dsr.notifier import notifier_from
    from cdlm.dsr.tick import tick
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    settings = runtime_settings()
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

    settings = runtime_settings()
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


def ledger_checkpoint(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Verify the audit trail and the consent ledger from their newest checkpoints and write
    new ones to the ledger bucket; returns one summary per ledger (a broken ledger fails the
    invocation, so its alarm fires)."""
    from cdlm.jobs.ledger_checkpoint import run
    from cdlm.ledgers.verify import summary

    settings = runtime_settings()
    assert settings.database is not None
    database = settings.database

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            reports = await run(settings)
        finally:
            await close_orm(orm)
        if reports is None:
            return {"skipped": "another run holds the lock"}
        return {"ledgers": [summary(report) for report in reports]}

    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(work())
    finally:
        loop.close()
    broken = [r["ledger"] for r in result.get("ledgers", []) if not r["ok"]]
    if broken:
        raise RuntimeError(f"ledger verification failed: {', '.join(broken)} (see the log)")
    return result


def retention_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispose of data past its retention period; returns the evidence per policy."""
    from cdlm.core.principal import SYSTEM
    from cdlm.retention.archive import archive_store_from
    from cdlm.retention.sweep import sweep
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    settings = runtime_settings()
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

    settings = runtime_settings()
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

    settings = runtime_settings()
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


def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply pending migrations as the owner (``CDLM_DATABASE_OWNER_URL`` or its secret, else
    ``DATABASE_URL``); returns the names applied. With the app role's secret named too, the
    role is made to log in with it (``app_login_set``: it had to be set, as on a first
    deployment)."""
    settings = runtime_settings()
    target = settings.database_owner or settings.database
    assert target is not None
    app = settings.database
    loop = asyncio.new_event_loop()  # its own loop: Mangum's stays untouched
    try:
        applied = loop.run_until_complete(
            apply_migrations(
                target, settings.db_connect_timeout, app_role=settings.database_app_role
            )
        )
        result: dict[str, Any] = {"applied": applied}
        if settings.database_owner is not None and app is not None and app.login is not None:
            result["app_login_set"] = loop.run_until_complete(
                ensure_login(target, app, settings.db_connect_timeout)
            )
    finally:
        loop.close()
    return result
