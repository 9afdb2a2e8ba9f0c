"""What a job's lock costs: per run on a worker's kept lock connection, per run on a connection
of its own (the CLI, a Lambda invocation), and the worker's idle audit sequencer round (its
steady load on the database, once a second)."""

from __future__ import annotations

import time

from bench.support import benchmark_workspace, percentiles, report
from cdlm.jobs.locks import LockConnection
from cdlm.jobs.registry import JOBS, Every, Job, JobContext
from cdlm.jobs.runner import run_job, run_once

RUNS = 2_000
OPENED_RUNS = 200


async def idle() -> None:
    """A job that does nothing: what is measured is the lock around it."""


IDLE = Job("idle", "idle", Every(1.0), "bench.job_locks:idle", "cdlm.bench.idle")


async def run() -> None:
    async with benchmark_workspace() as (_, settings, _vault):
        assert settings.database is not None
        target = settings.database
        context = JobContext(settings)
        locks = await LockConnection.open(target)
        try:
            report("job lock, kept connection", await _timed(RUNS, run_job, IDLE, context, locks))
            sequencer = JOBS["audit_sequencer"]
            report(
                "audit sequencer round, nothing pending",
                await _timed(RUNS // 4, run_job, sequencer, context, locks),
            )
        finally:
            await locks.close()
        report(
            "job lock, connection of its own",
            await _timed(OPENED_RUNS, run_once, IDLE, context, target),
        )


async def _timed(n: int, call: object, *args: object) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        outcome = await call(*args)  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
        assert outcome.status == "done"
    return percentiles(samples)
