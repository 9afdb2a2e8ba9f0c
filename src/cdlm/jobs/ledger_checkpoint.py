"""Ledger checkpoints (:mod:`cdlm.ledgers.verify`) wherever cdlm runs.

Verifies the audit trail and the consent ledger from their newest checkpoints and, when intact,
writes checkpoints of their heads to the write-once store (``CDLM_CHECKPOINT_DIR``, or
``checkpoints/`` in ``CDLM_LEDGER_BUCKET``).

- ``cdlm verify --checkpoint``: :func:`run`; ``cdlm verify`` alone verifies without writing.
- ``cdlm worker``: :func:`run` every hour.
- Lambda schedule (``ledgerCheckpoint``, hourly): ``cdlm.lambda_handler.ledger_checkpoint``.

Two at once are safe: a run holds the ``ledger-checkpoint`` lock for its transaction and a
second run returns None at once instead of waiting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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
