"""The embedded PostgreSQL keeps its data across stop and start."""

from __future__ import annotations

from pathlib import Path

from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import connect, ensure_database


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
