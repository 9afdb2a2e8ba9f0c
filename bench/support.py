"""Shared benchmark helpers: a throw-away database and latency statistics."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from cdlm.config import DatabaseTarget, Settings, load_settings, parse_database_url
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import (
    apply_migrations,
    close_orm,
    drop_database,
    ensure_database,
    init_orm,
)
from cdlm.vault.keys import LocalKeyProvider
from cdlm.vault.service import Vault


@asynccontextmanager
async def benchmark_database() -> AsyncIterator[DatabaseTarget]:
    """A migrated database on ``DATABASE_URL``'s server or an embedded one; dropped afterwards."""
    url = os.environ.get("DATABASE_URL")
    workdir: Path | None = None
    server: EmbeddedPostgres | None = None
    if url:
        base = parse_database_url(url)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="cdlm-bench-"))
        server = EmbeddedPostgres(workdir / "pg", delete_on_stop=True)
        base = server.start()
    target = base.with_database(f"cdlm_bench_{uuid.uuid4().hex[:10]}")
    try:
        await ensure_database(target)
        await apply_migrations(target)
        yield target
        await drop_database(target)
    finally:
        if server is not None:
            server.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of ``samples_ms`` (milliseconds), rounded."""
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(cuts[49], 3),
        "p90_ms": round(cuts[89], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(ordered[-1], 3),
    }


def report(name: str, numbers: dict[str, float]) -> None:
    """Print one benchmark's numbers on one line."""
    shown = "  ".join(f"{key}={value}" for key, value in numbers.items())
    print(f"{name:<40} {shown}", flush=True)


@asynccontextmanager
async def benchmark_workspace() -> AsyncIterator[tuple[Path, Settings, Vault]]:
    """A temporary data directory, a migrated database, test settings for both, the ORM
    open on them, and a vault with the local master key."""
    with tempfile.TemporaryDirectory(prefix="cdlm-bench-") as workdir:
        async with benchmark_database() as target:
            environ = {"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40, "CDLM_DATA_DIR": workdir}
            settings = replace(load_settings(environ), database=target)
            orm = await init_orm(target, settings)
            try:
                yield (
                    Path(workdir),
                    settings,
                    Vault(LocalKeyProvider.from_file(settings.master_key_file)),
                )
            finally:
                await close_orm(orm)
