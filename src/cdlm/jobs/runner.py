"""Running a job under its lock: the one path of the CLI, the Lambda schedules and the worker.

:func:`run_job` takes the job's lock on a :class:`~cdlm.jobs.locks.LockConnection`, runs the
job and releases the lock; when another runner holds it, the job is skipped (and the skip is
logged). :func:`run_once` does that with a lock connection of its own (the CLI; the ORM is
already initialized); :func:`run_scheduled` is a whole Lambda invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cdlm.config import DatabaseTarget
from cdlm.jobs.locks import LockConnection, LockLost
from cdlm.jobs.registry import JOBS, Job, JobContext

if TYPE_CHECKING:
    from cdlm.config import Settings

log = logging.getLogger("cdlm.jobs")

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``done`` (with the job's result) or ``skipped`` (another runner held
    the lock)."""

    job: Job
    status: Literal["done", "skipped"]
    result: Any = None
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        """True when the job did not run."""
        return self.status == "skipped"

    def message(self) -> str:
        """One line for people: why a skipped run did not run."""
        return f"{self.job.title}: another run holds the lock {self.job.lock}; this one skipped"


async def run_job(
    job: Job, context: JobContext, locks: LockConnection, *, quiet_skip: bool = False
) -> Outcome:
    """Run ``job`` under its lock, or skip it when another runner holds the lock.

    The job's own exceptions propagate. If the lock connection is lost during the run, the
    run is cancelled and :class:`LockLost` raised (another runner may hold the lock by now).
    ``quiet_skip`` logs the skip at debug level (a worker's repeated skips of a job another
    worker runs every second).
    """
    if not await locks.try_lock(job.lock_key):
        log.log(
            logging.DEBUG if quiet_skip else logging.INFO,
            "job %s skipped: another run holds its lock",
            job.name,
            extra={"job": job.name, "lock": job.lock},
        )
        return Outcome(job, "skipped")
    started = time.monotonic()
    try:
        body = asyncio.create_task(job.call(context), name=f"cdlm-job-{job.name}")
        lost = asyncio.create_task(locks.lost.wait())
        try:
            await asyncio.wait({body, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not body.done():  # the lock was lost, or this runner is being cancelled
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await body
        if locks.lost.is_set() and (body.cancelled() or body.exception() is not None):
            raise LockLost(f"job {job.name}: the lock connection was lost; the run was stopped")
        result = body.result()  # or the job's exception
    finally:
        await locks.unlock(job.lock_key)
    seconds = time.monotonic() - started
    if job.budget_seconds is not None and seconds > job.budget_seconds + 60:
        log.warning(
            "job %s ran over its time budget",
            job.name,
            extra={"job": job.name, "seconds": round(seconds, 1), "budget": job.budget_seconds},
        )
    return Outcome(job, "done", result, seconds)


async def run_once(
    job: Job, context: JobContext, target: DatabaseTarget, *, connect_timeout: float = 5.0
) -> Outcome:
    """Run ``job`` once under its lock, taken on a connection of its own to ``target`` (the
    ORM is initialized by the caller)."""
    locks = await LockConnection.open(target, connect_timeout)
    try:
        return await run_job(job, context, locks)
    finally:
        await locks.close()


def lambda_budget(job: Job, lambda_context: Any) -> float | None:
    """The run's budget on Lambda: the job's, within the invocation's remaining time less the
    job's margin (at least 10 s)."""
    if lambda_context is None:
        remaining = 900.0
    else:
        remaining = lambda_context.get_remaining_time_in_millis() / 1000
    within = max(remaining - job.margin_seconds, 10.0)
    return within if job.budget_seconds is None else min(job.budget_seconds, within)


def run_scheduled(
    name: str, settings: Settings, event: dict[str, Any] | None, lambda_context: Any
) -> dict[str, Any]:
    """A Lambda invocation of the job ``name``: initialize the ORM, run the job under its lock
    with the event's options within the invocation's time, close the ORM; returns the result as
    JSON, ``{"status": "skipped", ...}`` when another runner holds the lock, or ``{"status":
    "refused", ...}`` when the job refused (its own run lock, or options out of range)."""
    from cdlm.core.errors import DomainError
    from cdlm.db.lifecycle import close_orm, init_orm

    job = JOBS[name]
    database = settings.database
    if database is None:
        raise RuntimeError("DATABASE_URL is not set")
    options = {k: v for k, v in (event or {}).items() if k not in _EVENT_ENVELOPE}
    context = JobContext(settings, lambda_budget(job, lambda_context), options)

    async def work() -> dict[str, Any]:
        orm = await init_orm(database, settings)
        try:
            outcome = await run_once(
                job, context, database, connect_timeout=settings.db_connect_timeout
            )
        except DomainError as refused:
            return {"status": "refused", "reason": refused.message}
        finally:
            await close_orm(orm)
        if outcome.skipped:
            return {"status": "skipped", "job": job.name, "reason": outcome.message()}
        return job.to_json(outcome.result)

    return in_own_loop(work())


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end on an event loop of its own, closed afterwards (a Lambda
    invocation outside the HTTP function's loop, which Mangum keeps)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


#: Keys of an EventBridge scheduled event (not options of the run).
_EVENT_ENVELOPE = frozenset(
    {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
)
