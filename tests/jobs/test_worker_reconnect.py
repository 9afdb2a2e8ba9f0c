"""A worker whose database goes away (server stopped: connections cut, then refused) retries
with backoff, one log line per attempt naming no password, runs nothing meanwhile, and
resumes its schedules when the server is back."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest

from cdlm.config import Settings
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.jobs.worker import Backoff, Worker
from tests.jobs import support

SECRET = "never-logged-password-5f0c"


async def until(condition: object, seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 (polling state)
            await asyncio.sleep(0.02)


async def test_a_worker_retries_with_backoff_while_the_server_is_down_and_resumes(
    short_tmp: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.worker")
    server = EmbeddedPostgres(short_tmp / "pg", delete_on_stop=True)
    target = replace(server.start().with_database("postgres"), password=SECRET)
    probe = support.reset()
    counted = support.job("counted", "counted", seconds=0.1)
    stop = asyncio.Event()
    backoff = Backoff(base=0.1, cap=0.4)
    running = asyncio.create_task(Worker([counted], settings, target, backoff=backoff).run(stop))
    try:
        await until(lambda: probe.finished >= 2)

        await asyncio.to_thread(server.stop)  # cuts the worker's connection, then refuses
        await until(lambda: len(failures(caplog)) >= 4)
        ran_while_down = probe.finished
        await until(lambda: len(failures(caplog)) >= 6)
        assert probe.finished == ran_while_down  # no lock, no run

        back = await asyncio.to_thread(server.start)
        assert back.with_database("postgres") == replace(target, password="")
        await until(lambda: "is back after" in caplog.text)
        await until(lambda: probe.finished >= ran_while_down + 2)
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)
        server.stop()

    assert "lost the connection to the database" in caplog.text
    lines = failures(caplog)
    attempts = [int(m.group(1)) for m in (ATTEMPT.search(line) for line in lines) if m]
    assert attempts == list(range(1, len(lines) + 1))  # one line per attempt, counted
    delays = [float(m.group(1)) for m in (DELAY.search(line) for line in lines) if m]
    ceilings = [min(0.4, 0.1 * 2 ** (n - 1)) for n in range(1, len(delays) + 1)]
    # Each delay is drawn from the upper half of its ceiling (shown to 0.1 s).
    assert all(c / 2 - 0.05 <= d <= c + 0.05 for c, d in zip(ceilings, delays, strict=True))
    assert max(delays) > delays[0]  # it backs off
    assert all(
        line.startswith(f"worker: cannot reach the database {target.safe_description}: ")
        for line in lines
    ), lines[:3]
    assert SECRET not in caplog.text


ATTEMPT = re.compile(r"attempt (\d+) failed")
DELAY = re.compile(r"retrying in ([\d.]+) s")


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cdlm.worker" and "failed, retrying in" in r.getMessage()
    ]
