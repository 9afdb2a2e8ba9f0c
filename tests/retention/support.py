"""Data of retention tests: customers and events dated in the past."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cdlm.core import clock
from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault
from tests.factories import make_customer, source

NOW = datetime(2030, 6, 1, tzinfo=UTC)


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


async def customer_with_events(
    vault: Vault, email: str, *, created_days_ago: int = 10, events: dict[str, list[int]]
) -> uuid.UUID:
    """A customer created ``created_days_ago`` with events of each type ``days`` ago."""
    with clock.frozen_at(ago(created_days_ago)):
        customer_id = (
            await make_customer(
                vault,
                email=email,
                given_name="Test",
                origin=source(collected_at=ago(created_days_ago)),
            )
        ).customer_id
    for event_type, days_list in events.items():
        for days in days_list:
            with clock.frozen_at(ago(days)):  # collected when it happened
                await store_events(
                    vault,
                    [
                        EventIngest(
                            type=event_type,
                            occurred_at=ago(days),
                            source_system="shop",
                            customer_id=customer_id,
                            amount=Decimal("5.00") if event_type == "purchase" else None,
                            currency="EUR" if event_type == "purchase" else None,
                            properties={"note": f"{event_type} {days} days ago", "email": email},
                        )
                    ],
                )
    return customer_id
