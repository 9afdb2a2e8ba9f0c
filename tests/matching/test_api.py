"""resolveMatchCandidate, mergeCustomers and unmergeCustomer through the real ASGI app: each
result union with every error it lists, and the changed objects in the success payloads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.customers.models import Customer
from cdlm.graphql.relay import split_global_id
from cdlm.matching.models import CandidateStatus, MatchCandidate, Merge
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_candidate, make_customer
from tests.support.audit import read_records

MERGE = """
mutation($s: ID!, $m: ID!, $r: String!) {
  mergeCustomers(input: {survivorId: $s, mergedId: $m, reason: $r}) {
    __typename
    ... on CustomersMerged {
      survivor { id mergedFrom profile { email phone } mergeHistory { id kind mergedId } }
      merge { id kind survivorId mergedId reason survivor { id } merged { id } candidate { id } }
    }
    ... on UserError { code field message }
    ... on ValidationError { issues { field code } }
  }
}"""
UNMERGE = """
mutation($id: ID!, $r: String!) {
  unmergeCustomer(input: {mergeId: $id, reason: $r}) {
    __typename
    ... on CustomerUnmerged {
      survivor { id profile { email } }
      restored { id profile { email } }
      merge { id unmergedAt unmergeReason merged { id } }
    }
    ... on UserError { code field }
  }
}"""
RESOLVE = """
mutation($id: ID!, $d: MatchDecision!, $n: String) {
  resolveMatchCandidate(input: {id: $id, decision: $d, note: $n}) {
    __typename
    ... on MatchCandidateResolved {
      candidate { id status decidedAt note merge { id } }
      merge { id kind survivorId mergedId candidate { id status } }
      survivor { id mergedFrom }
    }
    ... on UserError { code field }
  }
}"""


def key_of(api_id: str) -> uuid.UUID:
    """The database id behind a customer id as the API shows it (a global id, or the bare
    UUID the Customer type gave before it became a Relay node)."""
    found = split_global_id(api_id)
    return found[1] if found is not None else uuid.UUID(api_id)


def customer(key: uuid.UUID) -> str:
    return gid("Customer", key)


async def _headers(auth: AuthSettings, role: Role) -> dict[str, str]:
    return bearer(await make_api_key(auth, role))


async def _two(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    one = await make_customer(
        vault, given_name="Grace", family_name="Hopper", email="grace@example.com"
    )
    two = await make_customer(
        vault,
        given_name="Grace",
        family_name="Hopper",
        email="grace.hopper@example.org",
        phone="+44 20 7946 0002",
    )
    return one.customer_id, two.customer_id


async def _candidate(left: uuid.UUID, right: uuid.UUID, probability: float) -> MatchCandidate:
    return await make_candidate(
        left,
        right,
        probability=probability,
        comparisons=[
            {"name": "given_name", "level": "Exact match", "weight": 3.1},
            {"name": "email", "level": "Same local part", "weight": -1.2},
        ],
    )


async def test_a_steward_merges_two_profiles_and_the_merged_id_answers_with_the_survivor(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)

    body = await gql(
        MERGE, {"s": customer(first), "m": customer(second), "r": "Same person."}, steward
    )

    merged = body["data"]["mergeCustomers"]
    assert merged["__typename"] == "CustomersMerged", body
    row = await Merge.get(survivor_id=first)
    survivor = merged["survivor"]
    assert key_of(survivor["id"]) == first
    assert [key_of(i) for i in survivor["mergedFrom"]] == [second]
    assert survivor["profile"]["phone"] == "+442079460002"
    assert survivor["mergeHistory"] == [
        {"id": gid("CustomerMerge", row.id), "kind": "MANUAL", "mergedId": customer(second)}
    ]
    merge = merged["merge"]
    assert {k: merge[k] for k in ("id", "kind", "survivorId", "mergedId", "reason")} == {
        "id": gid("CustomerMerge", row.id),
        "kind": "MANUAL",
        "survivorId": customer(first),
        "mergedId": customer(second),
        "reason": "Same person.",
    }
    # The merged profile answers as the survivor while the merge stands.
    assert key_of(merge["survivor"]["id"]) == first
    assert key_of(merge["merged"]["id"]) == first
    assert merge["candidate"] is None
    assert await AuditEntry.filter(action="customer.merge", target_id=first).exists()

    undone = await gql(UNMERGE, {"id": merge["id"], "r": "Two people."}, steward)

    result = undone["data"]["unmergeCustomer"]
    assert result["__typename"] == "CustomerUnmerged", undone
    assert result["survivor"]["profile"]["email"] == "grace@example.com"
    assert key_of(result["restored"]["id"]) == second
    assert result["restored"]["profile"] == {"email": "grace.hopper@example.org"}
    assert result["merge"]["id"] == merge["id"]
    assert result["merge"]["unmergedAt"] is not None
    assert result["merge"]["unmergeReason"] == "Two people."
    assert key_of(result["merge"]["merged"]["id"]) == second
    assert (await Customer.get(id=second)).merged_into_id is None


MERGE_REFUSALS = [
    ("self", "ValidationError", "SAME_CUSTOMER", "input.mergedId"),
    ("not an id", "ValidationError", "INVALID_ID", "input.mergedId"),
    ("a bare uuid", "ValidationError", "INVALID_ID", "input.survivorId"),
    ("another type's id", "ValidationError", "INVALID_ID", "input.mergedId"),
    ("blank reason", "ValidationError", "REQUIRED", "input.reason"),
    ("long reason", "ValidationError", "TOO_LONG", "input.reason"),
    ("unknown", "NotFoundError", "NOT_FOUND", "input.mergedId"),
    ("merged already", "InvalidStateError", "ALREADY_MERGED", "input.mergedId"),
    ("erased", "InvalidStateError", "CUSTOMER_ERASED", "input.mergedId"),
    ("restricted", "PolicyViolationError", "PROCESSING_RESTRICTED", "input.mergedId"),
    ("two people", "ConflictError", "MARKED_NOT_A_MATCH", "input.mergedId"),
]


@pytest.mark.parametrize(("case", "typename", "code", "field"), MERGE_REFUSALS)
async def test_a_refused_merge_is_one_of_the_listed_errors_and_changes_nothing(
    gql: GraphQLClient,
    auth: AuthSettings,
    vault: Vault,
    case: str,
    typename: str,
    code: str,
    field: str,
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    variables = {"s": customer(first), "m": customer(second), "r": "Same person."}
    if case == "self":
        variables["m"] = customer(first)
    elif case == "not an id":
        variables["m"] = "customer-2"
    elif case == "a bare uuid":
        variables["s"] = str(first)
    elif case == "another type's id":
        variables["m"] = gid("MatchCandidate", second)
    elif case == "blank reason":
        variables["r"] = " "
    elif case == "long reason":
        variables["r"] = "x" * 501
    elif case == "unknown":
        variables["m"] = customer(uuid.uuid4())
    elif case == "merged already":
        third = (await make_customer(vault, email="third@example.com")).customer_id
        done = await gql(
            MERGE, {"s": customer(third), "m": customer(second), "r": "Same."}, steward
        )
        assert done["data"]["mergeCustomers"]["__typename"] == "CustomersMerged"
    elif case == "erased":
        await Customer.filter(id=second).update(erased_at=clock.now())
    elif case == "restricted":
        await Customer.filter(id=second).update(restricted_at=clock.now())
    else:
        await make_candidate(first, second, status=CandidateStatus.NOT_A_MATCH)
    merges = await Merge.all().count()

    body = await gql(MERGE, variables, steward)

    refused = body["data"]["mergeCustomers"]
    assert (refused["__typename"], refused["code"], refused["field"]) == (typename, code, field)
    assert refused["message"]
    if typename == "ValidationError":
        assert refused["issues"] == [{"field": field, "code": code}]
    assert await Merge.all().count() == merges
    assert (await Customer.get(id=first)).merged_into_id is None


async def test_both_bad_ids_of_a_merge_are_reported_at_once(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    steward = await _headers(auth, Role.STEWARD)

    body = await gql(MERGE, {"s": "one", "m": "two", "r": "Same."}, steward)

    refused = body["data"]["mergeCustomers"]
    assert refused["__typename"] == "ValidationError"
    assert refused["issues"] == [
        {"field": "input.survivorId", "code": "INVALID_ID"},
        {"field": "input.mergedId", "code": "INVALID_ID"},
    ]


UNMERGE_REFUSALS = [
    ("not an id", "ValidationError", "INVALID_ID"),
    ("a customer's id", "ValidationError", "INVALID_ID"),
    ("blank reason", "ValidationError", "REQUIRED"),
    ("unknown", "NotFoundError", "NOT_FOUND"),
    ("undone already", "InvalidStateError", "ALREADY_UNMERGED"),
    ("survivor merged since", "InvalidStateError", "ALREADY_MERGED"),
    ("erased since", "InvalidStateError", "CUSTOMER_ERASED"),
]


@pytest.mark.parametrize(("case", "typename", "code"), UNMERGE_REFUSALS)
async def test_a_refused_unmerge_is_one_of_the_listed_errors_and_changes_nothing(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, case: str, typename: str, code: str
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    made = await gql(MERGE, {"s": customer(first), "m": customer(second), "r": "Same."}, steward)
    merge_id = made["data"]["mergeCustomers"]["merge"]["id"]
    variables = {"id": merge_id, "r": "Two people."}
    if case == "not an id":
        variables["id"] = "merge-1"
    elif case == "a customer's id":
        variables["id"] = customer(first)
    elif case == "blank reason":
        variables["r"] = ""
    elif case == "unknown":
        variables["id"] = gid("CustomerMerge", uuid.uuid4())
    elif case == "undone already":
        await gql(UNMERGE, {"id": merge_id, "r": "Two."}, steward)
    elif case == "survivor merged since":
        third = (await make_customer(vault, email="third@example.com")).customer_id
        await gql(MERGE, {"s": customer(third), "m": customer(first), "r": "Same."}, steward)
    else:
        await Customer.filter(id=first).update(erased_at=clock.now())
    before = await Merge.filter(unmerged_at__isnull=True).count()

    body = await gql(UNMERGE, variables, steward)

    refused = body["data"]["unmergeCustomer"]
    field = "input.reason" if case == "blank reason" else "input.mergeId"
    assert (refused["__typename"], refused["code"], refused["field"]) == (typename, code, field)
    assert await Merge.filter(unmerged_at__isnull=True).count() == before


RESOLVE_REFUSALS = [
    ("not an id", "MERGE", "ValidationError", "INVALID_ID", "input.id"),
    ("a customer's id", "MERGE", "ValidationError", "INVALID_ID", "input.id"),
    ("long note", "NOT_A_MATCH", "ValidationError", "TOO_LONG", "input.note"),
    ("unknown", "MERGE", "NotFoundError", "NOT_FOUND", "input.id"),
    ("profile gone", "MERGE", "NotFoundError", "NOT_FOUND", "input.id"),
    ("decided", "NOT_A_MATCH", "InvalidStateError", "INVALID_STATE", "input.id"),
    ("superseded", "MERGE", "InvalidStateError", "INVALID_STATE", "input.id"),
    ("erased", "MERGE", "InvalidStateError", "CUSTOMER_ERASED", "input.id"),
    ("restricted", "MERGE", "PolicyViolationError", "PROCESSING_RESTRICTED", "input.id"),
]


@pytest.mark.parametrize(("case", "decision", "typename", "code", "field"), RESOLVE_REFUSALS)
async def test_a_refused_resolution_is_one_of_the_listed_errors_and_leaves_the_pair_pending(
    gql: GraphQLClient,
    auth: AuthSettings,
    vault: Vault,
    case: str,
    decision: str,
    typename: str,
    code: str,
    field: str,
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)
    variables: dict[str, Any] = {"id": gid("MatchCandidate", candidate.id), "d": decision}
    status = CandidateStatus.PENDING
    if case == "not an id":
        variables["id"] = str(candidate.id)
    elif case == "a customer's id":
        variables["id"] = customer(first)
    elif case == "long note":
        variables["n"] = "n" * 501
    elif case == "unknown":
        variables["id"] = gid("MatchCandidate", uuid.uuid4())
    elif case == "profile gone":
        variables["id"] = gid("MatchCandidate", (await _candidate(first, uuid.uuid4(), 0.8)).id)
    elif case == "decided":
        status = CandidateStatus.NOT_A_MATCH
    elif case == "superseded":
        status = CandidateStatus.SUPERSEDED
    elif case == "erased":
        await Customer.filter(id=second).update(erased_at=clock.now())
    else:
        await Customer.filter(id=second).update(restricted_at=clock.now())
    await MatchCandidate.filter(id=candidate.id).update(status=status)

    body = await gql(RESOLVE, variables, steward)

    refused = body["data"]["resolveMatchCandidate"]
    assert (refused["__typename"], refused["code"], refused["field"]) == (typename, code, field)
    assert (await MatchCandidate.get(id=candidate.id)).status is status
    assert await Merge.all().count() == 0


@pytest.mark.parametrize("role", [Role.AGENT, Role.INGEST, Role.ANALYST, Role.PRIVACY_OFFICER])
async def test_only_stewards_and_admins_merge_or_resolve(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, role: Role
) -> None:
    headers = await _headers(auth, role)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    merge = await gql(MERGE, {"s": customer(first), "m": customer(second), "r": "Same."}, headers)
    resolve = await gql(RESOLVE, {"id": gid("MatchCandidate", candidate.id), "d": "MERGE"}, headers)
    unmerge = await gql(UNMERGE, {"id": gid("CustomerMerge", uuid.uuid4()), "r": "Two."}, headers)

    for body in (merge, resolve, unmerge):
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert await Merge.all().count() == 0


async def test_not_a_match_is_remembered_and_only_merging_it_after_all_is_allowed(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)
    candidate_id = gid("MatchCandidate", candidate.id)

    body = await gql(
        RESOLVE, {"id": candidate_id, "d": "NOT_A_MATCH", "n": "Mother and daughter."}, steward
    )

    resolved = body["data"]["resolveMatchCandidate"]
    assert resolved["__typename"] == "MatchCandidateResolved", body
    assert resolved["candidate"]["id"] == candidate_id
    assert resolved["candidate"]["status"] == "NOT_A_MATCH"
    assert resolved["candidate"]["note"] == "Mother and daughter."
    assert resolved["candidate"]["decidedAt"] is not None
    assert resolved["merge"] is None
    assert resolved["survivor"] is None
    manual = await gql(MERGE, {"s": customer(first), "m": customer(second), "r": "Same."}, steward)
    assert manual["data"]["mergeCustomers"]["code"] == "MARKED_NOT_A_MATCH"
    # The steward changes their mind: the queue is where a decided pair is merged after all.
    reconsidered = await gql(RESOLVE, {"id": candidate_id, "d": "MERGE"}, steward)
    assert reconsidered["data"]["resolveMatchCandidate"]["candidate"]["status"] == "MERGED"
    merged_twice = await gql(RESOLVE, {"id": candidate_id, "d": "MERGE"}, steward)
    assert merged_twice["data"]["resolveMatchCandidate"]["code"] == "INVALID_STATE"


async def test_resolving_a_candidate_as_merge_merges_into_the_older_profile(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    admin = await _headers(auth, Role.ADMIN)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)
    candidate_id = gid("MatchCandidate", candidate.id)

    body = await gql(RESOLVE, {"id": candidate_id, "d": "MERGE"}, admin)

    resolved: dict[str, Any] = body["data"]["resolveMatchCandidate"]
    row = await Merge.get(candidate_id=candidate.id)
    merge_id = gid("CustomerMerge", row.id)
    assert resolved["candidate"]["status"] == "MERGED", body
    assert resolved["candidate"]["merge"] == {"id": merge_id}
    assert resolved["merge"] == {
        "id": merge_id,
        "kind": "REVIEW",
        "survivorId": customer(first),
        "mergedId": customer(second),
        "candidate": {"id": candidate_id, "status": "MERGED"},
    }
    assert key_of(resolved["survivor"]["id"]) == first
    assert [key_of(i) for i in resolved["survivor"]["mergedFrom"]] == [second]
    pending = await gql("query { matchCandidates { totalCount } }", headers=admin)
    assert pending["data"]["matchCandidates"]["totalCount"] == 0


async def test_reading_the_survivor_in_a_resolution_is_audited(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    body = await gql(
        "mutation($id: ID!) { resolveMatchCandidate(input: {id: $id, decision: MERGE}) {"
        " ... on MatchCandidateResolved { survivor { profile { email } } } } }",
        {"id": gid("MatchCandidate", candidate.id)},
        steward,
    )

    assert body["data"]["resolveMatchCandidate"]["survivor"]["profile"]["email"]
    [read] = await read_records("customer.read", first)
    assert read.fields_touched == ["email"]
