"""The retention sweep drops whole months of events when a policy disposes of every event in
them, and falls back to rows otherwise (holds, other types, a busy table)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from cdlm.audit.models import AuditEntry
from cdlm.config import DatabaseTarget
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers import partitions
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Event, EventKey
from cdlm.db.lifecycle import connect
from cdlm.retention import archive, months, policies
from cdlm.retention import service as holds
from cdlm.retention import sweep as sweeping
from cdlm.retention.models import Action, SweepEvidence, Trigger
from cdlm.vault.service import Vault
from tests.customers.test_event_partitions import months_made  # noqa: F401 - a fixture
from tests.factories import make_customer
from tests.retention.support import NOW

MARCH = datetime(2028, 3, 10, 9, tzinfo=UTC)
APRIL = datetime(2028, 4, 20, 9, tzinfo=UTC)
RECENT = datetime(2030, 5, 20, 9, tzinfo=UTC)
GENESIS = "0" * 64


@pytest.fixture
def store(short_tmp: Path) -> archive.LocalArchiveStore:
    return archive.LocalArchiveStore(short_tmp / "archive")


@pytest.fixture
async def two_months(months_made: None) -> None:  # noqa: F811
    for month in (date(2028, 3, 1), date(2028, 4, 1)):
        async with in_transaction():
            await partitions.make_month(month)


async def _person(vault: Vault, email: str) -> uuid.UUID:
    with clock.frozen_at(datetime(2028, 1, 1, tzinfo=UTC)):
        return (await make_customer(vault, email=email, given_name="Test")).customer_id


async def _events(
    vault: Vault, customer_id: uuid.UUID, at: datetime, types: list[str]
) -> list[uuid.UUID]:
    with clock.frozen_at(at):
        result, _ = await store_events(
            vault,
            [
                EventIngest(
                    type=kind,
                    occurred_at=at,
                    source_system="shop",
                    customer_id=customer_id,
                    external_id=f"{customer_id}-{at:%Y%m}-{n}",
                    properties={"note": f"{kind} {n}"},
                )
                for n, kind in enumerate(types)
            ],
        )
    assert not result.rejected
    return list(result.accepted.values())


def _chain(digest: str, ids: list[uuid.UUID]) -> str:
    text = digest + "".join(f"\nevents:{i}" for i in sorted(str(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()


async def _policy(category: str, days: int, action: Action) -> None:
    await policies.create_policy(
        SYSTEM,
        category=category,
        period_days=days,
        trigger=Trigger.SINCE_COLLECTION,
        action=action,
    )


async def _names() -> set[str]:
    return {m.name for m in await partitions.months()}


@pytest.mark.usefixtures("two_months")
async def test_months_past_their_period_are_dropped_whole(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada, bob = await _person(vault, "ada@example.com"), await _person(vault, "bob@example.com")
    march = await _events(vault, ada, MARCH, ["purchase", "page_view"])
    march += await _events(vault, bob, MARCH, ["page_view"])
    april = await _events(vault, bob, APRIL, ["purchase"])
    recent = await _events(vault, ada, RECENT, ["purchase"])
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        forecast = await sweeping.preview()
        report = await sweeping.sweep(SYSTEM, vault, store)
    [outcome] = report.outcomes
    assert report.finished
    assert outcome.months == ["2028-03", "2028-04"]
    assert (outcome.disposed, outcome.skipped_held) == (4, 0)
    assert forecast.outcomes[0].disposed == outcome.disposed  # the dry run counts the same
    assert (outcome.first_at, outcome.last_at) == (MARCH, APRIL)
    assert outcome.digest == _chain(_chain(GENESIS, march), april)
    assert {"events_2028_03", "events_2028_04"}.isdisjoint(await _names())
    assert [e.id for e in await Event.all()] == recent
    assert await EventKey.all().values_list("event_id", flat=True) == recent
    # One audit entry per month disposed of, as per batch of rows.
    assert await AuditEntry.filter(action="retention.delete").count() == 2
    evidence = await SweepEvidence.get(run_id=report.run_id)
    assert (evidence.months, evidence.month_cursor, evidence.batches) == (
        ["2028-03", "2028-04"],
        "2028-04",
        2,
    )


@pytest.mark.usefixtures("two_months")
async def test_a_rerun_and_a_resumed_run_dispose_of_each_month_once(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada = await _person(vault, "ada@example.com")
    await _events(vault, ada, MARCH, ["purchase"])
    await _events(vault, ada, APRIL, ["purchase", "purchase"])
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        stopped = await sweeping.sweep(SYSTEM, vault, store, max_seconds=0)  # one batch
        assert not stopped.finished
        assert stopped.outcomes[0].months == ["2028-03"]
        assert stopped.outcomes[0].disposed == 1
        resumed = await sweeping.sweep(SYSTEM, vault, store)
        again = await sweeping.sweep(SYSTEM, vault, store)
    assert resumed.run_id == stopped.run_id
    assert resumed.finished
    assert (resumed.outcomes[0].months, resumed.outcomes[0].disposed) == (
        ["2028-03", "2028-04"],
        3,
    )
    assert again.run_id != resumed.run_id
    assert (again.outcomes[0].months, again.outcomes[0].disposed) == ([], 0)
    assert await Event.all().count() == 0


@pytest.mark.usefixtures("two_months")
async def test_a_hold_keeps_its_month_for_the_row_by_row_path(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada, bob = await _person(vault, "ada@example.com"), await _person(vault, "bob@example.com")
    await _events(vault, ada, MARCH, ["purchase", "page_view"])
    await _events(vault, ada, APRIL, ["page_view"])
    kept = await _events(vault, bob, APRIL, ["page_view"])
    await _policy("events", 365, Action.DELETE)
    await holds.place_hold(SYSTEM, reason="Litigation", customer_id=bob)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    [outcome] = report.outcomes
    assert outcome.months == ["2028-03"]
    assert (outcome.disposed, outcome.skipped_held) == (3, 1)
    assert "events_2028_03" not in await _names()
    assert "events_2028_04" in await _names()
    assert [e.id for e in await Event.all()] == kept


@pytest.mark.usefixtures("two_months")
async def test_a_category_hold_or_another_types_policy_keeps_months_whole(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada = await _person(vault, "ada@example.com")
    await _events(vault, ada, MARCH, ["page_view", "page_view"])
    purchase = await _events(vault, ada, APRIL, ["page_view", "purchase"])
    await _policy("events", 365, Action.DELETE)
    await _policy("events.purchase", 3650, Action.DELETE)  # purchases are kept ten years
    with clock.frozen_at(NOW):
        await holds.place_hold(SYSTEM, reason="Audit", category="events.refund")
        report = await sweeping.sweep(SYSTEM, vault, store)
    general = next(o for o in report.outcomes if o.category == "events")
    # March holds page views only (a hold on refunds keeps none of them); April a purchase.
    assert general.months == ["2028-03"]
    assert general.disposed == 3
    assert [e.id for e in await Event.all()] == purchase[1:]
    assert "events_2028_04" in await _names()
    with clock.frozen_at(NOW):
        await holds.place_hold(SYSTEM, reason="Audit", category="events")
        await _events(vault, ada, APRIL, ["page_view"])
        held = await sweeping.sweep(SYSTEM, vault, store)
    general = next(o for o in held.outcomes if o.category == "events")
    assert (general.months, general.disposed, general.skipped_held) == ([], 0, 1)


@pytest.mark.usefixtures("two_months")
async def test_an_archiving_policy_archives_the_month_then_drops_it(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada, bob = await _person(vault, "ada@example.com"), await _person(vault, "bob@example.com")
    march = await _events(vault, ada, MARCH, ["purchase", "page_view"])
    march += await _events(vault, bob, MARCH, ["purchase"])
    await _policy("events", 365, Action.ARCHIVE)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    [outcome] = report.outcomes
    assert outcome.months == ["2028-03"]  # April is empty: left as it is
    assert (outcome.disposed, outcome.archived) == (3, 3)
    [key] = outcome.archive_objects
    assert "2028-03" in key
    records = await archive.unpack(vault, await store.get(key))
    assert sorted(r["id"] for r in records if r) == sorted(str(i) for i in march)
    assert {r["type"] for r in records if r} == {"purchase", "page_view"}
    assert "events_2028_03" not in await _names()
    assert await Event.all().count() == 0


@pytest.mark.usefixtures("two_months")
async def test_a_busy_month_is_disposed_of_row_by_row_and_its_archive_undone(
    vault: Vault,
    store: archive.LocalArchiveStore,
    database: DatabaseTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = await _person(vault, "ada@example.com")
    march = await _events(vault, ada, MARCH, ["purchase", "page_view"])
    await _policy("events", 365, Action.ARCHIVE)
    monkeypatch.setattr(months, "LOCK_WAIT", "200ms")
    reader: asyncpg.Connection = await connect(database)
    try:
        await reader.execute("BEGIN")  # a long read of events: the drop cannot have the table
        assert await reader.fetchval("SELECT count(*) FROM events") == 2
        with clock.frozen_at(NOW):
            report = await asyncio.wait_for(sweeping.sweep(SYSTEM, vault, store), 60)
    finally:
        await reader.execute("ROLLBACK")
        await reader.close()
    [outcome] = report.outcomes
    assert outcome.months == []
    assert (outcome.disposed, outcome.archived) == (2, 2)
    assert "events_2028_03" in await _names()
    assert await Event.all().count() == 0
    # Only the row-by-row batch's archive object is left (the month's was deleted).
    [key] = outcome.archive_objects
    assert "2028-03" not in key
    files = await asyncio.to_thread(lambda: list(Path(store.location).rglob("*.jsonl.gz")))
    assert [p.name for p in files] == [Path(key).name]
    records = await archive.unpack(vault, await store.get(key))
    assert sorted(r["id"] for r in records if r) == sorted(str(i) for i in march)
