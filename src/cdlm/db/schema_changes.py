"""Detecting model changes that no migration covers yet (``cdlm makemigrations``)."""

from __future__ import annotations

from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.writer import MigrationWriter

from cdlm.config import DatabaseTarget
from cdlm.db.orm_config import APP_LABEL, tortoise_config

# Detection reads the models and the migration files only; it never connects.
_OFFLINE_TARGET = DatabaseTarget("localhost", 5432, "postgres", "", "cdlm")


async def pending_model_changes() -> list[MigrationWriter]:
    """Migrations that would bring the migration files in line with the models."""
    config = tortoise_config(_OFFLINE_TARGET)
    apps = {APP_LABEL: config["apps"][APP_LABEL]}
    async with TortoiseContext() as ctx:
        await ctx.init(config=config, init_connections=False)
        assert ctx.apps is not None
        return await MigrationAutodetector(ctx.apps, apps).changes()


async def write_migrations(name: str | None = None) -> list[Path]:
    """Write a migration file for each pending change; returns the files written."""
    written: list[Path] = []
    for writer in await pending_model_changes():
        if name:
            number = writer.name.split("_", 1)[0]
            writer.name = f"{number}_{name}"
        written.append(Path(writer.write()))
    return written
