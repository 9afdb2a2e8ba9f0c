"""The review queue, the match runs and the matching objects as Relay nodes, through the real
ASGI app: connections both ways with their counts and filters, references to follow, and
``node``/``nodes`` with the permissions of each type's own query."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.matching.api.types import ComparisonName, MatchConflict
from cdlm.matching.conflicts import Conflict
from cdlm.matching.decision import Hold
from cdlm.matching.models import (
    CandidateStatus,
    MatchCandidate,
    MatchRun,
    Merge,
    MergeKind,
    RunStatus,
)
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_candidate, make_customer
from tests.matching.test_api import MERGE, customer, key_of
from tests.support.sql_counter import StatementRecorder

QUEUE = """
query($f: MatchCandidateFilter, $first: Int, $after: String, $last: Int, $before: String) {
  matchCandidates(filter: $f, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node {
      id status probability matchWeight conflicts leftId rightId
      comparisons { name level weight }
      left { id profile { email } } right { id profile { email } }
    } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
RUNS = """
query($f: MatchRunFilter, $first: Int, $after: String, $last: Int, $before: String) {
  matchRuns(filter: $f, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    nodes { id status full queued autoMerged }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on MatchCandidate { candidateStatus: status }
    ... on MatchRun { runStatus: status }
    ... on CustomerMerge { kind }
  }
}"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def _headers(auth: AuthSettings, role: Role) -> dict[str, str]:
    return bearer(await make_api_key(auth, role))


async def _customers(vault: Vault, n: int) -> list[uuid.UUID]:
    """``n`` customers whose emails mask differently (their first letters differ)."""
    return [
        (await make_customer(vault, email=f"{chr(97 + i)}grace@example.com")).customer_id
        for i in range(n)
    ]


async def _candidate(left: uuid.UUID, right: uuid.UUID, probability: float) -> MatchCandidate:
    return await make_candidate(
        left,
        right,
        probability=probability,
        comparisons=[
            {"name": "given_name", "level": "Exact match", "weight": 3.1},
            {"name": "birth_date", "level": "Same year", "weight": 1.4},
            {"name": "email", "level": "Same local part", "weight": -1.2},
        ],
    )


async def _run(started_hours_ago: int, status: RunStatus, **counts: Any) -> MatchRun:
    started = clock.now() - timedelta(hours=started_hours_ago)
    return await MatchRun.create(
        id=uuid.uuid4(),
        status=status,
        full=False,
        trained=False,
        model_version=1,
        started_at=started,
        finished_at=None if status is RunStatus.RUNNING else started + timedelta(minutes=5),
        started_by_kind="system",
        review_above=0.8,
        **counts,
    )


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
    first, second, third = await _customers(vault, 3)
    strong = await _candidate(first, second, 0.97)
    weak = await _candidate(second, third, 0.83)
    await MatchCandidate.filter(id=weak.id).update(
        conflicts=[Conflict.BIRTH_DATE_DIFFERS.value, Hold.LEGAL_HOLD.value]
    )
    analyst = await _headers(auth, Role.ANALYST)

    page = await gql(QUEUE, {"first": 1}, analyst)

    queue = page["data"]["matchCandidates"]
    (edge,) = queue["edges"]
    node = edge["node"]
    assert node["id"] == gid("MatchCandidate", strong.id)
    assert node["probability"] == 0.97
    assert (node["leftId"], node["rightId"]) == (
        customer(strong.left_id),
        customer(strong.right_id),
    )
    assert key_of(node["left"]["id"]) == strong.left_id
    assert node["comparisons"] == [
        {"name": "GIVEN_NAME", "level": "Exact match", "weight": 3.1},
        {"name": "BIRTH_DATE", "level": "Same year", "weight": 1.4},
        {"name": "EMAIL", "level": "Same local part", "weight": -1.2},
    ]
    assert node["conflicts"] == []
    emails = {node["left"]["profile"]["email"], node["right"]["profile"]["email"]}
    assert len(emails) == 2
    assert all("***" in e for e in emails), emails
    assert queue["totalCount"] == 2
    assert queue["pageInfo"]["hasNextPage"] is True
    rest = await gql(QUEUE, {"first": 5, "after": queue["pageInfo"]["endCursor"]}, analyst)
    (later,) = rest["data"]["matchCandidates"]["edges"]
    assert later["node"]["id"] == gid("MatchCandidate", weak.id)
    assert later["node"]["conflicts"] == ["BIRTH_DATE_DIFFERS", "LEGAL_HOLD"]
    above = await gql(QUEUE, {"f": {"minProbability": 0.9}}, analyst)
    assert above["data"]["matchCandidates"]["totalCount"] == 1
    assert len(above["data"]["matchCandidates"]["edges"]) == 1
    note = await gql("query { matchCandidates { edges { node { note } } } }", headers=analyst)
    assert note["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_queue_pages_backwards_and_counts_what_its_filter_keeps(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    a, b, c, d = await _customers(vault, 4)
    top = await _candidate(a, b, 0.99)
    middle = await _candidate(a, c, 0.9)
    low = await _candidate(b, c, 0.85)
    decided = await make_candidate(c, d, status=CandidateStatus.NOT_A_MATCH, probability=0.95)
    steward = await _headers(auth, Role.STEWARD)

    last = await gql(QUEUE, {"last": 2}, steward)

    queue = last["data"]["matchCandidates"]
    assert [e["node"]["id"] for e in queue["edges"]] == [
        gid("MatchCandidate", middle.id),
        gid("MatchCandidate", low.id),
    ]
    assert queue["pageInfo"]["hasPreviousPage"] is True
    assert queue["pageInfo"]["hasNextPage"] is False
    assert queue["totalCount"] == 3
    before = await gql(QUEUE, {"last": 5, "before": queue["pageInfo"]["startCursor"]}, steward)
    earlier = before["data"]["matchCandidates"]
    assert [e["node"]["id"] for e in earlier["edges"]] == [gid("MatchCandidate", top.id)]
    assert earlier["pageInfo"]["hasPreviousPage"] is False
    assert earlier["pageInfo"]["hasNextPage"] is True

    every = await gql(QUEUE, {"f": {"status": None}}, steward)
    assert every["data"]["matchCandidates"]["totalCount"] == 4
    assert every["data"]["matchCandidates"]["edges"][1]["node"]["status"] == "NOT_A_MATCH"
    settled = await gql(QUEUE, {"f": {"status": "NOT_A_MATCH"}}, steward)
    assert [e["node"]["id"] for e in settled["data"]["matchCandidates"]["edges"]] == [
        gid("MatchCandidate", decided.id)
    ]
    of_b = await gql(QUEUE, {"f": {"customerId": customer(b)}}, steward)
    assert of_b["data"]["matchCandidates"]["totalCount"] == 2
    assert [e["node"]["id"] for e in of_b["data"]["matchCandidates"]["edges"]] == [
        gid("MatchCandidate", top.id),
        gid("MatchCandidate", low.id),
    ]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"f": {"minProbability": 1.5}}, "IMPLAUSIBLE", "filter.minProbability"),
        ({"f": {"customerId": "customer-1"}}, "INVALID_ID", "filter.customerId"),
        ({"f": {"customerId": gid("MatchRun", uuid.uuid4())}}, "INVALID_ID", "filter.customerId"),
        ({"first": 0}, "VALIDATION", "first"),
        ({"first": 1, "last": 1}, "VALIDATION", "last"),
        ({"after": "not-a-cursor"}, "INVALID_CURSOR", "after"),
    ],
)
async def test_a_bad_queue_argument_is_an_error_on_its_path(
    gql: GraphQLClient,
    auth: AuthSettings,
    variables: dict[str, Any],
    code: str,
    field: str,
) -> None:
    body = await gql(QUEUE, variables, await _headers(auth, Role.STEWARD))

    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (code, field)


async def test_match_runs_newest_first_both_ways_counted_and_filtered(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    oldest = await _run(30, RunStatus.FINISHED, queued=4)
    middle = await _run(20, RunStatus.INTERRUPTED, queued=2)
    newest = await _run(10, RunStatus.FINISHED, queued=1, auto_merged=3)
    officer = await _headers(auth, Role.PRIVACY_OFFICER)

    page = await gql(RUNS, {"first": 2}, officer)

    runs = page["data"]["matchRuns"]
    assert runs["totalCount"] == 3
    assert runs["nodes"] == [
        {
            "id": gid("MatchRun", newest.id),
            "status": "FINISHED",
            "full": False,
            "queued": 1,
            "autoMerged": 3,
        },
        {
            "id": gid("MatchRun", middle.id),
            "status": "INTERRUPTED",
            "full": False,
            "queued": 2,
            "autoMerged": 0,
        },
    ]
    assert runs["pageInfo"]["hasNextPage"] is True
    back = await gql(RUNS, {"last": 1}, officer)
    assert [n["id"] for n in back["data"]["matchRuns"]["nodes"]] == [gid("MatchRun", oldest.id)]
    assert back["data"]["matchRuns"]["pageInfo"]["hasPreviousPage"] is True
    before = await gql(
        RUNS, {"last": 5, "before": back["data"]["matchRuns"]["pageInfo"]["startCursor"]}, officer
    )
    assert [n["id"] for n in before["data"]["matchRuns"]["nodes"]] == [
        gid("MatchRun", newest.id),
        gid("MatchRun", middle.id),
    ]
    finished = await gql(RUNS, {"f": {"status": "FINISHED"}}, officer)
    assert finished["data"]["matchRuns"]["totalCount"] == 2
    assert [n["id"] for n in finished["data"]["matchRuns"]["nodes"]] == [
        gid("MatchRun", newest.id),
        gid("MatchRun", oldest.id),
    ]
    analyst = await gql(RUNS, headers=await _headers(auth, Role.ANALYST))
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_candidate_leads_to_its_run_and_merge_and_the_merge_back_to_it(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    first, second = await _customers(vault, 2)
    run = await _run(1, RunStatus.FINISHED, queued=1)
    candidate = await _candidate(first, second, 0.9)
    await MatchCandidate.filter(id=candidate.id).update(run_id=run.id)
    steward = await _headers(auth, Role.STEWARD)
    await gql(
        "mutation($id: ID!) { resolveMatchCandidate(input: {id: $id, decision: MERGE}) "
        "{ __typename } }",
        {"id": gid("MatchCandidate", candidate.id)},
        steward,
    )

    body = await gql(
        "query { matchCandidates(filter: {status: MERGED}) { nodes {"
        " run { id queued } merge { id kind candidate { id } survivor { id } } } } }",
        headers=steward,
    )

    (node,) = body["data"]["matchCandidates"]["nodes"]
    assert node["run"] == {"id": gid("MatchRun", run.id), "queued": 1}
    assert node["merge"]["kind"] == "REVIEW"
    assert node["merge"]["candidate"] == {"id": gid("MatchCandidate", candidate.id)}
    assert key_of(node["merge"]["survivor"]["id"]) == first  # created first, so it survives
    analyst = await gql(
        "query { matchCandidates(filter: {status: MERGED}) { nodes { run { id } } } }",
        headers=await _headers(auth, Role.ANALYST),
    )
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    without = await gql(
        "query { matchCandidates(filter: {status: MERGED}) { nodes { merge { kind } } } }",
        headers=await _headers(auth, Role.ANALYST),
    )
    assert without["data"]["matchCandidates"]["nodes"] == [{"merge": {"kind": "REVIEW"}}]


async def test_listing_candidates_with_their_references_takes_the_same_statements_at_any_size(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, sql: StatementRecorder
) -> None:
    steward = await _headers(auth, Role.STEWARD)
    people = await _customers(vault, 12)
    run = await _run(1, RunStatus.FINISHED)
    query = (
        "query($n: Int) { matchCandidates(first: $n, filter: {status: null}) { totalCount nodes {"
        " left { profile { email } } right { id } run { id } merge { id kind } } } }"
    )
    await gql(query, {"n": 1}, steward)  # the key's first use is looked up once
    counts = []
    for size in (1, 5):
        for i in range(size):
            left, right = people[2 * i], people[2 * i + 1]
            made = await _candidate(left, right, 0.9 - i / 100)
            merge = await Merge.create(
                id=uuid.uuid4(),
                survivor_id=left,
                merged_id=right,
                kind=MergeKind.AUTOMATIC,
                merged_at=clock.now(),
                merged_by_kind="system",
                merged_state={},
            )
            await MatchCandidate.filter(id=made.id).update(run_id=run.id, merge_id=merge.id)
        with sql.recording():
            body = await gql(query, {"n": size}, steward)
        assert len(body["data"]["matchCandidates"]["nodes"]) == size, body
        counts.append(sql.count)
        await MatchCandidate.all().delete()
        await Merge.all().delete()
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    ("kind", "allowed", "refused"),
    [
        ("MatchCandidate", Role.ANALYST, Role.AGENT),
        ("CustomerMerge", Role.ANALYST, Role.AGENT),
        ("MatchRun", Role.PRIVACY_OFFICER, Role.ANALYST),
    ],
)
async def test_matching_objects_are_nodes_with_the_roles_of_their_own_query(
    gql: GraphQLClient,
    auth: AuthSettings,
    vault: Vault,
    kind: str,
    allowed: Role,
    refused: Role,
) -> None:
    first, second = await _customers(vault, 2)
    steward = await _headers(auth, Role.STEWARD)
    if kind == "MatchCandidate":
        key = (await _candidate(first, second, 0.9)).id
        expected = {"candidateStatus": "PENDING"}
    elif kind == "MatchRun":
        key = (await _run(1, RunStatus.RUNNING)).id
        expected = {"runStatus": "RUNNING"}
    else:
        made = await gql(
            MERGE, {"s": customer(first), "m": customer(second), "r": "Same."}, steward
        )
        key = key_of(made["data"]["mergeCustomers"]["merge"]["id"])
        expected = {"kind": "MANUAL"}
    global_id = gid(kind, key)
    reader = await _headers(auth, allowed)

    found = await gql(NODE, {"id": global_id}, reader)
    listed = await gql(NODES, {"ids": [global_id, gid(kind, uuid.uuid4())]}, reader)
    unknown = await gql(NODE, {"id": gid(kind, uuid.uuid4())}, reader)
    malformed = await gql(NODE, {"id": f"{kind}:{key}"}, reader)
    forbidden = await gql(NODE, {"id": global_id}, await _headers(auth, refused))

    assert found["data"]["node"] == {"__typename": kind, "id": global_id, **expected}, found
    assert listed["data"]["nodes"] == [{"__typename": kind, "id": global_id}, None]
    assert unknown["data"]["node"] is None
    assert malformed["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert forbidden["data"] is None or forbidden["data"]["node"] is None


def test_the_typed_outputs_cover_every_value_matching_stores() -> None:
    from cdlm.matching import engine

    names = {c.get_comparison("duckdb").output_column_name for c in engine.comparisons()}
    assert {n.value for n in ComparisonName} == names
    assert {c.value for c in MatchConflict} == {c.value for c in Conflict} | {h.value for h in Hold}
