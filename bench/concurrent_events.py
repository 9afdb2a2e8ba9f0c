"""ingestEvents under concurrency: 4 clients sending batches over the same customers at once.

Each client sends batches of events for one shared set of customers, half of them in reverse
order, which is how two shops, a CRM and a tracker hitting the same people look to PostgreSQL.
Prints events/s, the batches that failed (they must be 0) and how many transactions PostgreSQL
aborted and cdlm ran again (deadlocks or serialization failures: 0 while locks are ordered).

``python -m bench.concurrent_events [--customers N] [--shared N] [--clients N] [--batches N]
[--batch N]`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import synthetic
from bench.support import benchmark_workspace, report
from cdlm.app import create_app
from cdlm.auth.service import create_api_key
from cdlm.auth.settings import auth_settings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import FileImport, ImportOptions, run_import
from cdlm.customers.models import Customer
from cdlm.graphql.relay import global_id

CUSTOMERS = 2000
SHARED = 200
CLIENTS = 4
BATCHES_PER_CLIENT = 25
BATCH = 400
INGEST = """
mutation($input: IngestEventsInput!) {
  ingestEvents(input: $input) { ... on EventsIngested { accepted rejected } }
}
"""
START = datetime(2026, 1, 1, tzinfo=UTC)


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "transaction retried":
            self.count += 1


def _batch(ids: list[str], client: int, number: int, size: int) -> list[dict[str, Any]]:
    ordered = ids if client % 2 == 0 else list(reversed(ids))
    return [
        {
            "type": "page.viewed",
            "occurredAt": (
                START + timedelta(minutes=number, seconds=client, milliseconds=position)
            ).isoformat(),
            "sourceSystem": f"client-{client}",
            "channel": "web",
            "customerId": ordered[position % len(ordered)],
            "amount": "1.50",
            "currency": "EUR",
        }
        for position in range(size)
    ]


async def run(
    customers: int = CUSTOMERS,
    shared: int = SHARED,
    clients: int = CLIENTS,
    batches: int = BATCHES_PER_CLIENT,
    batch: int = BATCH,
) -> None:
    async with benchmark_workspace() as (workdir, settings, vault):
        source = synthetic.write_csv(workdir / "people.csv", synthetic.customers(customers))
        options = ImportOptions("bench", SourceKind.CRM, LawfulBasis.CONTRACT, "essential.service")
        await run_import(SYSTEM, vault, FileImport(source, options))
        ids = [
            global_id("Customer", i)
            for i in await Customer.all().limit(shared).values_list("id", flat=True)
        ]
        created = await create_api_key(
            SYSTEM, name="bench", role=Role.INGEST, expires_at=None, auth=auth_settings(settings)
        )
        headers = {"Authorization": f"Bearer {created.full_key}"}
        retries = _Retries()
        logging.getLogger("cdlm.transactions").addHandler(retries)
        app = create_app(settings, vault=vault)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=300
        ) as http:

            async def client(number: int) -> tuple[int, int]:
                accepted = failed = 0
                for sent in range(batches):
                    response = await http.post(
                        "/graphql",
                        json={
                            "query": INGEST,
                            "variables": {"input": {"events": _batch(ids, number, sent, batch)}},
                        },
                        headers=headers,
                    )
                    body = response.json()
                    answer = (body.get("data") or {}).get("ingestEvents") or {}
                    if (
                        response.status_code != 200
                        or body.get("errors")
                        or "accepted" not in answer
                    ):
                        failed += 1
                    else:
                        accepted += answer["accepted"]
                return accepted, failed

            started = time.perf_counter()
            outcomes = await asyncio.gather(*(client(n) for n in range(clients)))
            elapsed = time.perf_counter() - started
        report(
            f"ingestEvents, {clients} concurrent clients",
            {
                "events": sum(a for a, _ in outcomes),
                "batches": clients * batches,
                "failed_batches": sum(f for _, f in outcomes),
                "transactions_retried": retries.count,
                "seconds": round(elapsed, 2),
                "per_second": round(sum(a for a, _ in outcomes) / elapsed),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="people imported")
    parser.add_argument("--shared", type=int, default=SHARED, help="customers the events name")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients")
    parser.add_argument("--batches", type=int, default=BATCHES_PER_CLIENT, help="per client")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per batch")
    args = parser.parse_args()
    logging.disable(logging.INFO - 1)
    asyncio.run(run(args.customers, args.shared, args.clients, args.batches, args.batch))


if __name__ == "__main__":
    main()
