"""Ledger checkpoints (:mod:`cdlm.ledgers.verify`) wherever cdlm runs.

Verifies the audit trail and the consent ledger from their newest checkpoints and, when intact,
writes checkpoints of their heads to the write-once store (``CDLM_CHECKPOINT_DIR``, or
``checkpoints/`` in ``CDLM_LEDGER_BUCKET``).

- ``cdlm verify --checkpoint``: :func:`run`; ``cdlm verify`` alone verifies without writing.
- ``cdlm worker`` and the Lambda schedule (``ledgerCheckpoint``, hourly,
  ``cdlm.lambda_handler.ledger_checkpoint``): :func:`scheduled`, through the job registry
  (:mod:`cdlm.jobs.registry`), under the job's lock.

Two at once are safe: a run also holds the ``ledger-checkpoint`` lock for its transaction (the
CLI's ``cdlm verify`` takes no job lock) and a second run returns None at once instead of
waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.core import chain
from cdlm.core.locks import lock_key
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import store_from

if TYPE_CHECKING:
    from cdlm.config import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "ledger-checkpoint"
HOUR = 3600.0


async def run(
    settings: Settings, *, full: bool = False, write: bool = True
) -> list[ledgers.Verification] | None:
    """Verify each ledger (from its newest checkpoint, or ``full``y from its first entry) and,
    with ``write``, checkpoint the intact ones; None when another run holds the lock. Logs one
    line per ledger (positions and counts only)."""
    store = store_from(settings, chain.keyring())
    async with in_transaction():
        rows = await get_connection("default").execute_query_dict(
            'SELECT pg_try_advisory_xact_lock($1) AS "locked"', [lock_key(LOCK_NAME)]
        )
        if not rows[0]["locked"]:
            log.info("ledger checkpoint: another run holds the lock; skipped")
            return None
        reports = []
        for ledger in ledgers.LEDGERS:
            if write:
                report = await ledgers.checkpoint(ledger, store, full=full)
            else:
                report = await ledgers.verify(ledger, store, full=full)
            reports.append(report)
            _log(report)
    return reports


def _log(report: ledgers.Verification) -> None:
    details = {
        "ledger": report.ledger,
        "entries_checked": report.entries_checked,
        "head_sequence": report.head_sequence,
        "from_checkpoint": report.checkpoint.sequence if report.checkpoint else None,
        "checkpointed": report.written.sequence if report.written else None,
    }
    if report.ok:
        log.info("ledger checkpoint: intact", extra=details)
    else:
        log.error(
            "ledger checkpoint: the ledger is broken",
            extra={
                **details,
                "first_broken_sequence": report.first_broken_sequence,
                "problem": report.problem.value if report.problem else None,
            },
        )


async def scheduled(settings: Settings, options: Mapping[str, Any]) -> list[ledgers.Verification]:
    """The scheduled run: verify from the newest checkpoints (``{"full": true}`` in the options:
    from the first entries) and checkpoint the intact ledgers. Under the job's lock, so the
    transaction lock of :func:`run` is free unless ``cdlm verify --checkpoint`` holds it; that
    run checkpoints anyway, so this one then reports nothing."""
    reports = await run(settings, full=options.get("full") is True)
    return reports or []


def summary(reports: list[ledgers.Verification]) -> dict[str, Any]:
    """The scheduled run's result as JSON: one summary per ledger (positions and counts)."""
    return {"ledgers": [ledgers.summary(report) for report in reports]}


def broken(result: Mapping[str, Any]) -> list[str]:
    """The ledgers a scheduled run's result reports broken."""
    return [entry["ledger"] for entry in result.get("ledgers", []) if not entry["ok"]]
