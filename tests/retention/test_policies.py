"""Retention policies through the API: declaring, changing (omitted keeps, null clears what can
be empty), listing both ways, as nodes, and their failure modes."""

from __future__ import annotations

import uuid
from typing import Any

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.retention import policies
from cdlm.retention.models import Action, RetentionPolicy, Trigger
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key

CREATE = """
mutation($input: CreateRetentionPolicyInput!) {
  createRetentionPolicy(input: $input) {
    __typename
    ... on RetentionPolicySaved {
      retentionPolicy { id category eventType periodDays trigger action active }
    }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""
UPDATE = """
mutation($input: UpdateRetentionPolicyInput!) {
  updateRetentionPolicy(input: $input) {
    __typename
    ... on RetentionPolicySaved { retentionPolicy { periodDays action active description } }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""
LIST = """
query($filter: RetentionPolicyFilter, $first: Int, $after: String, $last: Int,
      $before: String) {
  retentionPolicies(filter: $filter, first: $first, after: $after, last: $last,
                    before: $before) {
    totalCount
    nodes { category eventType active }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def policy(
    category: str,
    days: int = 365,
    trigger: str = "SINCE_COLLECTION",
    action: str = "DELETE",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "category": category,
        "periodDays": days,
        "trigger": trigger,
        "action": action,
        **extra,
    }


async def _declare(category: str, days: int = 365, action: Action = Action.DELETE) -> uuid.UUID:
    trigger = {
        "customers.inactive": Trigger.SINCE_LAST_ACTIVITY,
        "dsr.requests": Trigger.SINCE_REQUEST_COMPLETION,
    }.get(category, Trigger.SINCE_COLLECTION)
    if category == "dsr.requests":
        action = Action.CRYPTO_SHRED
    row = await policies.create_policy(
        SYSTEM, category=category, period_days=days, trigger=trigger, action=action
    )
    return row.id


async def test_policies_are_declared_changed_and_audited(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    created = await gql(
        CREATE, {"input": policy("EVENTS", 90, eventType="page_view")}, admin_headers
    )
    saved = created["data"]["createRetentionPolicy"]["retentionPolicy"]
    stored = await RetentionPolicy.get()
    assert saved == {
        "id": gid("RetentionPolicy", stored.id),
        "category": "EVENTS",
        "eventType": "page_view",
        "periodDays": 90,
        "trigger": "SINCE_COLLECTION",
        "action": "DELETE",
        "active": True,
    }
    assert stored.category == "events.page_view"
    changed = await gql(
        UPDATE,
        {"input": {"id": saved["id"], "action": "ANONYMIZE", "active": False}},
        admin_headers,
    )
    assert changed["data"]["updateRetentionPolicy"]["retentionPolicy"] == {
        "periodDays": 90,
        "action": "ANONYMIZE",
        "active": False,
        "description": "",
    }
    listed = await gql(
        "{ retentionPolicies { nodes { category eventType active } } }", None, admin_headers
    )
    assert listed["data"]["retentionPolicies"]["nodes"] == [
        {"category": "EVENTS", "eventType": "page_view", "active": False}
    ]
    actions = await AuditEntry.filter(target_type="retention_policy").values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["retention.policy.create", "retention.policy.update"]
    update = await AuditEntry.get(action="retention.policy.update")
    assert update.fields_touched == ["action", "active"]


async def test_updating_keeps_what_is_omitted_and_clears_only_the_description(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    created = await gql(
        CREATE, {"input": policy("SOURCE_RECORDS", 400, description="Contracts.")}, admin_headers
    )
    pid = created["data"]["createRetentionPolicy"]["retentionPolicy"]["id"]
    kept = await gql(UPDATE, {"input": {"id": pid, "periodDays": 500}}, admin_headers)
    assert kept["data"]["updateRetentionPolicy"]["retentionPolicy"] == {
        "periodDays": 500,
        "action": "DELETE",
        "active": True,
        "description": "Contracts.",
    }
    refused = await gql(
        UPDATE,
        {
            "input": {
                "id": pid,
                "periodDays": None,
                "trigger": None,
                "action": None,
                "active": None,
                "description": None,
            }
        },
        admin_headers,
    )
    assert refused["data"]["updateRetentionPolicy"]["issues"] == [
        {"field": "input.periodDays", "code": "REQUIRED"},
        {"field": "input.trigger", "code": "REQUIRED"},
        {"field": "input.action", "code": "REQUIRED"},
        {"field": "input.active", "code": "REQUIRED"},
    ]
    assert (await RetentionPolicy.get()).description == "Contracts."
    cleared = await gql(UPDATE, {"input": {"id": pid, "description": None}}, admin_headers)
    assert cleared["data"]["updateRetentionPolicy"]["retentionPolicy"]["description"] == ""
    assert (await RetentionPolicy.get()).period_days == 500


async def test_bad_policies_are_refused_and_nothing_changes(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    cases = [
        (policy("SOURCE_RECORDS", eventType="purchase"), "input.eventType"),
        (policy("EVENTS", eventType="Big Purchase"), "input.eventType"),
        (policy("EVENTS", eventType="x" * 58), "input.eventType"),
        (policy("EVENTS", 0), "input.periodDays"),
        (policy("EVENTS", 40_000), "input.periodDays"),
        (policy("EVENTS", trigger="SINCE_LAST_ACTIVITY"), "input.trigger"),
        (policy("SOURCE_RECORDS", action="ANONYMIZE"), "input.action"),
        (
            policy("CUSTOMERS_INACTIVE", trigger="SINCE_LAST_ACTIVITY", action="ARCHIVE"),
            "input.action",
        ),
        (policy("EVENTS", description="x" * 501), "input.description"),
    ]
    for given, field in cases:
        answer = await gql(CREATE, {"input": given}, admin_headers)
        refused = answer["data"]["createRetentionPolicy"]
        assert refused["__typename"] == "ValidationError", given
        assert field in [i["field"] for i in refused["issues"]], (given, refused)
    assert await RetentionPolicy.all().count() == 0
    await gql(CREATE, {"input": policy("EVENTS")}, admin_headers)
    twice = await gql(CREATE, {"input": policy("EVENTS", 30)}, admin_headers)
    assert (
        twice["data"]["createRetentionPolicy"]["code"],
        twice["data"]["createRetentionPolicy"]["field"],
    ) == ("CONFLICT", "input.category")
    unknown = await gql(
        UPDATE, {"input": {"id": gid("RetentionPolicy", uuid.uuid4())}}, admin_headers
    )
    assert unknown["data"]["updateRetentionPolicy"]["code"] == "NOT_FOUND"
    malformed = await gql(UPDATE, {"input": {"id": str(uuid.uuid4())}}, admin_headers)
    assert (
        malformed["data"]["updateRetentionPolicy"]["code"],
        malformed["data"]["updateRetentionPolicy"]["field"],
    ) == ("INVALID_ID", "input.id")
    [only] = await RetentionPolicy.all()
    bad = await gql(
        UPDATE,
        {"input": {"id": gid("RetentionPolicy", only.id), "action": "CRYPTO_SHRED"}},
        admin_headers,
    )
    assert bad["data"]["updateRetentionPolicy"]["field"] == "input.action"
    assert (await RetentionPolicy.get(id=only.id)).action.value == "delete"


async def test_policies_page_both_ways_with_a_filter_and_a_count(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    for category in ("events", "events.purchase", "notifications", "source_records"):
        await _declare(category)
    inactive = await _declare("idempotency_records")
    await policies.update_policy(SYSTEM, policies.PolicyChange(inactive, active=False))

    first = (await gql(LIST, {"first": 2}, admin_headers))["data"]["retentionPolicies"]
    assert first["totalCount"] == 5
    assert [(p["category"], p["eventType"]) for p in first["nodes"]] == [
        ("EVENTS", None),
        ("EVENTS", "purchase"),
    ]
    last = (await gql(LIST, {"last": 2}, admin_headers))["data"]["retentionPolicies"]
    assert [p["category"] for p in last["nodes"]] == ["NOTIFICATIONS", "SOURCE_RECORDS"]
    assert last["pageInfo"]["hasPreviousPage"] is True
    before = await gql(LIST, {"last": 5, "before": last["pageInfo"]["startCursor"]}, admin_headers)
    page = before["data"]["retentionPolicies"]
    assert [p["category"] for p in page["nodes"]] == ["EVENTS", "EVENTS", "IDEMPOTENCY_RECORDS"]
    assert page["pageInfo"]["hasPreviousPage"] is False

    events = await gql(LIST, {"filter": {"category": "EVENTS"}}, admin_headers)
    assert events["data"]["retentionPolicies"]["totalCount"] == 2
    off = await gql(LIST, {"filter": {"active": False}}, admin_headers)
    assert [p["category"] for p in off["data"]["retentionPolicies"]["nodes"]] == [
        "IDEMPOTENCY_RECORDS"
    ]


async def test_a_policy_is_a_node_for_staff(gql: GraphQLClient, auth: AuthSettings) -> None:
    policy_id = await _declare("notifications", 30)
    node = "query($id: ID!) { node(id: $id) { id ... on RetentionPolicy { category periodDays } } }"
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(node, {"id": gid("RetentionPolicy", policy_id)}, analyst)
    assert body["data"]["node"] == {
        "id": gid("RetentionPolicy", policy_id),
        "category": "NOTIFICATIONS",
        "periodDays": 30,
    }
    ingest = bearer(await make_api_key(auth, Role.INGEST))
    refused = await gql(node, {"id": gid("RetentionPolicy", policy_id)}, ingest)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    unknown = await gql(node, {"id": gid("RetentionPolicy", uuid.uuid4())}, analyst)
    assert unknown == {"data": {"node": None}}
