"""One erasure after a merge leaves nothing of either profile; events racing a merge land on
the survivor."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from tortoise.connection import get_connection

from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.identity.models import Identity
from cdlm.matching import merge as merging
from cdlm.matching.models import CandidateStatus, MatchCandidate, Merge
from cdlm.quality.models import InvalidValue
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.models import AbsorbedKey, CustomerKey
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.dsr.support import approved, execute
from tests.factories import make_candidate, make_customer
from tests.support.raw_dump import every_stored_value

PERSONAL = ["Philippa", "Marchbanks", "pip.marchbanks@example.org", "Pip", "Penhallow Row"]


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def test_erasing_the_survivor_erases_both_profiles_and_shreds_both_keys(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    survivor = (
        await make_customer(
            vault,
            given_name="Philippa",
            family_name="Marchbanks",
            email="philippa.marchbanks@example.org",
        )
    ).customer_id
    merged = (
        await make_customer(
            vault,
            given_name="Pip",
            family_name="Marchbanks",
            email="pip.marchbanks@example.org",
            address_line1="4 Penhallow Row",
            country="Not-A-Country",
        )
    ).customer_id
    await make_purpose(code="newsletter")
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            merged,
            [consent.Choice("newsletter", Decision.GRANTED, 1)],
            consent.Capture(consent.Method.FORM, user_agent="Pip's phone"),
        ),
    )
    result, _ = await ingest_events(
        SYSTEM,
        vault,
        [
            EventIngest(
                type="page_view",
                occurred_at=clock.now() - timedelta(hours=1),
                source_system="web",
                customer_id=merged,
                properties={"note": "Pip at Penhallow Row"},
            )
        ],
    )
    assert not result.rejected
    done = await merging.merge(
        SYSTEM, vault, merging.MergeInput(survivor, merged, "Pip is Philippa.")
    )
    low, high = sorted([survivor, merged])
    await MatchCandidate.filter(left_id=low, right_id=high).delete()
    await make_candidate(
        low, high, status=CandidateStatus.MERGED, probability=0.99, merge_id=done.id
    )

    # The person asks with the merged profile's email: it is the survivor's now.
    request_id = await approved(gql, admin_headers, "ERASURE", "pip.marchbanks@example.org")
    finished = await execute(gql, admin_headers, request_id)

    assert finished["request"]["status"] == "COMPLETED"
    for model in (Identity, Event, SourceRecord, InvalidValue):
        assert await model.filter(customer_id__in=[survivor, merged]).count() == 0
    assert await Customer.filter(id__in=[survivor, merged]).count() == 0
    assert await CustomerKey.filter(customer_id__in=[survivor, merged]).count() == 0
    assert await AbsorbedKey.all().count() == 0
    assert await Merge.all().count() == 0
    assert await MatchCandidate.all().count() == 0
    fresh = Vault(provider_from_settings(settings))
    assert await fresh.customer_keys([survivor, merged]) == {}
    everything = await every_stored_value(get_connection("default"))
    assert [v for v in PERSONAL if v in everything] == []


async def test_events_sent_to_a_profile_being_merged_end_on_the_survivor(vault: Vault) -> None:
    survivor = (await make_customer(vault, email="one@example.org")).customer_id
    merged = (await make_customer(vault, email="two@example.org")).customer_id

    async def send(n: int) -> None:
        result, _ = await ingest_events(
            SYSTEM,
            vault,
            [
                EventIngest(
                    type="page_view",
                    occurred_at=clock.now() - timedelta(minutes=n + 1),
                    source_system="web",
                    customer_id=merged,
                    properties={"n": n},
                )
            ],
        )
        assert not result.rejected

    await asyncio.gather(
        *(send(n) for n in range(5)),
        merging.merge(SYSTEM, vault, merging.MergeInput(survivor, merged, "Same.")),
        *(send(n) for n in range(5, 10)),
    )

    assert await Event.filter(customer_id=merged).count() == 0
    moved = await Event.filter(customer_id=survivor)
    assert len(moved) == 10
    key = await vault.customer_key(survivor)
    assert sorted(
        vault.open(key, survivor, "event-properties", e.properties_sealed)["n"] for e in moved
    ) == list(range(10))
