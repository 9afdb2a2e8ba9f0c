"""Fixtures of the journey tests: callers by role and a way to give customers events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault
from tests.factories import bearer, make_api_key, make_customer

#: The fixtures' time origin; offsets are in hours from it.
T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
async def analyst(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.ANALYST))


@pytest.fixture
async def agent(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.AGENT))


@pytest.fixture
async def ingest(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def person(vault: Vault) -> uuid.UUID:
    """A new customer."""
    made = await make_customer(vault, external_ids=[f"crm:{uuid.uuid4()}"])
    return made.customer_id


async def happened(
    vault: Vault,
    customer_id: uuid.UUID,
    *items: tuple[str, float],
    channel: str = "web",
    properties: dict[str, str] | None = None,
) -> list[uuid.UUID]:
    """Events of (type, hours after T0) for the customer; their ids in order."""
    result, _ = await store_events(
        vault,
        [
            EventIngest(
                type=kind,
                occurred_at=T0 + timedelta(hours=hours),
                source_system="shop",
                channel=channel,
                customer_id=customer_id,
                properties=properties,
            )
            for kind, hours in items
        ],
    )
    assert not result.rejected
    return [result.accepted[i] for i in range(len(items))]
