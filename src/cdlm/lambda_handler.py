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
The scheduled functions run the jobs of :mod:`cdlm.jobs.registry` through
:func:`cdlm.jobs.runner.run_scheduled` (under the job's lock: a run another runner holds is
skipped, ``{"status": "skipped"}``).
``dsr_tick`` is the hourly schedule of data subject requests (see :mod:`cdlm.dsr.tick`).
``retention_sweep`` is the hourly retention sweep (see :mod:`cdlm.retention.sweep`); it stops
a minute before the function's time runs out and the next invocation resumes it.
``analytics_refresh`` is the daily analytics run (see :mod:`cdlm.jobs.analytics_refresh`).
``ledger_checkpoint`` verifies the ledgers and checkpoints them hourly (see
:mod:`cdlm.jobs.ledger_checkpoint`).
``event_partitions`` makes the months of events ahead, daily (see
:mod:`cdlm.jobs.event_partitions`).
``audit_sequencer`` chains the read audit records left pending (every minute); the HTTP function
chains them itself after requests that recorded reads (see :mod:`cdlm.jobs.audit_sequencer`).
``bulk_import`` imports customers from objects landing under ``incoming/`` of
``CDLM_IMPORT_BUCKET``, a slice per invocation (see :mod:`cdlm.jobs.bulk_import`).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from cdlm.api.schema import create_schema
from cdlm.app import create_app
from cdlm.config import ConfigError, Settings, load_settings
from cdlm.core.logs import configure_logging
from cdlm.db.lifecycle import apply_migrations, close_orm, ensure_login, init_orm
from cdlm.jobs.runner import in_own_loop, run_scheduled

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
    requesters' details; returns the counts (the ``request_tick`` job)."""
    return run_scheduled("request_tick", runtime_settings(), event, context)


def audit_sequencer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Chain the read audit records still pending; returns how many, and how many are left."""
    return run_scheduled("audit_sequencer", runtime_settings(), event, context)


def ledger_checkpoint(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Verify the audit trail and the consent ledger from their newest checkpoints and write
    new ones to the ledger bucket; returns one summary per ledger (a broken ledger fails the
    invocation, so its alarm fires)."""
    from cdlm.jobs.ledger_checkpoint import broken

    result = run_scheduled("ledger_checkpoint", runtime_settings(), event, context)
    if failed := broken(result):
        raise RuntimeError(f"ledger verification failed: {', '.join(failed)} (see the log)")
    return result


def retention_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispose of data past its retention period; returns the evidence per policy."""
    return run_scheduled("retention_sweep", runtime_settings(), event, context)


def match_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A match run (incremental unless the event says ``{"full": true}``; ``{"train": true}``
    retrains first) within the invocation's time; returns its evidence. An unfinished run is
    resumed by the next invocation. Deployed from the package with the ``matching`` extra."""
    return run_scheduled("match_run", runtime_settings(), event, context)


def analytics_refresh(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Score every customer (RFM, lifetime value, churn risk) as of now, or as of the event's
    ``{"as_of": "2026-01-01"}``; returns the run's evidence. Deployed from the package with the
    ``analytics`` extra."""
    return run_scheduled("analytics_refresh", runtime_settings(), event, context)


#: Seconds of an invocation kept free after the last batch of a bulk import slice (a batch, the
#: progress file and the continuation message fit in it).
BULK_IMPORT_MARGIN = 60.0


def bulk_import(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Import the objects an S3 event (or a continuation message from SQS) names, until a
    margin before the invocation's time runs out; an unfinished import sends its continuation
    to ``CDLM_IMPORT_QUEUE_URL``. Returns each object's status and, for SQS, the messages to
    deliver again (``batchItemFailures``)."""
    import time
    from dataclasses import replace

    import boto3

    from cdlm.core.principal import SYSTEM
    from cdlm.customers.survivorship import trust_table
    from cdlm.jobs import bulk_import as job
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    settings = runtime_settings()
    assert settings.database is not None
    config = settings.bulk_import
    if config is None:
        log.critical("cdlm: configuration error: CDLM_IMPORT_BUCKET: is required by bulk_import")
        raise SystemExit(2)
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 900_000
    deadline = time.monotonic() + remaining_ms / 1000 - BULK_IMPORT_MARGIN
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    # One connection holds the file's lock for the whole slice, another commits the batches.
    own = replace(settings, db_pool_max=max(settings.db_pool_max, 2))
    database = settings.database

    async def work() -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        orm = await init_orm(database, own)
        try:
            vault = Vault(provider_from_settings(settings))
            for delivery in job.deliveries(event):
                obj = delivery.object
                if obj.bucket != config.bucket:
                    log.warning("bulk import: not the import bucket; ignored")
                    results.append({"object": obj.key, "status": "ignored"})
                    continue
                seconds = deadline - time.monotonic()
                if seconds <= 0 and results:  # no time left: it continues in a new invocation
                    outcome = job.SliceResult("continue", delivery.digest)
                else:
                    outcome = await job.run(
                        SYSTEM,
                        vault,
                        job.BulkImport(
                            obj,
                            seconds=max(seconds, 0.0),  # the first always does a batch
                            max_bytes=config.max_bytes,
                            batch_size=config.batch_size,
                            trust=trust_table(settings.source_trust),
                            digest=delivery.digest,
                        ),
                        s3=s3,
                    )
                if outcome.status == "continue":
                    sqs.send_message(
                        QueueUrl=config.queue_url,
                        MessageBody=job.continuation(obj, outcome.digest),
                    )
                elif outcome.status == "busy" and delivery.message_id is not None:
                    failures.append({"itemIdentifier": delivery.message_id})
                results.append({"object": obj.key, "status": outcome.status})
        finally:
            await close_orm(orm)
        return {"results": results, "batchItemFailures": failures}

    return in_own_loop(work())


def event_partitions(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Make this month of events and the next ones (``{"months_ahead": 3}`` by default), and a
    month for events waiting in the default partition; returns the partitions made."""
    return run_scheduled("event_partitions", runtime_settings(), event, context)


def migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply pending migrations as the owner (``CDLM_DATABASE_OWNER_URL`` or its secret, else
    ``DATABASE_URL``); returns the names applied. With the app role's secret named too, the
    role is made to log in with it (``app_login_set``: it had to be set, as on a first
    deployment)."""
    settings = runtime_settings()
    target = settings.database_owner or settings.database
    assert target is not None
    app = settings.database

    async def work() -> dict[str, Any]:
        applied = await apply_migrations(
            target, settings.db_connect_timeout, app_role=settings.database_app_role
        )
        result: dict[str, Any] = {"applied": applied}
        if settings.database_owner is not None and app is not None and app.login is not None:
            result["app_login_set"] = await ensure_login(target, app, settings.db_connect_timeout)
        return result

    return in_own_loop(work())
