"""Events age from when they happened, as the README says: a back-filled history is as old as
it says, not kept longer for arriving late."""

from __future__ import annotations

from pathlib import Path

from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Event
from cdlm.retention import archive, policies
from cdlm.retention import sweep as sweeping
from cdlm.retention.models import Action, Trigger
from cdlm.vault.service import Vault
from tests.factories import make_customer
from tests.retention.support import NOW, ago


async def test_a_back_filled_event_is_as_old_as_when_it_happened(
    vault: Vault, short_tmp: Path
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="history@example.com")).customer_id
        # Received today, happened 400 and 300 days ago.
        await store_events(
            vault,
            [
                EventIngest(
                    type="purchase",
                    occurred_at=ago(days),
                    source_system="pos",
                    customer_id=customer,
                )
                for days in (400, 300)
            ],
        )
        await policies.create_policy(
            SYSTEM,
            category="events",
            period_days=365,
            trigger=Trigger.SINCE_COLLECTION,
            action=Action.DELETE,
        )
        forecast = await sweeping.preview()
        assert {o.category: o.disposed for o in forecast.outcomes} == {"events": 1}
        report = await sweeping.sweep(SYSTEM, vault, archive.LocalArchiveStore(short_tmp / "a"))
    assert [o.disposed for o in report.outcomes] == [1]
    remaining = await Event.filter(customer_id=customer).values_list("occurred_at", flat=True)
    assert remaining == [ago(300)]
