"""``cdlm worker``: the scheduled work of a long-running installation, in one process.

It chains pending read audit records about every second and, unless told not to, runs the
request tick (:func:`cdlm.dsr.tick.tick`) and the retention sweep
(:func:`cdlm.retention.sweep.sweep`) every hour and the analytics refresh
(:mod:`cdlm.jobs.analytics_refresh`) every day, as the Lambda schedules do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from cdlm.jobs import audit_sequencer

if TYPE_CHECKING:
    from cdlm.config import Settings
    from cdlm.dsr.notifier import Notifier
    from cdlm.retention.archive import ArchiveStore
    from cdlm.vault.service import Vault

log = logging.getLogger(__name__)

HOUR = 3600.0


@dataclass(frozen=True)
class HourlyJobs:
    """What the hourly request tick and retention sweep need."""

    settings: Settings
    vault: Vault
    notifier: Notifier
    archive: ArchiveStore
    every: float = HOUR


async def _hourly(jobs: HourlyJobs) -> None:
    from cdlm.analytics.segments.export import destroy_unreachable
    from cdlm.core.principal import SYSTEM
    from cdlm.dsr.tick import tick
    from cdlm.retention.sweep import sweep

    while True:
        try:
            report = await tick(jobs.vault, jobs.notifier, jobs.settings)
            destroyed = await destroy_unreachable(jobs.vault)
            log.info(
                "worker: dsr tick done",
                extra={"tick": asdict(report), "segment_exports_destroyed": destroyed},
            )
        except Exception:
            log.exception("worker: dsr tick failed; the next hour tries again")
        try:
            swept = await sweep(SYSTEM, jobs.vault, jobs.archive)
            log.info(
                "worker: retention sweep done",
                extra={"run_id": str(swept.run_id), "finished": swept.finished},
            )
        except Exception:
            log.exception("worker: retention sweep failed; the next hour resumes it")
        await asyncio.sleep(jobs.every)


async def run_worker(
    stop: asyncio.Event,
    *,
    interval: float = audit_sequencer.INTERVAL,
    hourly: HourlyJobs | None = None,
    daily: Settings | None = None,
) -> None:
    """Run until ``stop`` is set. The sequencer finishes its round; an hourly or daily job in
    progress is cancelled (its finished batches are committed and the next run resumes, or,
    for the analytics refresh, runs again)."""
    chaining = asyncio.create_task(audit_sequencer.run_every(interval, stop))
    scheduled = [asyncio.create_task(_hourly(hourly))] if hourly is not None else []
    if daily is not None:
        from cdlm.jobs.analytics_refresh import run_daily

        scheduled.append(asyncio.create_task(run_daily(daily, stop)))
    try:
        await stop.wait()
    finally:
        stop.set()
        for task in scheduled:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await chaining
