"""AWS Lambda entry points (Serverless Framework: ``serverless.yml``).

``handler`` serves API Gateway (HTTP API v2 and REST v1 events) through Mangum. The ASGI
lifespan is off because Mangum would run it on every invocation; instead the database pool is
opened by the first request of a container and reused by the warm invocations after it.

``migrate`` applies pending schema migrations (``serverless invoke -f migrate``).
The scheduled functions run the jobs of :mod:`cdlm.jobs.registry` through
:func:`cdlm.jobs.runner.run_scheduled` (under the job's lock: a run another runner holds is
skipped, ``{"status": "skipped"}``).
``dsr_tick`` is the hourly schedule of data subject requests (see :mod:`cdlm.dsr.tick`).
``retention_sweep`` is the hourly retention sweep (see :mod:`cdlm.retention.sweep`); it stops
a minute before the function's time runs out and the next invocation resumes it.
``analytics_refresh`` is the daily analytics run (see :mod:`cdlm.jobs.analytics_refresh`).
``audit_sequencer`` chains the read audit records left pending (every minute); the HTTP function
chains them itself after requests that recorded reads (see :mod:`cdlm.jobs.audit_sequencer`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from cdlm.app import create_app
from cdlm.config import ConfigError, load_settings
from cdlm.core.logs import configure_logging
from cdlm.db.lifecycle import apply_migrations
from cdlm.jobs.runner import run_scheduled

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
    requesters' details; returns the counts (the ``request_tick`` job)."""
    return run_scheduled("request_tick", settings, event, context)


def audit_sequencer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Chain the read audit records still pending; returns how many, and how many are left."""
    return run_scheduled("audit_sequencer", settings, event, context)


def retention_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispose of data past its retention period; returns the evidence per policy."""
    return run_scheduled("retention_sweep", settings, event, context)


def match_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A match run (incremental unless the event says ``{"full": true}``; ``{"train": true}``
    retrains first) within the invocation's time; returns its evidence. An unfinished run is
    resumed by the next invocation. Deployed from the package with the ``matching`` extra."""
    return run_scheduled("match_run", settings, event, context)


def analytics_refresh(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Score every customer (RFM, lifetime value, churn risk) as of now, or as of the event's
    ``{"as_of": "2026-01-01"}``; returns the run's evidence. Deployed from the package with the
    ``analytics`` extra."""
    return run_scheduled("analytics_refresh", settings, event, context)


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
