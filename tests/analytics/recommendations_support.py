"""Helpers of the personalization tests: the purpose, decisions, and purchase/view events with
item ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method, Purpose
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis
from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PURPOSE = "personalization"


async def make_purpose(mechanism: Mechanism = Mechanism.OPT_IN) -> Purpose:
    """The personalization purpose (opt-in consent, or opt-out on legitimate interests)."""
    return await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code=PURPOSE,
            name="Personalization",
            description="Recommendations and offers chosen for you.",
            lawful_basis=LawfulBasis.CONSENT
            if mechanism is Mechanism.OPT_IN
            else LawfulBasis.LEGITIMATE_INTERESTS,
            mechanism=mechanism,
            data_use="personalize.content.profiled",
            data_categories=["user.behavior.purchase_history"],
            sale_or_sharing=False,
            notice_text="We recommend products from what you bought and viewed.",
        ),
    )


async def decide(
    vault: Vault, customer: uuid.UUID, decision: Decision, method: Method = Method.FORM
) -> None:
    """Record the customer's decision about personalization."""
    capture = consent.Capture(method=method, user_agent="test browser")
    choice = consent.Choice(PURPOSE, decision, 1 if decision is Decision.GRANTED else None)
    await consent.record(SYSTEM, vault, consent.ConsentRecording(customer, [choice], capture))


def interaction(
    customer: uuid.UUID, item: str, kind: str = "purchase", days_ago: float = 1.0
) -> EventIngest:
    """A purchase or view of ``item`` (its id in the ``productId`` property)."""
    return EventIngest(
        type=kind,
        occurred_at=NOW - timedelta(days=days_ago),
        source_system="shop",
        customer_id=customer,
        properties={"productId": item, "note": "sealed"},
    )


async def store(vault: Vault, events: list[EventIngest]) -> None:
    async with in_transaction():
        result, _ = await store_events(vault, events)
    assert not result.rejected, result.rejected
