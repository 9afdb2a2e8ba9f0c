"""Who chains pending read records: the server in the background, ``cdlm worker``, and on
Lambda the HTTP function after requests that recorded reads plus a scheduled function."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from cdlm.app import create_app
from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry, AuditPending
from cdlm.config import DatabaseTarget, Settings
from cdlm.core.principal import Principal, PrincipalKind
from cdlm.core.roles import Role
from cdlm.jobs import audit_sequencer
from tests.audit.test_read_audit import audit_lock_held
from tests.support.lambda_invoke import ROOT, cdlm_env, installation_env, run_python
from tests.support.sql_counter import StatementRecorder

AGENT = Principal(PrincipalKind.USER, uuid.uuid4(), Role.AGENT, "Agnes")


async def pending() -> int:
    return await AuditPending.all().count()


async def until_nothing_pending(seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while await pending():  # noqa: ASYNC110 (polling the database: no event to wait on)
            await asyncio.sleep(0.05)


async def test_the_background_runner_chains_what_is_recorded() -> None:
    async with audit_sequencer.in_background(interval=0.05):
        for _ in range(3):
            await audit.record_read(AGENT, [uuid.uuid4()], ["email"])
            await until_nothing_pending()
    assert await AuditEntry.all().count() == 3
    assert (await audit.verify_chain()).ok


async def test_the_background_runner_survives_a_failed_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = []
    original = audit_sequencer.sequencer.chain_all

    async def fails_once(**kwargs: object) -> int:
        if not failures:
            failures.append(1)
            raise RuntimeError("database went away")
        return await original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit_sequencer.sequencer, "chain_all", fails_once)
    await audit.record_read(AGENT, [uuid.uuid4()], ["email"])
    async with audit_sequencer.in_background(interval=0.05):
        await until_nothing_pending()
    assert failures == [1]


# ------------------------------------------------------------------ Lambda: after requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A request that reads one customer's email (on /read) or nothing personal."""
    if scope["path"] == "/read":
        await audit.record_read(AGENT, [uuid.uuid4()], ["email"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_lambda_requests_chain_their_reads_at_most_once_a_second(
    sql: StatementRecorder,
) -> None:
    clock = FakeClock()
    middleware = audit_sequencer.ChainAfterReads(reading_app, monotonic=clock)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as client:
        assert (await client.get("/read")).status_code == 200
        assert await pending() == 0  # chained before the response went out

        clock.now += 0.3
        await client.get("/read")
        assert await pending() == 1  # not again within the second
        clock.now += 0.8
        await client.get("/other")
        assert await pending() == 0  # the next request after a second chains it

        clock.now += 5
        with sql.recording():
            await client.get("/other")
        assert sql.count == 0  # nothing recorded since: no attempt

        clock.now += 5
        async with audit_lock_held():  # a writer or another container holds the lock
            await client.get("/read")
            assert await pending() == 1  # it did not wait
        clock.now += 5
        await client.get("/other")
        assert await pending() == 0
    assert (await audit.verify_chain()).ok


def test_the_lambda_app_chains_after_requests_and_the_server_does_not(settings: Settings) -> None:
    def chains_after_requests(database: str) -> bool:
        app = create_app(settings, database=database)  # type: ignore[arg-type]
        return any(m.cls is audit_sequencer.ChainAfterReads for m in app.user_middleware)

    assert chains_after_requests("lazy")
    assert not chains_after_requests("lifespan")
    assert not chains_after_requests("external")


INVOKE_SEQUENCER = (
    "import json; from cdlm.lambda_handler import audit_sequencer; "
    "print(json.dumps(audit_sequencer({'source': 'aws.events'}, None)))"
)


async def test_the_scheduled_lambda_function_chains_what_is_left(
    database: DatabaseTarget, settings: Settings
) -> None:
    for _ in range(3):
        await audit.record_read(AGENT, [uuid.uuid4()], ["email"])
    result = run_python(INVOKE_SEQUENCER, installation_env(database, settings.master_key_file))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"chained": 3, "pending": 0}
    assert await AuditEntry.all().count() == 3


# ------------------------------------------------------------------ cdlm worker


async def test_cdlm_worker_chains_reads_until_stopped(
    database: DatabaseTarget, settings: Settings
) -> None:
    env = installation_env(database, settings.master_key_file)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cdlm",
        "worker",
        "--interval",
        "0.2",
        cwd=ROOT,
        env=cdlm_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            banner = (await process.stdout.readline()).decode()
        assert banner.startswith("worker: chaining read audit records every 0.2 s"), banner
        assert "dsr tick, retention sweep and ledger checkpoint every hour" in banner
        recorded = []
        for _ in range(2):
            recorded.append(await audit.record_read(AGENT, [uuid.uuid4()], ["email"]))
            await until_nothing_pending()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip().endswith("worker stopped")
    assert "failed" not in err.decode()
    reads = await AuditEntry.filter(action="customer.read").order_by("sequence")
    assert [e.id for e in reads] == recorded
    # The hourly jobs ran at start: the sweep is audited.
    assert await AuditEntry.filter(action="retention.sweep").exists()
    assert (await audit.verify_chain()).ok
