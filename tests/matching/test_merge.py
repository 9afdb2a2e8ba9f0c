"""Merging two profiles of one person and undoing it, through the services."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from cdlm.consent import service as consent
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.errors import DomainError, ErrorCode
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis
from cdlm.customers import service as customers
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.dsr.models import DataSubjectRequest
from cdlm.identity.models import Identity
from cdlm.matching import merge as merging
from cdlm.matching.models import CandidateStatus, MatchCandidate, Merge, MergeKind
from cdlm.quality.models import InvalidValue
from cdlm.vault.models import AbsorbedKey, CustomerKey
from cdlm.vault.service import Vault
from tests.factories import make_candidate, make_customer, source

REASON = "Same person: one email had a typo."


async def _pair(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    ada = await make_customer(
        vault,
        given_name="Ada",
        family_name="Lovelace",
        email="ada@example.com",
        birth_date="1985-12-10",
        external_ids=["crm:1"],
    )
    typo = await make_customer(
        vault,
        origin=source("web-shop", collected_at=clock.now() - timedelta(days=3)),
        given_name="Ada",
        family_name="Lovelace",
        email="ada@exmaple.com",
        phone="+44 20 7946 0001",
        city="London",
        country="not a country",
        external_ids=["shop:77"],
    )
    return ada.customer_id, typo.customer_id


async def _events(vault: Vault, customer_id: uuid.UUID, n: int, tag: str) -> None:
    items = [
        EventIngest(
            type="page_view",
            occurred_at=clock.now() - timedelta(hours=i + 1),
            source_system="web",
            customer_id=customer_id,
            properties={"path": f"/{tag}/{i}"},
        )
        for i in range(n)
    ]
    result, _ = await ingest_events(SYSTEM, vault, items)
    assert not result.rejected


async def _snapshot(vault: Vault, customer_id: uuid.UUID) -> dict[str, Any]:
    """Everything a profile holds, opened."""
    row = await Customer.get(id=customer_id)
    key = await vault.customer_key(customer_id)
    events = await Event.filter(customer_id=customer_id).order_by("occurred_at")
    return {
        "profile": vault.open(key, customer_id, "profile", row.profile_sealed),
        "lineage": {k: v["source_record_id"] for k, v in row.lineage.items()},
        "sources": sorted(
            str(r)
            for r in await SourceRecord.filter(customer_id=customer_id).values_list("id", flat=True)
        ),
        "identities": sorted(
            vault.open(key, customer_id, "identity", i.value_sealed)
            for i in await Identity.filter(customer_id=customer_id)
        ),
        "events": [
            vault.open(key, customer_id, "event-properties", e.properties_sealed) for e in events
        ],
        "refused": sorted(
            vault.open(key, customer_id, f"invalid:{v.field}", v.value_sealed)
            for v in await InvalidValue.filter(customer_id=customer_id)
        ),
        "stage": row.lifecycle_stage,
        "systems": row.source_systems,
    }


async def test_a_merge_moves_everything_to_the_survivor_and_the_merged_id_redirects(
    vault: Vault,
) -> None:
    ada, typo = await _pair(vault)
    await _events(vault, ada, 2, "a")
    await _events(vault, typo, 3, "t")

    done = await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))

    assert done.kind is MergeKind.MANUAL
    after = await _snapshot(vault, ada)
    assert after["profile"]["email"] == "ada@example.com"  # the CRM outranks the web shop
    assert after["profile"]["phone"] == "+442079460001"  # only the merged profile had one
    assert after["profile"]["city"] == "London"
    assert sorted(after["identities"]) == sorted(
        ["ada@example.com", "ada@exmaple.com", "+442079460001", "1", "77"]
    )
    assert len(after["events"]) == 5
    assert after["refused"] == ["not a country"]
    assert after["systems"] == ["crm", "web-shop"]
    assert len(after["sources"]) == 2
    # The merged id answers with the survivor; nothing is left on it.
    assert (await customers.get_customer(typo)).id == ada
    tombstone = await Customer.get(id=typo)
    assert tombstone.merged_into_id == ada
    assert tombstone.profile_sealed == b""
    assert not await Identity.exists(customer_id=typo)
    assert not await Event.exists(customer_id=typo)
    # Its key is kept only under the survivor's.
    assert not await CustomerKey.exists(customer_id=typo)
    assert await AbsorbedKey.exists(customer_id=typo, survivor_id=ada)
    assert not await customers.exists(typo)


async def test_merge_then_unmerge_gives_back_the_same_two_profiles(vault: Vault) -> None:
    ada, typo = await _pair(vault)
    await _events(vault, ada, 2, "a")
    await _events(vault, typo, 3, "t")
    before = {c: await _snapshot(vault, c) for c in (ada, typo)}

    done = await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))
    undone = await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    assert undone.unmerged_at is not None
    after = {c: await _snapshot(vault, c) for c in (ada, typo)}
    assert after == before
    assert (await Customer.get(id=typo)).merged_into_id is None
    assert not await AbsorbedKey.exists(customer_id=typo)
    # The pair is remembered as two people.
    left, right = sorted([ada, typo])
    assert (
        await MatchCandidate.exists(left_id=left, right_id=right) is False
        or (await MatchCandidate.get(left_id=left, right_id=right)).status
        is CandidateStatus.NOT_A_MATCH
    )


async def test_what_arrives_after_a_merge_is_assigned_by_its_identifiers(vault: Vault) -> None:
    ada, typo = await _pair(vault)
    done = await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))
    # Records now land on the survivor, whichever profile's identifier they carry.
    theirs = await make_customer(vault, email="ada@exmaple.com", region="Greater London")
    mine = await make_customer(vault, email="ada@example.com", region="Surrey")
    assert theirs.customer_id == mine.customer_id == ada
    await _events(vault, typo, 1, "late")  # sent to the old id: redirected

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    assert (await _snapshot(vault, typo))["profile"]["region"] == "Greater London"
    assert (await _snapshot(vault, ada))["profile"]["region"] == "Surrey"
    assert await SourceRecord.filter(customer_id=typo).count() == 2
    # An event names no identifier: it stays with the survivor.
    assert await Event.filter(customer_id=ada).count() == 1


async def _purpose(code: str, mechanism: Mechanism) -> None:
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code=code,
            name=code,
            description="A purpose of the test.",
            lawful_basis=LawfulBasis.CONSENT,
            mechanism=mechanism,
            data_use="marketing.advertising",
            data_categories=["user.contact.email"],
            sale_or_sharing=False,
            notice_text="We write to you about our products.",
        ),
    )


async def test_consent_after_a_merge_is_the_most_restrictive_and_unmerge_restores_it(
    vault: Vault,
) -> None:
    ada, typo = await _pair(vault)
    await _purpose("marketing.email", Mechanism.OPT_IN)
    await _purpose("marketing.post", Mechanism.OPT_IN)
    capture = consent.Capture(method=consent.Method.FORM)
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            ada, [consent.Choice("marketing.email", Decision.GRANTED, 1)], capture
        ),
    )
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            typo,
            [
                consent.Choice("marketing.email", Decision.WITHDRAWN, 1),
                consent.Choice("marketing.post", Decision.GRANTED, 1),
            ],
            capture,
        ),
    )
    before = await ConsentEntry.all().count()

    done = await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))

    assert not await consent.may_process(ada, "marketing.email")  # withdrawn beats granted
    assert await consent.may_process(ada, "marketing.post")  # a grant beats no decision
    assert await ConsentEntry.all().count() == before + 2
    assert await ConsentEntry.filter(method=Method.MERGE, customer_id=ada).count() == 2
    assert len(await consent.history(ada)) == 5  # both ledgers, and the merge
    assert (await consent.verify_ledger()).ok

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    assert await consent.may_process(ada, "marketing.email")
    assert not await consent.may_process(ada, "marketing.post")  # that grant was the other's
    assert not await consent.may_process(typo, "marketing.email")
    assert await consent.may_process(typo, "marketing.post")
    assert (await consent.verify_ledger()).ok


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("self", ErrorCode.SAME_CUSTOMER),
        ("merged", ErrorCode.ALREADY_MERGED),
        ("restricted", ErrorCode.PROCESSING_RESTRICTED),
        ("erased", ErrorCode.CUSTOMER_ERASED),
        ("not_a_match", ErrorCode.MARKED_NOT_A_MATCH),
        ("unknown", ErrorCode.NOT_FOUND),
        ("no_reason", ErrorCode.REQUIRED),
    ],
)
async def test_a_refused_merge_says_why_and_leaves_both_profiles_as_they_were(
    vault: Vault, state: str, code: ErrorCode
) -> None:
    ada, typo = await _pair(vault)
    third = (await make_customer(vault, email="third@example.com")).customer_id
    survivor, merged, reason = ada, typo, REASON
    if state == "self":
        merged = ada
    elif state == "merged":
        await merging.merge(SYSTEM, vault, merging.MergeInput(third, typo, REASON))
    elif state == "restricted":
        await Customer.filter(id=typo).update(restricted_at=clock.now())
    elif state == "erased":
        await Customer.filter(id=typo).update(erased_at=clock.now())
    elif state == "not_a_match":
        left, right = sorted([ada, typo])
        await make_candidate(left, right, status=CandidateStatus.NOT_A_MATCH, probability=0.99)
    elif state == "unknown":
        merged = uuid.uuid4()
    elif state == "no_reason":
        reason = "  "
    before = {c: await _snapshot(vault, c) for c in (ada,)}
    merges = await Merge.all().count()

    with pytest.raises(DomainError) as refused:
        await merging.merge(SYSTEM, vault, merging.MergeInput(survivor, merged, reason))

    assert refused.value.code is code
    assert await Merge.all().count() == merges
    assert {c: await _snapshot(vault, c) for c in (ada,)} == before
    if state not in ("merged", "erased"):
        assert (await Customer.get(id=typo)).merged_into_id is None
        assert await Identity.filter(customer_id=typo).count() == 3


async def test_an_unmerge_undone_twice_is_refused(vault: Vault) -> None:
    ada, typo = await _pair(vault)
    done = await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))
    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    with pytest.raises(DomainError) as again:
        await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Again."))

    assert again.value.code is ErrorCode.ALREADY_UNMERGED


async def test_a_merge_racing_an_ingest_loses_nothing(vault: Vault) -> None:
    ada, typo = await _pair(vault)

    async def ingest(n: int) -> uuid.UUID:
        made = await make_customer(vault, email="ada@exmaple.com", address_line1=f"{n} Race Street")
        return made.customer_id

    async def merge() -> Merge:
        return await merging.merge(SYSTEM, vault, merging.MergeInput(ada, typo, REASON))

    outcomes = await asyncio.gather(
        *(ingest(n) for n in range(6)), merge(), *(ingest(n) for n in range(6, 12))
    )

    landed = set(outcomes[:6]) | set(outcomes[7:])
    assert landed <= {ada, typo}
    # Every record is on the survivor, none on the redirect.
    assert await SourceRecord.filter(customer_id=typo).count() == 0
    assert await SourceRecord.filter(customer_id=ada).count() == 2 + 12
    key = await vault.customer_key(ada)
    for record in await SourceRecord.filter(customer_id=ada):
        vault.open(key, ada, f"source:{record.id}", record.payload_sealed)


def test_the_requests_a_merge_moves_are_the_request_table() -> None:
    # matching names the table (dsr sits above it); the name must stay the model's.
    assert merging.REQUESTS.name == DataSubjectRequest._meta.db_table
    assert merging.REQUESTS.owner_column in DataSubjectRequest._meta.db_fields
