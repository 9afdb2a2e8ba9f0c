"""Merges among other merges, and the writes that address a merged id."""

from __future__ import annotations

import uuid

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision
from cdlm.core.errors import DomainError, ErrorCode
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.customers import rights
from cdlm.customers import service as customers
from cdlm.customers.ingest import CustomerIngest, ingest_batch
from cdlm.customers.models import Customer, SourceRecord
from cdlm.holds.models import LegalHold
from cdlm.identity import service as identity
from cdlm.identity.models import IdentityConflict
from cdlm.matching import merge as merging
from cdlm.matching.models import CandidateStatus, MatchCandidate, Merge, MergeKind
from cdlm.quality import service as quality
from cdlm.retention import customer_disposal as disposal
from cdlm.retention import service as retention
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.factories import bearer, gid, make_api_key, make_candidate, make_customer, source


async def _someone(vault: Vault, email: str, **more: str) -> uuid.UUID:
    return (await make_customer(vault, email=email, **more)).customer_id


async def _people(vault: Vault, names: str) -> list[uuid.UUID]:
    return [await _someone(vault, f"{n}@example.org") for n in names]


def _merge(survivor: uuid.UUID, merged: uuid.UUID) -> merging.MergeInput:
    return merging.MergeInput(survivor, merged, "The same person.")


async def _grant(vault: Vault, customer_id: uuid.UUID, decision: Decision) -> None:
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice("newsletter", decision, 1)],
            consent.Capture(consent.Method.FORM),
        ),
    )


async def test_undoing_an_earlier_merge_keeps_a_later_merges_refusal(vault: Vault) -> None:
    a, b, c = await _people(vault, "abc")
    await make_purpose(code="newsletter")
    await _grant(vault, a, Decision.GRANTED)
    await _grant(vault, c, Decision.DENIED)
    first = await merging.merge(SYSTEM, vault, _merge(a, b))
    await merging.merge(SYSTEM, vault, _merge(a, c))
    assert not await consent.may_process(a, "newsletter")

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(first.id, "Two people."))

    assert not await consent.may_process(a, "newsletter")  # C, still part of A, said no


async def test_undoing_a_merge_keeps_what_the_merged_profile_had_absorbed(vault: Vault) -> None:
    a, b, d = await _people(vault, "abd")
    await make_purpose(code="newsletter")
    await _grant(vault, b, Decision.GRANTED)
    await _grant(vault, d, Decision.DENIED)
    await merging.merge(SYSTEM, vault, _merge(b, d))
    outer = await merging.merge(SYSTEM, vault, _merge(a, b))

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(outer.id, "Two people."))

    assert not await consent.may_process(b, "newsletter")  # D, part of B again, said no
    assert (await customers.get_customer(d)).id == b


async def test_an_objection_of_the_merged_profile_holds_for_the_survivor(vault: Vault) -> None:
    a, b = await _people(vault, "ab")
    await make_purpose(code="newsletter")
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            b,
            [],
            consent.Capture(consent.Method.REQUEST),
            opt_out=consent.Objection(["newsletter"]),
        ),
    )
    await merging.merge(SYSTEM, vault, _merge(a, b))

    with pytest.raises(DomainError) as refused:
        await consent.record(
            SYSTEM,
            vault,
            consent.ConsentRecording(
                a,
                [consent.Choice("newsletter", Decision.GRANTED, 1)],
                consent.Capture(consent.Method.API),
            ),
        )

    assert refused.value.code is ErrorCode.OBJECTION_IN_FORCE


async def test_writes_addressed_to_a_merged_id_go_to_the_survivor(vault: Vault) -> None:
    a, b = await _people(vault, "ab")
    await make_purpose(code="newsletter")
    await merging.merge(SYSTEM, vault, _merge(a, b))

    await _grant(vault, b, Decision.GRANTED)
    hold = await retention.place_hold(SYSTEM, reason="Litigation 42", customer_id=b)
    updated = await customers.update_customer(SYSTEM, vault, b, {"city": "Truro"})

    assert await consent.may_process(a, "newsletter")
    assert (await LegalHold.get(id=hold.id)).customer_id == a
    assert updated.id == a


async def test_a_shared_identifier_stays_shared_after_a_merge_and_its_undoing(
    vault: Vault,
) -> None:
    ada = await _someone(vault, "ada@example.com", given_name="Ada", phone="+44 20 7946 0958")
    grace = (
        await make_customer(
            vault, given_name="Grace", email="grace@example.com", phone="+44 20 7946 0958"
        )
    ).customer_id
    conflict = await IdentityConflict.get(customer_id=grace, other_customer_id=ada)
    third = await _someone(vault, "third@example.com")
    done = await merging.merge(SYSTEM, vault, _merge(third, grace))
    assert (await IdentityConflict.get(id=conflict.id)).customer_id == third

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    again = await IdentityConflict.get(id=conflict.id)
    assert (again.customer_id, again.other_customer_id, again.resolved_at) == (grace, ada, None)
    assert await identity.shared(conflict.blind_index)


async def test_merging_the_pair_of_a_conflict_resolves_it_and_undoing_opens_it_again(
    vault: Vault,
) -> None:
    ada = await _someone(vault, "ada@example.com", given_name="Ada", phone="+44 20 7946 0958")
    grace = (
        await make_customer(
            vault, given_name="Grace", email="grace@example.com", phone="+44 20 7946 0958"
        )
    ).customer_id
    conflict = await IdentityConflict.get(customer_id=grace, other_customer_id=ada)
    done = await merging.merge(SYSTEM, vault, _merge(ada, grace))
    assert not await identity.shared(conflict.blind_index)

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    assert await identity.shared(conflict.blind_index)
    assert await IdentityConflict.filter(customer_id=ada, other_customer_id=ada).count() == 0


async def test_an_unmerge_leaves_alone_what_a_later_merge_brought(vault: Vault) -> None:
    a = await _someone(vault, "a@example.org")
    b = await _someone(vault, "b@example.org", given_name="Bea")
    first = await merging.merge(SYSTEM, vault, _merge(a, b))
    # A record carrying B's email but another name becomes a profile of its own, C...
    (result,) = await ingest_batch(
        vault,
        [CustomerIngest(source("crm"), {"email": "b@example.org", "given_name": "Cecil"})],
    )
    c = result.customer_id  # type: ignore[union-attr]
    assert c not in (a, b)
    # ...which a steward then merges into A as well.
    await merging.merge(SYSTEM, vault, _merge(a, c))

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(first.id, "Two people."))

    assert await SourceRecord.filter(customer_id=b).count() == 1
    assert await SourceRecord.filter(customer_id=a).count() == 2  # its own and C's


async def test_an_undone_merge_is_remembered_as_two_people(vault: Vault) -> None:
    a, b = await _people(vault, "ab")
    done = await merging.merge(SYSTEM, vault, _merge(a, b))

    await merging.unmerge(SYSTEM, vault, merging.UnmergeInput(done.id, "Two people."))

    left, right = sorted([a, b])
    remembered = await MatchCandidate.get(left_id=left, right_id=right)
    assert remembered.status is CandidateStatus.NOT_A_MATCH
    assert remembered.left_digest
    assert remembered.right_digest
    with pytest.raises(DomainError) as refused:
        await merging.merge(
            SYSTEM, vault, merging.MergeInput(a, b, None, MergeKind.AUTOMATIC, None, 0.99)
        )
    assert refused.value.code is ErrorCode.MARKED_NOT_A_MATCH


async def test_two_people_said_of_a_merged_profile_holds_for_its_survivor(vault: Vault) -> None:
    a, b, x = await _people(vault, "abx")
    low, high = sorted([b, x])
    await make_candidate(low, high, status=CandidateStatus.NOT_A_MATCH)

    await merging.merge(SYSTEM, vault, _merge(a, b))

    with pytest.raises(DomainError) as refused:
        await merging.merge(SYSTEM, vault, _merge(a, x))
    assert refused.value.code is ErrorCode.MARKED_NOT_A_MATCH


async def test_an_automatic_merge_is_refused_when_a_hold_was_placed_since_scoring(
    vault: Vault,
) -> None:
    a, b = await _people(vault, "ab")
    await retention.place_hold(SYSTEM, reason="Investigation", customer_id=b)

    with pytest.raises(DomainError):
        await merging.merge(
            SYSTEM, vault, merging.MergeInput(a, b, None, MergeKind.AUTOMATIC, None, 0.99)
        )

    assert (await customers.get_customer(b)).id == b


async def test_aggregates_count_a_merged_pair_once(vault: Vault) -> None:
    a, b, _ = await _people(vault, "abc")
    await make_purpose(code="newsletter")
    await _grant(vault, a, Decision.GRANTED)
    await _grant(vault, b, Decision.GRANTED)

    await merging.merge(SYSTEM, vault, _merge(a, b))

    assert (await quality.report()).customers == 2
    ((_, granted, total),) = await consent.opt_in_rates()
    assert (granted, total) == (1, 2)


async def test_disposing_of_a_survivor_takes_its_redirects_and_match_records(
    vault: Vault,
) -> None:
    a, b, x = await _people(vault, "abx")
    await merging.merge(SYSTEM, vault, _merge(a, b))
    low, high = sorted([a, x])
    await make_candidate(low, high)

    await disposal.delete_customers(vault, [str(a)], rights.Keep())

    assert await Customer.filter(id__in=[a, b]).count() == 0
    assert await MatchCandidate.all().count() == 0
    assert await Merge.all().count() == 0


async def test_agents_do_not_see_merges_stewards_do(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    a, b = await _people(vault, "ab")
    await merging.merge(SYSTEM, vault, _merge(a, b))
    query = "query($id: ID!) { customer(id: $id) { id mergedFrom mergeHistory { kind } } }"

    agent = await gql(
        query, {"id": gid("Customer", a)}, bearer(await make_api_key(auth, Role.AGENT))
    )
    steward = await gql(
        query, {"id": gid("Customer", a)}, bearer(await make_api_key(auth, Role.STEWARD))
    )

    assert {e["extensions"]["code"] for e in agent["errors"]} == {"FORBIDDEN"}
    assert steward["data"]["customer"] == {
        "id": gid("Customer", a),
        "mergedFrom": [gid("Customer", b)],
        "mergeHistory": [{"kind": "MANUAL"}],
    }
