"""One lock discipline: a job runs under its PostgreSQL advisory lock, held on a connection of
its own, so two workers, a worker and a Lambda schedule, or the CLI, never run it at once."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

import asyncpg
import pytest

from cdlm.config import DatabaseTarget, Settings
from cdlm.jobs.locks import LockConnection, LockLost
from cdlm.jobs.registry import JOBS, JobContext
from cdlm.jobs.runner import run_job, run_once
from cdlm.jobs.worker import Backoff, Worker
from tests.jobs import support
from tests.support.lambda_invoke import ROOT, cdlm_env, database_url, installation_env, run_python
from tests.test_cli import run_cdlm


async def until(condition: object, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 (polling state)
            await asyncio.sleep(0.02)


async def test_two_workers_at_once_run_a_job_once_and_the_second_says_it_skipped(
    database: DatabaseTarget, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    probe = support.reset()
    held = support.job("held", "held", seconds=0.05)
    stops = [asyncio.Event(), asyncio.Event()]
    caplog.set_level(logging.INFO, logger="cdlm.jobs")
    workers = [asyncio.create_task(Worker([held], settings, database).run(stop)) for stop in stops]
    await asyncio.wait_for(probe.inside.wait(), 20)
    # Both workers try every 50 ms while the first run is held open.
    await until(lambda: caplog.text.count("job held skipped") >= 1)
    await asyncio.sleep(0.5)
    assert probe.entered == 1
    skips = [
        r
        for r in caplog.records
        if r.getMessage() == "job held skipped: another run holds its lock"
    ]
    assert len(skips) == 1  # logged once; repeated skips of the same job go to debug
    probe.gate.set()
    await until(lambda: probe.finished >= 2)  # once released, runs go on (one at a time)
    for stop in stops:
        stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), 20)
    assert probe.entered == probe.finished
    assert probe.cancelled == 0


async def test_a_worker_stopping_cancels_a_long_run_and_frees_its_lock(
    database: DatabaseTarget, settings: Settings
) -> None:
    probe = support.reset()
    held = support.job("held", "held", seconds=3600)
    stop = asyncio.Event()
    running = asyncio.create_task(Worker([held], settings, database, grace=0.3).run(stop))
    await asyncio.wait_for(probe.inside.wait(), 20)
    stop.set()
    await asyncio.wait_for(running, 20)
    assert (probe.entered, probe.cancelled, probe.finished) == (1, 1, 0)
    locks = await LockConnection.open(database)
    try:
        assert await locks.try_lock(held.lock_key)
    finally:
        await locks.close()


async def test_a_run_that_ends_within_the_grace_is_not_cancelled_on_stop(
    database: DatabaseTarget, settings: Settings
) -> None:
    probe = support.reset()
    held = support.job("held", "held", seconds=3600)
    stop = asyncio.Event()
    running = asyncio.create_task(Worker([held], settings, database, grace=10).run(stop))
    await asyncio.wait_for(probe.inside.wait(), 20)
    stop.set()
    await asyncio.sleep(0.3)
    assert not running.done()  # waiting for the run
    probe.gate.set()
    await asyncio.wait_for(running, 20)
    assert (probe.entered, probe.cancelled, probe.finished) == (1, 0, 1)


async def test_the_cli_and_the_lambda_schedule_skip_a_job_another_runner_holds(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    job = JOBS["request_tick"]
    holder = await LockConnection.open(database)
    try:
        assert await holder.try_lock(job.lock_key)
        skipped = run_cdlm("dsr", "tick", **env)
        assert skipped.returncode == 1
        assert skipped.stderr == (
            "cdlm: dsr tick: another run holds the lock cdlm.jobs.request_tick; this one skipped\n"
        )
        invoked = run_python(
            "import json; from cdlm.lambda_handler import dsr_tick; "
            "print(json.dumps(dsr_tick({'source': 'aws.events'}, None)))",
            {**env, "CDLM_LOG_LEVEL": "INFO"},
        )
        assert invoked.returncode == 0, invoked.stderr[-2000:]
        assert json.loads(invoked.stdout.strip().splitlines()[-1]) == {
            "status": "skipped",
            "job": "request_tick",
            "reason": "dsr tick: another run holds the lock cdlm.jobs.request_tick; "
            "this one skipped",
        }
        assert "job request_tick skipped" in invoked.stderr
    finally:
        await holder.close()
    ran = run_cdlm("dsr", "tick", **env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.startswith("flagged 0 due soon and 0 overdue")


HOLD_A_LOCK = """
import asyncio, sys
from cdlm.config import parse_database_url
from cdlm.jobs.locks import LockConnection

async def main():
    locks = await LockConnection.open(parse_database_url(sys.argv[1]))
    assert await locks.try_lock(int(sys.argv[2]))
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_crashed_holder_releases_the_lock(database: DatabaseTarget) -> None:
    key = JOBS["retention_sweep"].lock_key
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_A_LOCK,
        database_url(database),
        str(key),
        cwd=ROOT,
        env=cdlm_env(),
        stdout=asyncio.subprocess.PIPE,
    )
    locks = await LockConnection.open(database)
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"held\n"
        assert not await locks.try_lock(key)
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 20)
        async with asyncio.timeout(20):
            while not await locks.try_lock(key):  # noqa: ASYNC110 (polling the server)
                await asyncio.sleep(0.05)
    finally:
        if holder.returncode is None:
            holder.kill()
        await locks.close()


async def test_a_lost_lock_connection_stops_the_run(
    database: DatabaseTarget, settings: Settings, owner: asyncpg.Connection
) -> None:
    probe = support.reset()
    held = support.job("held", "held")
    locks = await LockConnection.open(database)
    try:
        pid = await locks._connection.fetchval("SELECT pg_backend_pid()")
        running = asyncio.create_task(run_job(held, JobContext(settings), locks))
        await asyncio.wait_for(probe.inside.wait(), 20)
        assert await owner.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(LockLost):
            await asyncio.wait_for(running, 20)
        assert (probe.cancelled, probe.finished) == (1, 0)
        with pytest.raises(LockLost):
            await locks.try_lock(held.lock_key)
    finally:
        await locks.close()
    # Whoever comes next takes the lock.
    probe.gate.set()
    again = await run_once(held, JobContext(settings), database)
    assert again.status == "done"
    assert probe.finished == 1


async def test_a_failing_job_releases_its_lock_and_the_worker_goes_on(
    database: DatabaseTarget, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    probe = support.reset()
    failing = support.job("failing", "failing", seconds=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(
        Worker([failing], settings, database, backoff=Backoff()).run(stop)
    )
    await until(lambda: probe.entered >= 3)
    stop.set()
    await asyncio.wait_for(running, 20)
    assert caplog.text.count("job failing failed; its next run tries again") >= 3
    locks = await LockConnection.open(database)
    try:
        assert await locks.try_lock(failing.lock_key)
    finally:
        await locks.close()
