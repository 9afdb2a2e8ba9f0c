"""``analyticsRuns`` and ``node(id:)`` on AnalyticsRun: who reads the evidence, both ways of
paging, the filter and the typed fits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key

START = datetime(2026, 6, 1, 3, tzinfo=UTC)

RUNS = """
query ($filter: AnalyticsRunFilter, $first: Int, $after: String, $last: Int, $before: String) {
  analyticsRuns(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node {
      id status asOf customersScored purchases buyers repeatBuyers currency purchaseTypes
      skippedAmounts { currency purchases }
      bgnbd { r alpha a b logLikelihood converged }
      gammaGamma { p q v logLikelihood converged }
      note error
    } }
  }
}
"""
NODE = "query ($id: ID!) { node(id: $id) { __typename ... on AnalyticsRun { id status note } } }"


async def _run(day: int, status: AnalyticsRunStatus, *, fitted: bool = True) -> AnalyticsRun:
    return await AnalyticsRun.create(
        id=uuid.uuid4(),
        status=status,
        as_of=START + timedelta(days=day),
        started_at=START + timedelta(days=day),
        finished_at=START + timedelta(days=day, minutes=1),
        purchase_types=["purchase"],
        currency="EUR",
        customers_scored=100 + day,
        purchases=1000,
        buyers=100 + day,
        repeat_buyers=40,
        skipped_amounts={"JPY": 2},
        bgnbd_r=0.24 if fitted else None,
        bgnbd_alpha=30.9 if fitted else None,
        bgnbd_a=0.79 if fitted else None,
        bgnbd_b=2.43 if fitted else None,
        bgnbd_log_likelihood=-9582.4 if fitted else None,
        bgnbd_converged=True if fitted else None,
        gamma_gamma_p=6.25 if fitted else None,
        gamma_gamma_q=3.74 if fitted else None,
        gamma_gamma_v=15.4 if fitted else None,
        gamma_gamma_log_likelihood=-4053.2 if fitted else None,
        gamma_gamma_converged=True if fitted else None,
        note=None if fitted else "insufficient history: 3 repeat buyers (BG/NBD needs at least 20)",
    )


async def test_analysts_list_runs_newest_first_with_fits_both_ways(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    runs = [
        await _run(0, AnalyticsRunStatus.FINISHED, fitted=False),
        await _run(1, AnalyticsRunStatus.FINISHED),
        await _run(2, AnalyticsRunStatus.FAILED),
    ]
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(RUNS, {"first": 2}, headers)
    page = body["data"]["analyticsRuns"]
    assert page["totalCount"] == 3
    assert [e["node"]["id"] for e in page["edges"]] == [
        gid("AnalyticsRun", runs[2].id),
        gid("AnalyticsRun", runs[1].id),
    ]
    newest = page["edges"][0]["node"]
    assert newest["bgnbd"] == {
        "r": 0.24,
        "alpha": 30.9,
        "a": 0.79,
        "b": 2.43,
        "logLikelihood": -9582.4,
        "converged": True,
    }
    assert newest["gammaGamma"]["q"] == 3.74
    assert newest["skippedAmounts"] == [{"currency": "JPY", "purchases": 2}]
    assert newest["purchaseTypes"] == ["purchase"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(RUNS, {"first": 2, "after": page["pageInfo"]["endCursor"]}, headers)
    (oldest,) = [e["node"] for e in rest["data"]["analyticsRuns"]["edges"]]
    assert oldest["bgnbd"] is None
    assert oldest["gammaGamma"] is None
    assert oldest["note"].startswith("insufficient history")
    backwards = await gql(RUNS, {"last": 1}, headers)
    assert [e["node"]["id"] for e in backwards["data"]["analyticsRuns"]["edges"]] == [
        gid("AnalyticsRun", runs[0].id)
    ]
    failed = await gql(RUNS, {"filter": {"status": "FAILED"}}, headers)
    assert failed["data"]["analyticsRuns"]["totalCount"] == 1


@pytest.mark.parametrize("role", [Role.AGENT, Role.INGEST])
async def test_agents_and_ingest_keys_are_forbidden(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    run = await _run(0, AnalyticsRunStatus.FINISHED)
    headers = bearer(await make_api_key(auth, role))
    listed = await gql(RUNS, {}, headers)
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["FORBIDDEN"]
    fetched = await gql(NODE, {"id": gid("AnalyticsRun", run.id)}, headers)
    assert [e["extensions"]["code"] for e in fetched["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN])
async def test_node_fetches_a_run_for_its_readers(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    run = await _run(0, AnalyticsRunStatus.FINISHED, fitted=False)
    headers = bearer(await make_api_key(auth, role))
    body = await gql(NODE, {"id": gid("AnalyticsRun", run.id)}, headers)
    assert body["data"]["node"] == {
        "__typename": "AnalyticsRun",
        "id": gid("AnalyticsRun", run.id),
        "status": "FINISHED",
        "note": run.note,
    }
    unknown = await gql(NODE, {"id": gid("AnalyticsRun", uuid.uuid4())}, headers)
    assert unknown["data"]["node"] is None
    malformed = await gql(NODE, {"id": "not-an-id"}, headers)
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["INVALID_ID"]
