"""The analytics refresh (:mod:`cdlm.analytics.runs`) wherever cdlm runs.

- ``cdlm analytics refresh [--as-of DATE]``: :func:`run_once`.
- ``cdlm worker``: :func:`run_daily`, once a day.
- Lambda schedule (``analyticsRefresh`` in serverless.yml, daily): :func:`run_once`.

Two at once are safe: a run holds the analytics lock, and a second is refused
(``RUN_IN_PROGRESS``) instead of waiting. numpy and scipy are imported only when a run starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from cdlm.core.errors import Conflict

if TYPE_CHECKING:
    from cdlm.analytics.models import AnalyticsRun
    from cdlm.config import Settings

log = logging.getLogger(__name__)

DAY = 86_400.0


async def run_once(settings: Settings, as_of: datetime | None = None) -> AnalyticsRun:
    """Score every customer as of ``as_of`` (default: now); returns the run's evidence.
    Raises :class:`~cdlm.core.errors.Conflict` while another run holds the lock."""
    from cdlm.analytics import runs

    return await runs.refresh(runs.options_from(settings, as_of))


async def run_daily(
    settings: Settings, stop: asyncio.Event | None = None, every: float = DAY
) -> None:
    """Run :func:`run_once` now and then every ``every`` seconds until ``stop`` is set (or the
    task is cancelled). A refusal or failure is logged and the next day tries again."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            run = await run_once(settings)
            log.info(
                "worker: analytics refresh done",
                extra={"run_id": str(run.id), "scored": run.customers_scored},
            )
        except Conflict:
            log.info("worker: an analytics run is already running; skipped")
        except Exception:
            log.exception("worker: analytics refresh failed; the next day tries again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
