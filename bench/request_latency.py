"""In-process latency of the ASGI app: ``/healthz`` and a GraphQL query over httpx."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx

from bench.support import benchmark_database, percentiles, report
from cdlm.app import create_app
from cdlm.config import load_settings
from cdlm.db.lifecycle import close_orm, init_orm

ROUNDS = 500


async def run() -> None:
    async with benchmark_database() as target:
        settings = replace(
            load_settings({"CDLM_ENV": "test", "CDLM_TOKEN_SECRET": "b" * 40}), database=target
        )
        context = await init_orm(target, settings)
        try:
            app = create_app(settings)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for name, call in (
                    ("asgi GET /healthz", lambda: http.get("/healthz")),
                    (
                        "asgi POST /graphql health",
                        lambda: http.post("/graphql", json={"query": "{ health { ok } }"}),
                    ),
                ):
                    for _ in range(20):
                        await call()
                    samples = []
                    for _ in range(ROUNDS):
                        started = time.perf_counter()
                        response = await call()
                        samples.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200
                    report(name, percentiles(samples))
        finally:
            await close_orm(context)
