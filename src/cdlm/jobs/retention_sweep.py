"""The retention sweep as a job (``retention_sweep``): :func:`cdlm.retention.sweep.sweep` as
the system, within the run's budget; an unfinished sweep is resumed by the next run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cdlm.config import Settings

if TYPE_CHECKING:
    from cdlm.retention.sweep import Report


async def run(settings: Settings, budget_seconds: float | None = None) -> Report:
    """Run (or resume) the sweep for at most ``budget_seconds``; returns its evidence."""
    from cdlm.core.principal import SYSTEM
    from cdlm.retention.archive import archive_store_from
    from cdlm.retention.sweep import sweep
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    vault = Vault(provider_from_settings(settings))
    return await sweep(SYSTEM, vault, archive_store_from(settings), max_seconds=budget_seconds)


def summary(report: Report) -> dict[str, Any]:
    """The evidence per policy as JSON (counts and digests only)."""
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
