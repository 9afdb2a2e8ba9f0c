"""``cdlm worker``: every registered job (:data:`cdlm.jobs.registry.JOBS`) on its schedule, in
one process, for installations that do not use the Lambda schedules.

Each run goes through :func:`cdlm.jobs.runner.run_job`, under the job's lock, taken on one
connection the worker keeps for that (:class:`~cdlm.jobs.locks.LockConnection`): a job another
worker, a Lambda schedule or the CLI is running is skipped. A job whose extras are not installed
is reported once and left out.

If the database goes away (connection refused, server restart, the session terminated), the
runs in progress are stopped (their locks are gone with the connection), and the worker tries to
reach the database again with exponential backoff and jitter, one log line per attempt, then
resumes the schedules where they were.

On SIGTERM/SIGINT (:func:`run_worker`'s ``stop``), a run in progress gets a few seconds
(``grace``) to finish, the audit sequencer's round say; a longer one is cancelled: its committed
batches stay and the next run resumes (or, for the analytics refresh, runs again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.core.errors import Conflict
from cdlm.db.errors import DatabaseUnavailable
from cdlm.jobs.locks import LockConnection, LockLost
from cdlm.jobs.registry import JOBS, Every, Job, JobContext
from cdlm.jobs.runner import run_job

log = logging.getLogger("cdlm.worker")

#: Seconds a run in progress gets to finish on shutdown before it is cancelled.
GRACE_SECONDS = 5.0
#: Seconds between checks that the lock connection still answers.
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts to reach the database: exponential from ``base`` up to
    ``cap`` seconds, each drawn at random from its upper half (jitter, so workers that lost
    the database together do not come back in step)."""

    base: float = 1.0
    cap: float = 60.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1, 2, ...)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 32))
        jitter: float = self.random()
        return ceiling / 2 + jitter * ceiling / 2


def available(jobs: Sequence[Job]) -> tuple[list[Job], list[Job]]:
    """``jobs`` split into those that can run here and those whose extras are missing."""
    ready = [job for job in jobs if not job.missing_extras()]
    return ready, [job for job in jobs if job.missing_extras()]


def describe(jobs: Sequence[Job]) -> str:
    """The schedules of ``jobs`` in one line: ``dsr tick and retention sweep every hour; ...``."""
    groups: dict[str, list[str]] = {}
    for job in jobs:
        groups.setdefault(job.schedule.describe(), []).append(job.title)
    parts = []
    for when, titles in groups.items():
        named = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        parts.append(f"{named} {when}")
    return "; ".join(parts)


class Worker:
    """Runs ``jobs`` on their schedules against ``target`` (the ORM is initialized by the
    caller, on the same database)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        settings: Settings,
        target: DatabaseTarget,
        *,
        backoff: Backoff | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.jobs = list(jobs)
        self.settings = settings
        self.target = target
        self.backoff = backoff or Backoff()
        self.heartbeat = heartbeat
        self.grace = grace
        self._due: dict[str, datetime] = {}
        self._skipping: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, reconnecting whenever the database is lost."""
        now = clock.now()
        self._due = {job.name: job.schedule.first(now) for job in self.jobs}
        attempt = 0
        while not stop.is_set():
            try:
                locks = await LockConnection.open(self.target, self.settings.db_connect_timeout)
            except DatabaseUnavailable as error:
                attempt += 1
                delay = self.backoff.delay(attempt)
                log.warning(
                    "worker: %s; attempt %d failed, retrying in %.1f s", error, attempt, delay
                )
                await _wait(stop, delay)
                continue
            if attempt:
                log.warning(
                    "worker: the database %s is back after %d failed attempts; resuming jobs",
                    self.target.safe_description,
                    attempt,
                )
                attempt = 0
            try:
                await self._serve(locks, stop)
            finally:
                await locks.close()
            if not stop.is_set():
                log.warning(
                    "worker: lost the connection to the database %s; runs in progress were "
                    "stopped, reconnecting",
                    self.target.safe_description,
                )

    async def _serve(self, locks: LockConnection, stop: asyncio.Event) -> None:
        """Run the schedules until ``stop`` is set or the lock connection is lost."""
        halt = asyncio.Event()

        async def watch() -> None:
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(locks.lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                halt.set()

        async def beat() -> None:
            while not halt.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(halt.wait(), self.heartbeat)
                    return
                with contextlib.suppress(LockLost):
                    await locks.ping()

        tasks = [asyncio.create_task(watch()), asyncio.create_task(beat())]
        tasks += [
            asyncio.create_task(self._schedule(job, locks, halt), name=f"cdlm-{job.name}")
            for job in self.jobs
        ]
        try:
            await halt.wait()
        finally:
            halt.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _schedule(self, job: Job, locks: LockConnection, halt: asyncio.Event) -> None:
        """Run ``job`` whenever it is due until ``halt``; then a run in progress gets the grace
        to finish (none when the lock connection is lost) and is cancelled."""
        context = JobContext(self.settings, job.budget_seconds)
        while not halt.is_set():
            delay = (self._due[job.name] - clock.now()).total_seconds()
            if delay > 0:
                await _wait(halt, delay)
                continue
            started = clock.now()
            run = asyncio.create_task(self._run(job, context, locks))
            halted = asyncio.create_task(halt.wait())
            try:
                await asyncio.wait({run, halted}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                halted.cancel()
            if not run.done():
                if not locks.lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(run), self.grace)
                if not run.done():
                    log.info("worker: job %s cancelled in the middle of a run", job.name)
                    run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                return
            if run.result():  # ran, failed or skipped: the next run per the schedule
                self._due[job.name] = _after(job, started, clock.now())

    async def _run(self, job: Job, context: JobContext, locks: LockConnection) -> bool:
        """One run, logged; False when the loss of the lock connection stopped it (it runs
        again as soon as the worker is back)."""
        try:
            outcome = await run_job(job, context, locks, quiet_skip=job.name in self._skipping)
        except LockLost:
            return False
        except Conflict as refused:
            log.info("worker: job %s refused: %s", job.name, refused.message)
            return True
        except Exception:
            log.exception("worker: job %s failed; its next run tries again", job.name)
            return True
        if outcome.skipped:
            self._skipping.add(job.name)
            return True
        self._skipping.discard(job.name)
        summary = _summary(job, outcome.result)
        log.log(
            logging.DEBUG if _frequent(job) else logging.INFO,
            "worker: job %s done",
            job.name,
            extra={"job": job.name, "seconds": round(outcome.seconds, 3), "result": summary},
        )
        return True


def _after(job: Job, started: datetime, now: datetime) -> datetime:
    """The next due time after a run that started at ``started`` (never in the past: runs
    missed while the database was away are not made up one by one)."""
    due = job.schedule.next_after(started)
    return due if due > now else now


def _frequent(job: Job) -> bool:
    """A job running more than once a minute: its runs are logged at debug level."""
    return isinstance(job.schedule, Every) and job.schedule.seconds < 60


def _summary(job: Job, result: object) -> dict[str, object]:
    try:
        converted = job.to_json(result)
    except Exception:  # the run is done; its summary is only for the log
        return {}
    return converted if isinstance(converted, dict) else {"result": converted}


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def select(
    only: Sequence[str] = (), skip: Sequence[str] = (), jobs: Mapping[str, Job] = JOBS
) -> list[Job]:
    """The jobs named by ``only`` (all when empty) less those named by ``skip``; an unknown
    name raises ``KeyError`` naming it."""
    for name in (*only, *skip):
        if name not in jobs:
            raise KeyError(name)
    chosen = [jobs[name] for name in only] if only else list(jobs.values())
    return [job for job in chosen if job.name not in skip]


def with_interval(jobs: Sequence[Job], name: str, seconds: float) -> list[Job]:
    """``jobs`` with the job ``name`` running every ``seconds`` instead."""
    return [replace(job, schedule=Every(seconds)) if job.name == name else job for job in jobs]


async def run_worker(
    stop: asyncio.Event,
    jobs: Sequence[Job],
    settings: Settings,
    target: DatabaseTarget,
    *,
    backoff: Backoff | None = None,
) -> None:
    """Run ``jobs`` until ``stop`` is set (see :class:`Worker`)."""
    await Worker(jobs, settings, target, backoff=backoff).run(stop)
