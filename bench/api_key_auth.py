"""What authenticating a request with an API key costs, cold (argon2id) and warm (cached).

Both use the production hashing parameters (argon2id, 64 MiB, 3 passes), against a real
PostgreSQL: the warm path still reads the key's row on every request.
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.support import benchmark_database, percentiles, report
from cdlm.auth import api_keys
from cdlm.auth.service import authenticate, create_api_key
from cdlm.auth.settings import auth_settings
from cdlm.config import load_settings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.db.lifecycle import close_orm, init_orm

ROUNDS = 200


async def run() -> None:
    async with benchmark_database() as target:
        settings = replace(
            load_settings({"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40}), database=target
        )
        auth = auth_settings(settings)
        context = await init_orm(target, settings)
        try:
            created = await create_api_key(
                SYSTEM, name="bench", role=Role.AGENT, expires_at=None, auth=auth
            )
            cold: list[float] = []
            for _ in range(20):
                api_keys.verified_secrets.forget(created.key.key_id)
                started = time.perf_counter()
                await authenticate(created.full_key, auth)
                cold.append((time.perf_counter() - started) * 1000)
            report("api key auth, cold (argon2id verify)", percentiles(cold))
            warm: list[float] = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                await authenticate(created.full_key, auth)
                warm.append((time.perf_counter() - started) * 1000)
            report("api key auth, warm (cached, row read)", percentiles(warm))
        finally:
            await close_orm(context)
