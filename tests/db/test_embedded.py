"""The embedded PostgreSQL keeps its data across stop and start, and never outlives its users.

The lifecycle tests run real processes: a child using the server as ``cdlm serve`` does
(``tests/support/embedded_holder.py``), killed with SIGKILL or stopped with SIGTERM, and the
server's own processes, found in /proc by the data directory on their command line.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdlm.config import DatabaseTarget
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import connect, ensure_database

REPO = Path(__file__).resolve().parents[2]
PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self" / "cmdline").exists(), reason="reads /proc")


async def test_data_survives_a_restart(short_tmp: Path) -> None:
    pgdata = short_tmp / "pg"
    server = EmbeddedPostgres(pgdata)
    target = server.start("keep")
    try:
        await ensure_database(target)
        connection = await connect(target)
        await connection.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        await connection.close()
    finally:
        server.stop()
    assert (pgdata / "PG_VERSION").exists()

    again = EmbeddedPostgres(pgdata, delete_on_stop=True)
    target = again.start("keep")
    try:
        assert await ensure_database(target) is False
        connection = await connect(target)
        assert await connection.fetchval("SELECT v FROM kept") == 42
        await connection.close()
    finally:
        again.stop()
    assert not pgdata.exists()


def postgres_pids(pgdata: Path) -> list[int]:
    """Live processes naming ``pgdata`` on their command line (the postmaster of its server)."""
    name = str(pgdata.resolve())
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if name.encode() in arguments:
            pids.append(int(entry.name))
    return pids


def postgres_left(pgdata: Path, seconds: float = 10.0) -> list[int]:
    """The processes of ``pgdata``'s server still there after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (pids := postgres_pids(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: nothing here reaps orphans)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_dead(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while is_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


async def data_directory(target: DatabaseTarget) -> str:
    """Asks the server at ``target`` which data directory it serves."""
    connection = await connect(target)
    try:
        return str(await connection.fetchval("SHOW data_directory"))
    finally:
        await connection.close()


class Holders:
    """Child processes using the embedded server of a data directory, cleaned up afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen[str]] = []
        self.pgdatas: set[Path] = set()

    def spawn(self, pgdata: Path) -> subprocess.Popen[str]:
        """A child that has started (or joined) the server of ``pgdata`` and keeps using it."""
        self.pgdatas.add(pgdata)
        log = self.workdir / f"holder-{len(self.children)}.log"
        with log.open("w") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.support.embedded_holder", str(pgdata)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.children.append(child)
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        line = child.stdout.readline().strip() if ready else ""
        assert line == "ready", f"the holder did not start: {log.read_text()}"
        return child

    def clean_up(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        for pgdata in self.pgdatas:
            for pid in postgres_pids(pgdata):
                with contextlib.suppress(ProcessLookupError):  # it may have just gone
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown of a server left by a failure
            postgres_left(pgdata)


@pytest.fixture
def holders(short_tmp: Path) -> Iterator[Holders]:
    holders = Holders(short_tmp)
    try:
        yield holders
    finally:
        holders.clean_up()


@needs_proc
async def test_a_server_left_by_a_killed_process_is_replaced_and_stopped(
    short_tmp: Path, holders: Holders
) -> None:
    pgdata = short_tmp / "pg"
    child = holders.spawn(pgdata)
    left = postmaster_pid(pgdata)
    child.kill()
    child.wait()
    assert is_alive(left)  # `cdlm serve` was killed; its server was not

    server = EmbeddedPostgres(pgdata)
    target = server.start("postgres")
    try:
        assert await data_directory(target) == str(pgdata.resolve())
        assert postmaster_pid(pgdata) != left  # a fresh server, owned by this process
        assert not is_alive(left)
    finally:
        server.stop()
    assert postgres_left(pgdata) == []


@needs_proc
async def test_a_stale_postmaster_pid_of_a_dead_server_is_ignored(
    short_tmp: Path, holders: Holders
) -> None:
    pgdata = short_tmp / "pg"
    child = holders.spawn(pgdata)
    postmaster = postmaster_pid(pgdata)
    workers = children_of(postmaster)
    child.kill()  # everything is killed, as by the OOM killer or a power cut
    child.wait()
    os.kill(postmaster, signal.SIGKILL)
    for pid in [postmaster, *workers]:
        wait_dead(pid)
    assert postmaster_pid(pgdata) == postmaster  # the server's lock file outlived it

    server = EmbeddedPostgres(pgdata)
    target = server.start("postgres")
    try:
        assert await data_directory(target) == str(pgdata.resolve())
    finally:
        server.stop()
    assert postgres_left(pgdata) == []


@needs_proc
async def test_a_postmaster_pid_naming_the_server_of_another_directory_is_not_followed(
    short_tmp: Path, holders: Holders
) -> None:
    pgdata, other = short_tmp / "pg", short_tmp / "other"
    server = EmbeddedPostgres(pgdata)
    server.start()
    server.stop()
    holder = holders.spawn(other)
    theirs = postmaster_pid(other)
    # What a copy of the other directory taken while its server ran would carry.
    (pgdata / "postmaster.pid").write_text((other / "postmaster.pid").read_text())

    target = server.start("postgres")
    try:
        assert await data_directory(target) == str(pgdata.resolve())
    finally:
        server.stop()
    assert postgres_left(pgdata) == []
    assert is_alive(theirs)  # the other directory's server was never touched

    holder.terminate()
    assert holder.wait(timeout=30) == 0
    assert postgres_left(other) == []


@needs_proc
async def test_a_shared_server_is_stopped_by_its_last_live_user(
    short_tmp: Path, holders: Holders
) -> None:
    pgdata = short_tmp / "pg"
    killed = holders.spawn(pgdata)
    survivor = holders.spawn(pgdata)
    shared = postmaster_pid(pgdata)
    killed.kill()
    killed.wait()

    server = EmbeddedPostgres(pgdata)
    target = server.start("postgres")
    try:
        assert await data_directory(target) == str(pgdata.resolve())
        assert postmaster_pid(pgdata) == shared  # a live process uses it: shared, not replaced
    finally:
        server.stop()
    assert is_alive(shared)  # still in use by the survivor

    survivor.terminate()  # Ctrl+C on the last one alive stops the server
    assert survivor.wait(timeout=30) == 0
    wait_dead(shared)
    assert postgres_left(pgdata) == []
