"""Customer 360 at scale: ingest throughput and query latency on a real PostgreSQL.

Prints: customers/s through the importer (``cdlm import``'s code path), events/s through the
``ingestEvents`` mutation over the in-process ASGI app, ``customer`` 360 query latency
(p50/p99) and the SQL statements each query sends.

``python -m bench.customer_360 [--customers N] [--events N] [--queries N]`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bench import synthetic
from bench.support import benchmark_workspace, percentiles, report
from cdlm.api.context import Context
from cdlm.api.schema import create_schema
from cdlm.app import create_app
from cdlm.auth.service import create_api_key
from cdlm.auth.settings import auth_settings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import FileImport, ImportOptions, run_import
from cdlm.customers.models import Customer
from cdlm.dsr.notifier import LogNotifier
from cdlm.graphql.relay import global_id

CUSTOMERS = 5000
EVENTS = 20_000
BATCH = 1000
QUERIES = 300

INGEST = """
mutation($input: IngestEventsInput!) {
  ingestEvents(input: $input) { ... on EventsIngested { accepted rejected } }
}
"""
CUSTOMER = """
query($id: ID!) {
  customer(id: $id) {
    id lifecycleStage
    profile { givenName familyName email phone birthDate address { city postalCode country } }
    identities { kind value }
    events(first: 20) { nodes { type occurredAt amount currency properties } }
    quality { score completeness }
  }
}
"""


async def run(customers: int = CUSTOMERS, events: int = EVENTS, queries: int = QUERIES) -> None:
    async with benchmark_workspace() as (workdir, settings, vault):
        counter = _install_statement_counter()
        rows = synthetic.customers(customers)
        source = synthetic.write_csv(workdir / "customers.csv", rows)
        options = ImportOptions(
            "bench-crm", SourceKind.CRM, LawfulBasis.CONTRACT, "essential.service"
        )
        started = time.perf_counter()
        summary = await run_import(SYSTEM, vault, FileImport(source, options))
        elapsed = time.perf_counter() - started
        report(
            "import customers (cdlm import path)",
            {
                "records": summary.total_lines,
                "created": summary.created,
                "matched": summary.matched,
                "seconds": round(elapsed, 2),
                "per_second": round(summary.total_lines / elapsed),
            },
        )

        auth = auth_settings(settings)
        created = await create_api_key(
            SYSTEM, name="bench", role=Role.ADMIN, expires_at=None, auth=auth
        )
        headers = {"Authorization": f"Bearer {created.full_key}"}
        app = create_app(settings, vault=vault)
        ids = [global_id("Customer", i) for i in await Customer.all().values_list("id", flat=True)]
        batches = synthetic.events(ids, events)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=120
        ) as http:
            await http.post("/graphql", json={"query": "{ viewer { role } }"}, headers=headers)
            started = time.perf_counter()
            accepted = 0
            for offset in range(0, len(batches), BATCH):
                response = await http.post(
                    "/graphql",
                    json={
                        "query": INGEST,
                        "variables": {"input": {"events": batches[offset : offset + BATCH]}},
                    },
                    headers=headers,
                )
                body = response.json()
                assert "accepted" in ((body.get("data") or {}).get("ingestEvents") or {}), body
                accepted += body["data"]["ingestEvents"]["accepted"]
            elapsed = time.perf_counter() - started
            report(
                "ingestEvents (1,000 per call, ASGI)",
                {
                    "events": accepted,
                    "seconds": round(elapsed, 2),
                    "per_second": round(accepted / elapsed),
                },
            )

            chooser = random.Random(7)
            samples: list[float] = []
            statements: list[int] = []
            for _ in range(queries):
                customer_id = chooser.choice(ids)
                counter.clear()
                began = time.perf_counter()
                response = await http.post(
                    "/graphql",
                    json={"query": CUSTOMER, "variables": {"id": customer_id}},
                    headers=headers,
                )
                samples.append((time.perf_counter() - began) * 1000)
                statements.append(len(counter))
                assert "errors" not in response.json(), response.text
            numbers: dict[str, Any] = percentiles(samples)
            numbers["sql_statements"] = max(statements)
            report("customer 360 query (ASGI, in-process)", numbers)

        # The same query executed on the schema directly (no HTTP layer).
        schema = create_schema(settings)
        direct: list[float] = []
        for _ in range(queries):
            request = Request(
                {
                    "type": "http",
                    "method": "POST",
                    "path": "/graphql",
                    "headers": [(b"authorization", headers["Authorization"].encode())],
                }
            )
            context = Context(
                request=request,
                response=Response(),
                request_id="bench",
                settings=settings,
                auth=auth,
                vault=vault,
                notifier=LogNotifier(),
            )
            await context.resolve_caller()  # as the app does when it builds the context
            began = time.perf_counter()
            executed = await schema.execute(
                CUSTOMER, variable_values={"id": chooser.choice(ids)}, context_value=context
            )
            direct.append((time.perf_counter() - began) * 1000)
            assert not executed.errors, executed.errors
        report("customer 360 query (schema.execute)", percentiles(direct))


def _install_statement_counter() -> list[str]:
    """Count statements sent through the ORM's connections (for SQL per query)."""
    from tortoise.backends.asyncpg.client import AsyncpgDBClient

    sent: list[str] = []
    for name in (
        "execute_query",
        "execute_query_dict",
        "execute_insert",
        "execute_many",
        "execute_script",
    ):
        original = getattr(AsyncpgDBClient, name)

        async def wrapper(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            sent.append(str(args[0])[:40] if args else "")
            return await _original(self, *args, **kwargs)

        setattr(AsyncpgDBClient, name, wrapper)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="people imported")
    parser.add_argument("--events", type=int, default=EVENTS, help="events ingested")
    parser.add_argument("--queries", type=int, default=QUERIES, help="360 queries timed")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    asyncio.run(run(args.customers, args.events, args.queries))


if __name__ == "__main__":
    main()
