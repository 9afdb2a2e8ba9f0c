"""Concurrent ingestEvents batches over the same customers: none is lost to a deadlock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from cdlm.core.principal import SYSTEM
from cdlm.core.transactions import retrying
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.ingest import CustomerIngest, ingest_batch
from cdlm.customers.models import Customer, Event
from cdlm.vault.service import Vault
from tests.factories import source

BASE = datetime(2026, 6, 1, 12, tzinfo=UTC)
ROUNDS = 30
CLIENTS = 8


def _batch(customers: list[uuid.UUID], round_number: int, client: int) -> list[EventIngest]:
    # Half the clients go through the customers forwards, half backwards: opposite lock orders.
    ordered = customers if client % 2 == 0 else list(reversed(customers))
    return [
        EventIngest(
            type="page.viewed",
            occurred_at=BASE + timedelta(minutes=round_number, seconds=client * 10 + position),
            source_system="web",
            customer_id=customer_id,
        )
        for position, customer_id in enumerate(ordered)
    ]


async def _customers(vault: Vault, count: int) -> list[uuid.UUID]:
    async with in_transaction():
        done = await ingest_batch(
            vault,
            [
                CustomerIngest(source=source(), profile={"email": f"reader{n}@example.com"})
                for n in range(count)
            ],
        )
    return [r.customer_id for r in done if not isinstance(r, Exception)]


async def test_concurrent_batches_in_opposite_orders_all_commit(vault: Vault) -> None:
    # Enough customers that PostgreSQL looks them up by index in the batch's order (with a
    # handful it scans the table, which happens to lock rows in one order).
    everyone = await _customers(vault, 2000)
    customers = everyone[:10]
    failures: list[BaseException] = []
    for round_number in range(ROUNDS):
        outcomes = await asyncio.gather(
            *(
                ingest_events(SYSTEM, vault, _batch(customers, round_number, client))
                for client in range(CLIENTS)
            ),
            return_exceptions=True,
        )
        failures.extend(o for o in outcomes if isinstance(o, BaseException))
    assert failures == []
    assert await Event.all().count() == ROUNDS * CLIENTS * len(customers)
    latest = BASE + timedelta(minutes=ROUNDS - 1, seconds=(CLIENTS - 1) * 10 + 9)
    activity = await Customer.filter(id__in=customers).values_list("last_activity_at", flat=True)
    assert max(activity) == latest


class _Flaky:
    """Work that fails with a given PostgreSQL error the first ``times`` calls."""

    def __init__(self, error: type[asyncpg.PostgresError], times: int) -> None:
        self.error = error
        self.times = times
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        async with in_transaction():
            await Customer.all().count()  # real work in the transaction
            if self.calls <= self.times:
                raise self.error("simulated")
        return "done"


@pytest.mark.parametrize(
    "error", [asyncpg.DeadlockDetectedError, asyncpg.SerializationError], ids=["40P01", "40001"]
)
async def test_deadlocks_and_serialization_failures_are_retried(
    error: type[asyncpg.PostgresError],
) -> None:
    work = _Flaky(error, times=2)
    assert await retrying(work) == "done"
    assert work.calls == 3


async def test_retries_give_up_after_the_last_attempt() -> None:
    work = _Flaky(asyncpg.DeadlockDetectedError, times=100)
    with pytest.raises(asyncpg.DeadlockDetectedError):
        await retrying(work, attempts=3)
    assert work.calls == 3


async def test_other_errors_are_not_retried() -> None:
    work = _Flaky(asyncpg.UniqueViolationError, times=1)
    with pytest.raises(asyncpg.UniqueViolationError):
        await retrying(work)
    assert work.calls == 1


async def test_an_ingest_does_not_wait_for_rows_that_only_reference_its_customers(
    vault: Vault,
) -> None:
    # Adding an event, an identity or a consent entry locks the customer FOR KEY SHARE (its
    # foreign key check). An ingest merging into that customer must not wait for it: a batch of
    # events checking keys in its own order would otherwise deadlock with it.
    customer = (await _customers(vault, 1))[0]
    referenced = asyncio.Event()
    done = asyncio.Event()

    async def referencing() -> None:
        async with in_transaction() as connection:
            await connection.execute_query(
                "SELECT 1 FROM customers WHERE id = $1 FOR KEY SHARE", [customer]
            )
            referenced.set()
            await done.wait()

    holder = asyncio.create_task(referencing())
    await referenced.wait()
    try:
        async with asyncio.timeout(10), in_transaction():
            [result] = await ingest_batch(
                vault,
                [CustomerIngest(source=source(), profile={"email": "reader0@example.com"})],
            )
        assert not isinstance(result, Exception)
        assert result.customer_id == customer
    finally:
        done.set()
        await holder
