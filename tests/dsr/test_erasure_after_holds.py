"""An erasure interrupted by a category legal hold is finished when the hold ends: the tick
erases what the hold kept, destroys the key it was kept under, and says so on the request's
timeline and certificate."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta

import pytest

from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers import rights
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.dsr.models import AccessExport, DataSubjectRequest, RequestEvent
from cdlm.dsr.notifier import LogNotifier
from cdlm.dsr.tick import tick
from cdlm.holds import service as legal_holds
from cdlm.retention import service as retention
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import GET, approved, execute, key
from tests.dsr.test_execution import _person
from tests.factories import gid


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _erased_with_holds(
    gql: GraphQLClient, headers: dict[str, str], vault: Vault, *categories: str
) -> tuple[uuid.UUID, str, dict[str, uuid.UUID]]:
    customer_id = await _person(vault)
    holds = {
        c: (await retention.place_hold(SYSTEM, reason=f"Keep {c}", category=c)).id
        for c in categories
    }
    request_id = await approved(gql, headers, "ERASURE", "ines.quartermaine@example.com")
    done = await execute(gql, headers, request_id)
    assert done["request"]["status"] == "COMPLETED", done
    return customer_id, request_id, holds


async def test_what_a_released_hold_kept_is_erased_by_the_tick(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    customer_id, request_id, holds = await _erased_with_holds(
        gql, admin_headers, vault, "events.purchase", "source_records"
    )
    owner = rights.retention_owner(customer_id)
    assert await Event.filter(customer_id=customer_id).count() == 1
    assert await SourceRecord.filter(customer_id=customer_id).count() == 2
    assert owner in await vault.customer_keys([owner])

    # While both holds apply, nothing changes.
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 0
    assert await Event.filter(customer_id=customer_id).count() == 1

    await retention.release_hold(SYSTEM, holds["events.purchase"])
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 1
    assert await Event.filter(customer_id=customer_id).count() == 0
    assert await SourceRecord.filter(customer_id=customer_id).count() == 2  # still held
    assert owner in await vault.customer_keys([owner])
    request = await DataSubjectRequest.get(id=key(request_id))
    assert request.certificate is not None
    [first] = request.certificate["erased_later"]
    assert (first["categories"], first["events"], first["retained_key_destroyed"]) == (
        ["events.purchase"],
        1,
        False,
    )
    assert request.certificate["retained_data_is_restricted"] is True

    await retention.release_hold(SYSTEM, holds["source_records"])
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 1
    assert await SourceRecord.filter(customer_id=customer_id).count() == 0
    assert not await Customer.exists(id=customer_id)
    assert await vault.customer_keys([owner]) == {}  # the kept copies' key is gone
    request = await DataSubjectRequest.get(id=key(request_id))
    assert request.certificate is not None
    second = request.certificate["erased_later"][1]
    assert (second["categories"], second["source_records"], second["retained_key_destroyed"]) == (
        ["source_records"],
        2,
        True,
    )
    assert request.certificate["retained_data_is_restricted"] is False
    assert len(request.certificate["sha256"]) == 64
    notes = await RequestEvent.filter(
        request_id=key(request_id), kind="retained_data_erased"
    ).values_list("note", flat=True)
    assert notes == [
        "erased events.purchase (events 1, source records 0, access exports 0)",
        "erased source_records (events 0, source records 2, access exports 0)",
    ]
    # Done: later ticks find nothing more.
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 0

    # The API shows the certificate typed, its later erasures naming the holds by global id.
    shown = (await gql(GET, {"id": request_id}, admin_headers))["data"]["dataSubjectRequest"]
    certificate = shown["certificate"]
    assert [
        (later["categories"], later["legalHoldIds"], later["retainedKeyDestroyed"])
        for later in certificate["erasedLater"]
    ] == [
        (["events.purchase"], [gid("LegalHold", holds["events.purchase"])], False),
        (["source_records"], [gid("LegalHold", holds["source_records"])], True),
    ]
    assert certificate["retainedDataIsRestricted"] is False
    digest = hashlib.sha256(certificate["canonicalJson"].encode()).hexdigest()
    assert certificate["sha256"] == digest == request.certificate["sha256"]


async def test_a_hold_that_ends_by_its_date_counts_as_released(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    customer_id = await _person(vault)
    hold = await retention.place_hold(
        SYSTEM,
        reason="Audit",
        category="events",
        ends_at=clock.now() + timedelta(days=30),
    )
    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    assert await Event.filter(customer_id=customer_id).count() == 2
    with clock.travel(timedelta(days=31)):
        assert not await legal_holds.is_active(hold.id)
        assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 1
    assert not await Customer.exists(id=customer_id)


async def test_a_narrower_hold_still_in_force_keeps_its_rows(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    customer_id, _, holds = await _erased_with_holds(
        gql, admin_headers, vault, "events", "events.purchase"
    )
    await retention.release_hold(SYSTEM, holds["events"])
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 1
    assert await Event.filter(customer_id=customer_id).values_list("type", flat=True) == [
        "purchase"
    ]
    assert await Customer.exists(id=customer_id)


async def test_held_copies_of_earlier_access_requests_go_when_their_hold_ends(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    await _person(vault)
    access = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, access)
    hold = await retention.place_hold(SYSTEM, reason="Complaint", category="dsr.exports")
    erasure = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, erasure)
    assert await AccessExport.filter(request_id=key(access)).count() == 1
    await retention.release_hold(SYSTEM, hold.id)
    assert (await tick(vault, LogNotifier(), settings)).retained_data_erased == 1
    assert await AccessExport.filter(request_id=key(access)).count() == 0
    assert await vault.customer_keys([key(access)]) == {}
