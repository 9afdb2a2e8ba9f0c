"""``cdlm serve --with-worker`` (``make serve WORKER=1``): the API and, in a child process on
the same database, ``cdlm worker`` without the audit sequencer (the server runs that one)."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx
import psutil  # type: ignore[import-untyped]

from cdlm.audit.models import AuditEntry
from cdlm.config import DatabaseTarget, Settings
from tests.support.lambda_invoke import ROOT, cdlm_env, installation_env
from tests.test_cli import free_port


async def test_serve_with_worker_runs_the_jobs_beside_the_api_and_stops_them(
    database: DatabaseTarget, settings: Settings
) -> None:
    port = free_port()
    env = installation_env(database, settings.master_key_file, CDLM_PORT=str(port))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cdlm",
        "serve",
        "--with-worker",
        cwd=ROOT,
        env=cdlm_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(90):
            while not any(line.startswith("worker: ") for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "cdlm serve exited"
                lines.append(line)
        (banner,) = [line for line in lines if line.startswith("worker: ")]
        assert banner.startswith(
            "worker: dsr tick, retention sweep and ledger checkpoint every hour; match run"
        )
        assert "audit" not in banner  # the server chains read records itself
        children = psutil.Process(process.pid).children()
        assert [c.cmdline()[-4:] for c in children] == [
            ["cdlm", "worker", "--skip", "audit_sequencer"]
        ]
        async with httpx.AsyncClient() as client:
            async with asyncio.timeout(30):
                while True:
                    try:
                        health = await client.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            assert health.json()["status"] == "ok"
        async with asyncio.timeout(60):  # the hourly jobs run when the worker starts
            while not await AuditEntry.filter(action="retention.sweep").exists():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # the server only: it stops its worker
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    assert "worker stopped" in out.decode()
    assert not any(child.is_running() for child in children)
