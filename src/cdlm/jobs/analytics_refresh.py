"""The analytics refresh (:mod:`cdlm.analytics.runs`) wherever cdlm runs.

- ``cdlm analytics refresh [--as-of DATE]``, ``cdlm worker`` (daily) and the Lambda schedule
  (``analyticsRefresh`` in serverless.yml, daily): :func:`run`, the ``analytics_refresh`` job
  of :mod:`cdlm.jobs.registry`.

Two at once are safe: a job holds its lock, and a run holds the analytics lock, so a second is
refused (``RUN_IN_PROGRESS``) instead of waiting. numpy and scipy are imported only when a run
starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cdlm.jobs.registry import JobContext

if TYPE_CHECKING:
    from cdlm.analytics.models import AnalyticsRun
    from cdlm.config import Settings


async def run(context: JobContext) -> AnalyticsRun:
    """The job: a run as of the options' ``as_of`` (a datetime, or ISO 8601 text, UTC when it
    names no offset; default: now)."""
    raw = context.options.get("as_of")
    as_of = datetime.fromisoformat(raw) if isinstance(raw, str) and raw else raw or None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return await run_once(context.settings, as_of)


async def run_once(settings: Settings, as_of: datetime | None = None) -> AnalyticsRun:
    """Score every customer as of ``as_of`` (default: now); returns the run's evidence.
    Raises :class:`~cdlm.core.errors.Conflict` while another run holds the lock."""
    from cdlm.analytics import runs

    return await runs.refresh(runs.options_from(settings, as_of))
