"""Analytics runs on PostgreSQL: purchases summarised in SQL, models fitted, scores written,
evidence kept; the as-of window, too little history, customers never scored, one run at a
time."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.analytics import runs
from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus
from cdlm.config import AnalyticsSettings, Settings
from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer, CustomerAttributes
from cdlm.db.connection import try_session_lock
from cdlm.jobs.analytics_refresh import run_once
from cdlm.vault.service import Vault
from tests.factories import make_customer

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _settings(settings: Settings, **changes: object) -> Settings:
    analytics = AnalyticsSettings(
        purchase_types=frozenset({"purchase", "order_completed"}),
        currency="EUR",
        rates={"USD": Decimal("0.5")},
        min_repeat_buyers=20,
    )
    return replace(settings, analytics=replace(analytics, **changes))  # type: ignore[arg-type]


def _purchase(
    customer: uuid.UUID, days_ago: float, amount: str | None = "10.00", currency: str = "EUR"
) -> EventIngest:
    return EventIngest(
        type="purchase",
        occurred_at=NOW - timedelta(days=days_ago),
        source_system="shop",
        customer_id=customer,
        amount=Decimal(amount) if amount is not None else None,
        currency=currency if amount is not None else None,
    )


async def _store(vault: Vault, events: list[EventIngest]) -> None:
    for start in range(0, len(events), 1000):
        async with in_transaction():
            result, _ = await store_events(vault, events[start : start + 1000])
        assert not result.rejected, result.rejected


async def _population(vault: Vault, n: int, seed: int = 7) -> list[uuid.UUID]:
    """``n`` customers with 1 to 8 purchases on distinct days of the last 360 days, spending
    about their own mean."""
    rng = np.random.default_rng(seed)
    ids: list[uuid.UUID] = []
    events: list[EventIngest] = []
    for i in range(n):
        customer = (await make_customer(vault, email=f"buyer{i}@example.com")).customer_id
        ids.append(customer)
        days = rng.choice(np.arange(1, 360), size=int(rng.integers(1, 9)), replace=False)
        mean = float(rng.gamma(4.0, 10.0))
        for day in days:
            spent = max(mean * float(rng.gamma(6.0, 1 / 6.0)), 0.01)
            events.append(_purchase(customer, float(day) + 0.25, f"{spent:.2f}"))
    await _store(vault, events)
    return ids


async def _attributes(customer: uuid.UUID) -> CustomerAttributes | None:
    return await CustomerAttributes.get_or_none(customer_id=customer)


async def test_a_refresh_fits_the_population_and_writes_every_buyers_scores(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        ids = await _population(vault, 120)
        idle = (await make_customer(vault, email="idle@example.com", country="NL")).customer_id
        # Another event type and a currency without a rate.
        await _store(
            vault,
            [
                EventIngest(
                    type="page_view", occurred_at=NOW, source_system="web", customer_id=idle
                ),
                _purchase(ids[0], 0.5, "100.00", "USD"),
                _purchase(ids[0], 0.4, "100.00", "JPY"),
            ],
        )
        run = await run_once(_settings(settings))
    assert run.status is AnalyticsRunStatus.FINISHED
    assert (run.as_of, run.currency, run.purchase_types) == (
        NOW,
        "EUR",
        ["order_completed", "purchase"],
    )
    assert run.buyers == run.customers_scored == 120
    assert run.purchases == await _count_purchases()  # every purchase is before NOW
    assert run.skipped_amounts == {"JPY": 1}
    assert run.bgnbd_r is not None
    assert run.bgnbd_alpha is not None
    assert run.bgnbd_log_likelihood is not None
    assert run.bgnbd_log_likelihood < 0
    assert run.gamma_gamma_p is not None
    assert run.gamma_gamma_q is not None
    assert run.note is None
    assert run.error is None
    assert run.finished_at is not None
    assert run.duration_seconds > 0
    rows = await CustomerAttributes.filter(customer_id__in=ids)
    assert len(rows) == 120
    for row in rows:
        assert row.scored_at == NOW
        assert {row.rfm_recency, row.rfm_frequency, row.rfm_monetary} <= {1, 2, 3, 4, 5}
        assert row.p_alive is not None
        assert 0 <= row.p_alive <= 1
        assert row.churn_risk is not None
        assert 0 <= row.churn_risk <= 1
        assert row.expected_purchases_90d is not None
        assert row.expected_purchases_365d is not None
        assert 0 <= row.expected_purchases_90d <= row.expected_purchases_365d
        assert row.expected_value_365d is not None
        assert row.expected_value_365d >= 0
        assert row.derived_at is not None  # the profile attributes are kept
    # Bought today (in USD, converted): most recent.
    first = await _attributes(ids[0])
    assert first is not None
    assert first.rfm_recency == 5
    never = await _attributes(idle)
    assert never is not None
    assert never.scored_at is None
    assert never.country == "NL"
    stored = await AnalyticsRun.get(id=run.id)
    assert stored.status is AnalyticsRunStatus.FINISHED
    assert stored.customers_scored == 120


async def _count_purchases() -> int:
    rows = await get_connection("default").execute_query_dict(
        "SELECT count(*) AS n FROM events WHERE type = 'purchase'"
    )
    return int(rows[0]["n"])


async def test_as_of_ends_the_window_and_too_little_history_is_noted_not_fitted(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        early = (await make_customer(vault, email="early@example.com")).customer_id
        late = (await make_customer(vault, email="late@example.com")).customer_id
        await _store(
            vault,
            [
                _purchase(early, 40),
                _purchase(early, 30, "30.00"),
                _purchase(early, 5, "500.00"),  # after the as-of moment
                _purchase(late, 3),  # after it too: not a buyer then
            ],
        )
        as_of = NOW - timedelta(days=20)
        run = await run_once(_settings(settings), as_of)
    assert run.status is AnalyticsRunStatus.FINISHED
    assert (run.as_of, run.purchases, run.buyers, run.repeat_buyers) == (as_of, 2, 1, 1)
    assert run.note == "insufficient history: 1 repeat buyers (BG/NBD needs at least 20)"
    assert run.bgnbd_r is None
    assert run.gamma_gamma_p is None
    assert run.customers_scored == 1
    row = await _attributes(early)
    assert row is not None
    assert row.scored_at == as_of
    assert (row.rfm_recency, row.rfm_frequency, row.rfm_monetary) == (3, 3, 3)
    assert row.p_alive is None
    assert row.expected_value_365d is None
    assert row.churn_risk is None
    untouched = await _attributes(late)
    assert untouched is not None
    assert untouched.scored_at is None


async def test_restricted_erased_and_merged_customers_are_not_scored_and_lose_old_scores(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        kept, restricted, erased, merged = [
            (await make_customer(vault, email=f"{name}@example.com")).customer_id
            for name in ("kept", "restricted", "erased", "merged")
        ]
        await _store(
            vault, [_purchase(c, d) for c in (kept, restricted, erased, merged) for d in (9, 2)]
        )
        first = await run_once(_settings(settings))
        assert first.customers_scored == 4
        await Customer.filter(id=restricted).update(restricted_at=NOW)
        await Customer.filter(id=erased).update(erased_at=NOW)
        await Customer.filter(id=merged).update(merged_into_id=kept)
        second = await run_once(_settings(settings))
    assert (second.customers_scored, second.customers_cleared, second.buyers) == (1, 3, 1)
    for customer in (restricted, erased, merged):
        row = await _attributes(customer)
        assert row is not None
        assert (row.scored_at, row.rfm_recency, row.rfm_frequency, row.rfm_monetary) == (
            None,
            None,
            None,
            None,
        )
    scored = await _attributes(kept)
    assert scored is not None
    assert scored.scored_at == NOW


async def test_a_run_creates_the_attributes_row_of_a_customer_without_one(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="rowless@example.com")).customer_id
        await CustomerAttributes.filter(customer_id=customer).delete()
        await _store(vault, [_purchase(customer, 3)])
        await run_once(_settings(settings))
    row = await _attributes(customer)
    assert row is not None
    assert row.scored_at == NOW
    assert row.derived_at is None
    assert row.rfm_recency == 3


async def test_a_second_run_is_refused_while_one_holds_the_lock(settings: Settings) -> None:
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        assert await try_session_lock(connection, runs.RUN_LOCK)
        try:
            with pytest.raises(Conflict) as refused:
                await run_once(_settings(settings))
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", runs.RUN_LOCK)
    assert refused.value.code is ErrorCode.RUN_IN_PROGRESS
    assert await AnalyticsRun.all().count() == 0


async def test_a_run_left_running_by_a_dead_process_is_marked_failed(settings: Settings) -> None:
    dead = await AnalyticsRun.create(
        id=uuid.uuid4(),
        status=AnalyticsRunStatus.RUNNING,
        as_of=NOW,
        started_at=NOW,
        purchase_types=["purchase"],
        currency="EUR",
    )
    run = await run_once(_settings(settings))
    assert run.status is AnalyticsRunStatus.FINISHED
    assert run.buyers == 0
    await dead.refresh_from_db()
    assert (dead.status, dead.error) == (AnalyticsRunStatus.FAILED, "Interrupted")
