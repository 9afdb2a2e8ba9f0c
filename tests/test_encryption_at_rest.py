"""Personal data at rest: a raw read of every table finds none of the values sent."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.connection import get_connection

from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault
from tests.factories import make_customer
from tests.support.raw_dump import every_stored_value

SECRETS = [
    "zelda.quux@example.com",
    "zelda.quux",
    "+447911654321",
    "7911654321",
    "Zelda",
    "Quuxington",
    "1977-07-07",
    "42 Wallaby Way",
    "Sydneyville",
    "NW1 6XE",
    "zq-loyalty-998877",
    "Allergic to walnuts",
    "crm-secret-ref-556677",
]


async def test_no_table_holds_a_personal_value_in_clear(vault: Vault) -> None:
    created = await make_customer(
        vault,
        email="Zelda.Quux@example.com",
        phone="+44 7911 654321",
        given_name="Zelda",
        family_name="Quuxington",
        birth_date="1977-07-07",
        address_line1="42 Wallaby Way",
        city="Sydneyville",
        postal_code="NW1 6XE",
        external_ids=["loyalty:zq-loyalty-998877", "crm:crm-secret-ref-556677"],
    )
    # A refused value is kept too (encrypted).
    await make_customer(vault, email="zelda.quux@example.com", country="Quuxland Zelda")
    await store_events(
        vault,
        [
            EventIngest(
                type="support.ticket",
                occurred_at=datetime(2026, 3, 3, tzinfo=UTC),
                source_system="helpdesk",
                customer_id=created.customer_id,
                properties={"note": "Allergic to walnuts", "from": "zelda.quux@example.com"},
            )
        ],
    )
    everything = await every_stored_value(get_connection("default"))
    assert len(everything) > 1000
    found = [secret for secret in SECRETS if secret.lower() in everything.lower()]
    assert found == []
