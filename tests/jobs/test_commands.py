"""The match run and the analytics refresh as the CLI and their Lambda schedules run them:
through the registry, with their options, under the job's lock."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bench.people import people
from tortoise.transactions import in_transaction

from cdlm.analytics.models import AnalyticsRun
from cdlm.config import DatabaseTarget, Settings
from cdlm.customers.ingest import CustomerIngest, ingest_batch
from cdlm.jobs.locks import LockConnection
from cdlm.jobs.registry import JOBS
from cdlm.matching.models import MatchRun
from cdlm.vault.service import Vault
from tests.factories import source
from tests.support.lambda_invoke import ROOT, cdlm_env, installation_env, run_python
from tests.test_cli import run_cdlm


def invoke(function: str, event: dict[str, object]) -> str:
    return (
        f"import json; from cdlm.lambda_handler import {function}; "
        f"print(json.dumps({function}({event!r}, None)))"
    )


async def test_the_match_run_from_the_lambda_schedule_and_the_cli(
    database: DatabaseTarget, settings: Settings, vault: Vault
) -> None:
    async with in_transaction():
        await ingest_batch(
            vault,
            [
                CustomerIngest(source=source("crm"), profile=dict(r.profile))
                for r in people(60, seed=5)
            ],
        )
    env = installation_env(database, settings.master_key_file)
    result = run_python(invoke("match_run", {"source": "aws.events", "full": True}), env)
    assert result.returncode == 0, result.stderr[-2000:]
    evidence = json.loads(result.stdout.strip().splitlines()[-1])
    run = await MatchRun.get(id=evidence["run_id"])
    assert (evidence["status"], evidence["full"]) == (run.status.value, True)
    # On Lambda the budget is the invocation's time less the job's margin (15 min - 90 s).
    assert run.budget_seconds == 900 - 90

    cli = run_cdlm("match", "run", "--max-seconds", "120", **env)
    assert cli.returncode == 0, cli.stderr[-2000:]
    latest = await MatchRun.all().order_by("-started_at").first()
    assert latest is not None
    assert latest.id != run.id
    assert latest.budget_seconds == 120
    assert cli.stdout.strip().startswith(f"match run {latest.id} {latest.status.value}: ")

    holder = await LockConnection.open(database)
    try:
        assert await holder.try_lock(JOBS["match_run"].lock_key)
        busy = run_cdlm("match", "run", **env)
    finally:
        await holder.close()
    assert busy.returncode == 1
    assert busy.stderr == (
        "cdlm: match run: another run holds the lock cdlm.jobs.match_run; this one skipped\n"
    )
    assert await MatchRun.all().count() == 2


async def test_the_analytics_refresh_takes_its_moment_from_the_event_and_the_cli(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    result = run_python(invoke("analytics_refresh", {"as_of": "2026-01-01"}), env)
    assert result.returncode == 0, result.stderr[-2000:]
    evidence = json.loads(result.stdout.strip().splitlines()[-1])
    assert evidence["as_of"] == "2026-01-01T00:00:00+00:00"
    assert evidence["status"] == "finished"

    cli = run_cdlm("analytics", "refresh", "--as-of", "2025-06-30T12:00:00+02:00", **env)
    assert cli.returncode == 0, cli.stderr[-2000:]
    runs = await AnalyticsRun.all().order_by("started_at")
    assert [r.as_of.isoformat() for r in runs] == [
        "2026-01-01T00:00:00+00:00",
        "2025-06-30T10:00:00+00:00",
    ]
    assert cli.stdout.startswith(f"analytics run {runs[1].id} finished as of ")


WITHOUT_SPLINK = (
    "import sys, runpy; sys.modules['splink'] = None; "
    "sys.argv = ['cdlm', 'worker', '--job', 'match_run', '--job', 'request_tick']; "
    "runpy.run_module('cdlm', run_name='__main__')"
)


async def test_a_worker_names_a_job_whose_extra_is_missing_once_and_runs_the_others(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WITHOUT_SPLINK,
        cwd=ROOT,
        env=cdlm_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            lines = [(await process.stdout.readline()).decode() for _ in range(3)]
        assert lines == [
            "worker: dsr tick every hour.\n",
            "worker: match run: the matching extra is not installed; skipped.\n",
            "Stop with Ctrl+C.\n",
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    assert out.decode() == "worker stopped\n"


def test_a_worker_refuses_an_unknown_job() -> None:
    result = run_cdlm("worker", "--job", "nightly")
    assert result.returncode == 2
    assert result.stderr == f"cdlm: no job 'nightly'; the jobs are: {', '.join(JOBS)}\n"
    assert "audit_sequencer, request_tick, retention_sweep, match_run" in result.stderr
