"""Retention policies through the API: declaring, changing, and their failure modes."""

from __future__ import annotations

import uuid

from cdlm.audit.models import AuditEntry
from cdlm.retention.models import RetentionPolicy
from tests.conftest import GraphQLClient

CREATE = """
mutation($input: CreateRetentionPolicyInput!) {
  createRetentionPolicy(input: $input) {
    __typename
    ... on RetentionPolicySaved { policy { id category periodDays trigger action active } }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""
UPDATE = """
mutation($input: UpdateRetentionPolicyInput!) {
  updateRetentionPolicy(input: $input) {
    __typename
    ... on RetentionPolicySaved { policy { periodDays action active } }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""


def policy(
    category: str, days: int = 365, trigger: str = "SINCE_COLLECTION", action: str = "DELETE"
) -> dict[str, object]:
    return {"category": category, "periodDays": days, "trigger": trigger, "action": action}


async def test_policies_are_declared_changed_and_audited(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    created = await gql(CREATE, {"input": policy("events.page_view", 90)}, admin_headers)
    saved = created["data"]["createRetentionPolicy"]["policy"]
    assert saved["category"] == "events.page_view"
    assert saved["periodDays"] == 90
    changed = await gql(
        UPDATE,
        {"input": {"id": saved["id"], "action": "ANONYMIZE", "active": False}},
        admin_headers,
    )
    assert changed["data"]["updateRetentionPolicy"]["policy"] == {
        "periodDays": 90,
        "action": "ANONYMIZE",
        "active": False,
    }
    listed = await gql("{ retentionPolicies { category active } }", None, admin_headers)
    assert listed["data"]["retentionPolicies"] == [
        {"category": "events.page_view", "active": False}
    ]
    actions = await AuditEntry.filter(target_type="retention_policy").values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["retention.policy.create", "retention.policy.update"]
    update = await AuditEntry.get(action="retention.policy.update")
    assert update.fields_touched == ["action", "active"]


async def test_bad_policies_are_refused_and_nothing_changes(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    cases = [
        (policy("customers.everyone"), "input.category"),
        (policy("events", 0), "input.periodDays"),
        (policy("events", 40_000), "input.periodDays"),
        (policy("events", trigger="SINCE_LAST_ACTIVITY"), "input.trigger"),
        (policy("source_records", action="ANONYMIZE"), "input.action"),
        (
            policy("customers.inactive", trigger="SINCE_LAST_ACTIVITY", action="ARCHIVE"),
            "input.action",
        ),
        ({**policy("events"), "description": "x" * 501}, "input.description"),
    ]
    for given, field in cases:
        answer = await gql(CREATE, {"input": given}, admin_headers)
        refused = answer["data"]["createRetentionPolicy"]
        assert refused["__typename"] == "ValidationError", given
        assert field in [i["field"] for i in refused["issues"]], (given, refused)
    assert await RetentionPolicy.all().count() == 0
    await gql(CREATE, {"input": policy("events")}, admin_headers)
    twice = await gql(CREATE, {"input": policy("events", 30)}, admin_headers)
    assert twice["data"]["createRetentionPolicy"]["code"] == "CONFLICT"
    unknown = await gql(UPDATE, {"input": {"id": str(uuid.uuid4())}}, admin_headers)
    assert unknown["data"]["updateRetentionPolicy"]["code"] == "NOT_FOUND"
    [only] = await RetentionPolicy.all()
    bad = await gql(
        UPDATE, {"input": {"id": str(only.id), "action": "CRYPTO_SHRED"}}, admin_headers
    )
    assert bad["data"]["updateRetentionPolicy"]["field"] == "input.action"
    assert (await RetentionPolicy.get(id=only.id)).action.value == "delete"
