"""The review queue, mergeCustomers and unmergeCustomer through the real ASGI app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.models import Customer
from cdlm.matching.models import MatchCandidate, Merge
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, make_candidate, make_customer
from tests.support.audit import read_records

MERGE = """
mutation($s: ID!, $m: ID!, $r: String!) {
  mergeCustomers(input: {survivorId: $s, mergedId: $m, reason: $r}) {
    __typename
    ... on CustomersMerged {
      customer { id mergedFrom profile { email phone } }
      merge { id kind survivorId mergedId reason }
    }
    ... on UserError { code field message }
  }
}"""
UNMERGE = """
mutation($id: ID!, $r: String!) {
  unmergeCustomer(input: {mergeId: $id, reason: $r}) {
    __typename
    ... on CustomerUnmerged {
      customer { id profile { email } }
      restored { id profile { email } }
      merge { unmergedAt unmergeReason }
    }
    ... on UserError { code field }
  }
}"""
QUEUE = """
query($f: MatchCandidateFilter, $first: Int, $after: String) {
  matchCandidates(filter: $f, first: $first, after: $after) {
    edges { cursor node {
      id status probability matchWeight conflicts
      comparisons { name level weight }
      left { id profile { email } } right { id profile { email } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
RESOLVE = """
mutation($id: ID!, $d: MatchDecision!, $n: String) {
  resolveMatchCandidate(input: {id: $id, decision: $d, note: $n}) {
    __typename
    ... on MatchCandidateResolved {
      candidate { status decidedAt note }
      merge { kind survivorId mergedId }
      customer { id mergedFrom }
    }
    ... on UserError { code field }
  }
}"""


async def _headers(auth: AuthSettings, role: Role) -> dict[str, str]:
    return bearer(await make_api_key(auth, role))


async def _two(vault: Vault) -> tuple[str, str]:
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
    return str(one.customer_id), str(two.customer_id)


async def _candidate(left: str, right: str, probability: float) -> MatchCandidate:
    return await make_candidate(
        uuid.UUID(left),
        uuid.UUID(right),
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

    body = await gql(MERGE, {"s": first, "m": second, "r": "Same person."}, steward)

    merged = body["data"]["mergeCustomers"]
    assert merged["__typename"] == "CustomersMerged", body
    assert merged["customer"]["id"] == first
    assert merged["customer"]["mergedFrom"] == [second]
    assert merged["customer"]["profile"]["phone"] == "+442079460002"
    assert merged["merge"] == {
        "id": merged["merge"]["id"],
        "kind": "MANUAL",
        "survivorId": first,
        "mergedId": second,
        "reason": "Same person.",
    }
    redirect = await gql(
        "query($id: ID!) { customer(id: $id) { id mergeHistory { kind mergedId } } }",
        {"id": second},
        steward,
    )
    assert redirect["data"]["customer"] == {
        "id": first,
        "mergeHistory": [{"kind": "MANUAL", "mergedId": second}],
    }
    assert await AuditEntry.filter(action="customer.merge", target_id=first).exists()

    undone = await gql(UNMERGE, {"id": merged["merge"]["id"], "r": "Two people."}, steward)

    result = undone["data"]["unmergeCustomer"]
    assert result["__typename"] == "CustomerUnmerged", undone
    assert result["customer"]["profile"]["email"] == "grace@example.com"
    assert result["restored"] == {"id": second, "profile": {"email": "grace.hopper@example.org"}}
    assert result["merge"]["unmergeReason"] == "Two people."
    assert (await Customer.get(id=second)).merged_into_id is None


@pytest.mark.parametrize(
    ("case", "code", "field"),
    [
        ("self", "SAME_CUSTOMER", "input.mergedId"),
        ("unknown", "NOT_FOUND", "input.mergedId"),
        ("not an id", "VALIDATION", "input.mergedId"),
        ("blank reason", "REQUIRED", "input.reason"),
        ("long reason", "TOO_LONG", "input.reason"),
    ],
)
async def test_a_refused_merge_is_a_user_error_with_a_code_and_changes_nothing(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, case: str, code: str, field: str
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    variables = {"s": first, "m": second, "r": "Same person."}
    if case == "self":
        variables["m"] = first
    elif case == "unknown":
        variables["m"] = str(uuid.uuid4())
    elif case == "not an id":
        variables["m"] = "customer-2"
    elif case == "blank reason":
        variables["r"] = " "
    else:
        variables["r"] = "x" * 501

    body = await gql(MERGE, variables, steward)

    assert body["data"]["mergeCustomers"]["code"] == code, body
    assert body["data"]["mergeCustomers"]["field"] == field
    assert await Merge.all().count() == 0
    assert await Customer.filter(merged_into_id__isnull=False).count() == 0


async def test_unmerging_an_unknown_or_undone_merge_says_so(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    unknown = await gql(UNMERGE, {"id": str(uuid.uuid4()), "r": "Two."}, steward)
    assert unknown["data"]["unmergeCustomer"]["code"] == "NOT_FOUND"
    made = await gql(MERGE, {"s": first, "m": second, "r": "Same."}, steward)
    merge_id = made["data"]["mergeCustomers"]["merge"]["id"]
    await gql(UNMERGE, {"id": merge_id, "r": "Two."}, steward)

    again = await gql(UNMERGE, {"id": merge_id, "r": "Two."}, steward)

    assert again["data"]["unmergeCustomer"]["code"] == "ALREADY_UNMERGED"


@pytest.mark.parametrize("role", [Role.AGENT, Role.INGEST, Role.ANALYST, Role.PRIVACY_OFFICER])
async def test_only_stewards_and_admins_merge_or_resolve(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, role: Role
) -> None:
    headers = await _headers(auth, role)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    merge = await gql(MERGE, {"s": first, "m": second, "r": "Same."}, headers)
    resolve = await gql(RESOLVE, {"id": str(candidate.id), "d": "MERGE"}, headers)
    unmerge = await gql(UNMERGE, {"id": str(uuid.uuid4()), "r": "Two."}, headers)

    for body in (merge, resolve, unmerge):
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert await Merge.all().count() == 0


async def test_the_queue_needs_credentials_and_is_closed_to_agents_and_ingest(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    anonymous = await gql(QUEUE)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for role in (Role.AGENT, Role.INGEST):
        body = await gql(QUEUE, headers=await _headers(auth, role))
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_analyst_sees_the_queue_masked_most_probable_first_page_by_page(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    first, second = await _two(vault)
    third = str((await make_customer(vault, email="g.hopper@example.net")).customer_id)
    strong = await _candidate(first, second, 0.97)
    weak = await _candidate(second, third, 0.83)
    analyst = await _headers(auth, Role.ANALYST)

    page = await gql(QUEUE, {"first": 1}, analyst)

    (edge,) = page["data"]["matchCandidates"]["edges"]
    node = edge["node"]
    assert node["id"] == str(strong.id)
    assert node["probability"] == 0.97
    assert node["comparisons"][0] == {"name": "given_name", "level": "Exact match", "weight": 3.1}
    emails = {node["left"]["profile"]["email"], node["right"]["profile"]["email"]}
    assert len(emails) == 2
    assert all("***" in e for e in emails), emails
    assert page["data"]["matchCandidates"]["pageInfo"]["hasNextPage"] is True
    after = page["data"]["matchCandidates"]["pageInfo"]["endCursor"]
    rest = await gql(QUEUE, {"first": 5, "after": after}, analyst)
    assert [e["node"]["id"] for e in rest["data"]["matchCandidates"]["edges"]] == [str(weak.id)]
    above = await gql(QUEUE, {"f": {"minProbability": 0.9}}, analyst)
    assert len(above["data"]["matchCandidates"]["edges"]) == 1
    note = await gql("query { matchCandidates { edges { node { note } } } }", headers=analyst)
    assert note["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_not_a_match_is_remembered_and_only_merging_it_after_all_is_allowed(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    body = await gql(
        RESOLVE, {"id": str(candidate.id), "d": "NOT_A_MATCH", "n": "Mother and daughter."}, steward
    )

    resolved = body["data"]["resolveMatchCandidate"]
    assert resolved["candidate"]["status"] == "NOT_A_MATCH", body
    assert resolved["candidate"]["note"] == "Mother and daughter."
    assert resolved["merge"] is None
    again = await gql(RESOLVE, {"id": str(candidate.id), "d": "NOT_A_MATCH"}, steward)
    assert again["data"]["resolveMatchCandidate"]["code"] == "INVALID_STATE"
    manual = await gql(MERGE, {"s": first, "m": second, "r": "Same."}, steward)
    assert manual["data"]["mergeCustomers"]["code"] == "MARKED_NOT_A_MATCH"
    unknown = await gql(RESOLVE, {"id": str(uuid.uuid4()), "d": "MERGE"}, steward)
    assert unknown["data"]["resolveMatchCandidate"]["code"] == "NOT_FOUND"
    # The steward changes their mind: the queue is where a decided pair is merged after all.
    reconsidered = await gql(RESOLVE, {"id": str(candidate.id), "d": "MERGE"}, steward)
    assert reconsidered["data"]["resolveMatchCandidate"]["candidate"]["status"] == "MERGED"
    merged_twice = await gql(RESOLVE, {"id": str(candidate.id), "d": "MERGE"}, steward)
    assert merged_twice["data"]["resolveMatchCandidate"]["code"] == "INVALID_STATE"


async def test_resolving_a_candidate_as_merge_merges_into_the_older_profile(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    admin = await _headers(auth, Role.ADMIN)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    body = await gql(RESOLVE, {"id": str(candidate.id), "d": "MERGE"}, admin)

    resolved: dict[str, Any] = body["data"]["resolveMatchCandidate"]
    assert resolved["candidate"]["status"] == "MERGED", body
    assert resolved["merge"] == {"kind": "REVIEW", "survivorId": first, "mergedId": second}
    assert resolved["customer"] == {"id": first, "mergedFrom": [second]}
    pending = await gql(QUEUE, {}, admin)
    assert pending["data"]["matchCandidates"]["edges"] == []


async def test_reading_the_survivor_in_a_resolution_is_audited(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    first, second = await _two(vault)
    candidate = await _candidate(first, second, 0.9)

    body = await gql(
        "mutation($id: ID!) { resolveMatchCandidate(input: {id: $id, decision: MERGE}) {"
        " ... on MatchCandidateResolved { customer { profile { email } } } } }",
        {"id": str(candidate.id)},
        steward,
    )

    assert body["data"]["resolveMatchCandidate"]["customer"]["profile"]["email"]
    [read] = await read_records("customer.read", first)
    assert read.fields_touched == ["email"]
