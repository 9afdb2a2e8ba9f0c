"""Sweep runs through the API: a connection of runs both ways with a count, each run a node
with its evidence per policy leading to the policy, and the preview naming the run the next
sweep resumes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.retention import archive, policies
from cdlm.retention import sweep as sweeping
from cdlm.retention.models import Action, RetentionPolicy, Trigger
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key
from tests.retention.support import NOW, customer_with_events
from tests.support.sql_counter import StatementRecorder

SWEEPS = """
query($filter: RetentionSweepFilter, $first: Int, $after: String, $last: Int, $before: String) {
  retentionSweeps(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    nodes {
      id asOf finished finishedAt
      outcomes { category eventType disposed policyId policy { id periodDays } }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.fixture
def store(short_tmp: Path) -> archive.LocalArchiveStore:
    return archive.LocalArchiveStore(short_tmp / "archive")


async def test_sweep_runs_page_both_ways_and_lead_to_their_policies(
    gql: GraphQLClient,
    vault: Vault,
    store: archive.LocalArchiveStore,
    admin_headers: dict[str, str],
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"purchase": [400, 10]})
    await policies.create_policy(
        SYSTEM,
        category="events.purchase",
        period_days=365,
        trigger=Trigger.SINCE_COLLECTION,
        action=Action.DELETE,
    )
    policy = await RetentionPolicy.get()
    runs = []
    for day in range(3):
        with clock.frozen_at(NOW + timedelta(days=day)):
            runs.append(await sweeping.sweep(SYSTEM, vault, store))
    ids = [gid("RetentionSweep", r.run_id) for r in runs if r.run_id]

    page = (await gql(SWEEPS, {"first": 2}, admin_headers))["data"]["retentionSweeps"]
    assert page["totalCount"] == 3
    assert [n["id"] for n in page["nodes"]] == [ids[2], ids[1]]
    latest = page["nodes"][1]
    assert latest["finished"] is True
    assert latest["outcomes"] == [
        {
            "category": "EVENTS",
            "eventType": "purchase",
            "disposed": 0,
            "policyId": gid("RetentionPolicy", policy.id),
            "policy": {"id": gid("RetentionPolicy", policy.id), "periodDays": 365},
        }
    ]
    oldest = (await gql(SWEEPS, {"last": 1}, admin_headers))["data"]["retentionSweeps"]
    assert [n["id"] for n in oldest["nodes"]] == [ids[0]]
    assert oldest["nodes"][0]["outcomes"][0]["disposed"] == 1
    assert oldest["pageInfo"]["hasPreviousPage"] is True
    back = await gql(
        SWEEPS, {"last": 2, "before": oldest["pageInfo"]["startCursor"]}, admin_headers
    )
    assert [n["id"] for n in back["data"]["retentionSweeps"]["nodes"]] == [ids[2], ids[1]]
    unfinished = await gql(SWEEPS, {"filter": {"finished": False}}, admin_headers)
    assert unfinished["data"]["retentionSweeps"]["totalCount"] == 0


async def test_a_sweep_is_a_node_and_the_preview_names_the_run_to_resume(
    gql: GraphQLClient,
    vault: Vault,
    store: archive.LocalArchiveStore,
    auth: AuthSettings,
    admin_headers: dict[str, str],
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 401]})
    await policies.create_policy(
        SYSTEM,
        category="events",
        period_days=365,
        trigger=Trigger.SINCE_COLLECTION,
        action=Action.DELETE,
    )
    with clock.frozen_at(NOW):
        stopped = await sweeping.sweep(SYSTEM, vault, store, batch=1, max_seconds=0)
        preview = await gql(
            "{ retentionPreview { unfinishedSweepId unfinishedSweep { id finished } } }",
            None,
            admin_headers,
        )
    assert stopped.run_id is not None
    run = gid("RetentionSweep", stopped.run_id)
    assert preview["data"]["retentionPreview"] == {
        "unfinishedSweepId": run,
        "unfinishedSweep": {"id": run, "finished": False},
    }
    node = "query($id: ID!) { node(id: $id) { id ... on RetentionSweep { finished } } }"
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    assert (await gql(node, {"id": run}, officer))["data"]["node"] == {
        "id": run,
        "finished": False,
    }
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    refused = await gql(node, {"id": run}, steward)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    unknown = await gql(node, {"id": gid("RetentionSweep", uuid.uuid4())}, officer)
    assert unknown == {"data": {"node": None}}
    listed = await gql(SWEEPS, {"filter": {"finished": False}}, admin_headers)
    assert [n["id"] for n in listed["data"]["retentionSweeps"]["nodes"]] == [run]


async def test_runs_with_their_evidence_and_policies_cost_the_same_sql_for_1_or_5(
    gql: GraphQLClient,
    vault: Vault,
    store: archive.LocalArchiveStore,
    admin_headers: dict[str, str],
    sql: StatementRecorder,
) -> None:
    for category in ("events", "notifications", "idempotency_records"):
        await policies.create_policy(
            SYSTEM,
            category=category,
            period_days=30,
            trigger=Trigger.SINCE_COLLECTION,
            action=Action.DELETE,
        )
    for day in range(5):
        with clock.frozen_at(NOW + timedelta(days=day)):
            await sweeping.sweep(SYSTEM, vault, store)
    await gql("{ viewer { role } }", None, admin_headers)
    counts = {}
    for size in (1, 5):
        with sql.recording():
            body = await gql(SWEEPS, {"first": size}, admin_headers)
        nodes = body["data"]["retentionSweeps"]["nodes"]
        assert len(nodes) == size
        assert all(len(n["outcomes"]) == 3 for n in nodes)
        counts[size] = sql.count
    assert counts[1] == counts[5], counts
