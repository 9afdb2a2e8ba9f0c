"""The audit trail through the API: actors and targets as API objects, paging both ways,
node(id:)."""

from __future__ import annotations

import uuid
from typing import Any

from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry
from cdlm.auth import service as auth_service
from cdlm.auth.settings import AuthSettings
from cdlm.core.principal import SYSTEM, Principal, PrincipalKind
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_staff
from tests.support.sql_counter import StatementRecorder

LOG = """
query($filter: AuditLogFilter, $first: Int, $last: Int, $before: String) {
  auditLog(filter: $filter, first: $first, last: $last, before: $before) {
    nodes {
      id sequence actorKind actorId actorRole targetType targetId fields
      actor {
        __typename
        ... on StaffUser { id displayName }
        ... on ApiKey { id name }
      }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
PLAIN_LOG = """
query($filter: AuditLogFilter, $first: Int, $after: String, $last: Int, $before: String) {
  auditLog(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    nodes { sequence actorKind targetId fields subjectIds }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _actors(auth: AuthSettings) -> tuple[Principal, Principal]:
    staff = await make_staff(auth, Role.STEWARD, name="Sam Steward")
    created = await auth_service.create_api_key(
        SYSTEM, name="crm sync", role=Role.INGEST, expires_at=None, auth=auth
    )
    return (
        Principal(PrincipalKind.USER, staff.user.id, Role.STEWARD, "Sam Steward"),
        Principal(PrincipalKind.API_KEY, created.key.id, Role.INGEST, "crm sync"),
    )


async def test_entries_show_their_actor_and_target_as_api_objects(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    user, key = await _actors(auth)
    customer = uuid.uuid4()
    await audit.record(
        user,
        "customer.update",
        target_type="customer",
        target_id=customer,
        fields=["given_name", "address_line1"],
    )
    await audit.record(key, "customer.ingest", target_type="customer", target_id=customer)
    await audit.record(SYSTEM, "retention.sweep", target_type="sweep_run", target_id="run-1")

    body = await gql(LOG, {"first": 3}, headers=admin_headers)
    system, by_key, by_user = body["data"]["auditLog"]["nodes"]
    assert by_user["actorKind"] == "STAFF_USER"
    assert by_user["actorId"] == gid("StaffUser", user.id)
    assert by_user["actorRole"] == "STEWARD"
    assert by_user["actor"] == {
        "__typename": "StaffUser",
        "id": gid("StaffUser", user.id),
        "displayName": "Sam Steward",
    }
    assert by_user["targetId"] == gid("Customer", customer)
    assert by_user["fields"] == ["profile.address.line1", "profile.givenName"]
    assert by_key["actorKind"] == "API_KEY"
    assert by_key["actor"] == {"__typename": "ApiKey", "id": by_key["actorId"], "name": "crm sync"}
    assert by_key["actorId"] == gid("ApiKey", key.id)
    assert (system["actorKind"], system["actorId"], system["actor"]) == ("SYSTEM", None, None)
    assert (system["targetType"], system["targetId"]) == ("sweep_run", "run-1")
    # Reading the acting staff user's name is itself an audited read.
    read = await AuditEntry.get(action="staff_user.read")
    assert read.target_id == str(user.id)

    about = await gql(
        LOG, {"filter": {"targetId": gid("Customer", customer)}}, headers=admin_headers
    )
    assert [n["actorKind"] for n in about["data"]["auditLog"]["nodes"]] == ["API_KEY", "STAFF_USER"]
    by_kind = await gql(LOG, {"filter": {"actorKind": "SYSTEM"}}, headers=admin_headers)
    assert {n["actorKind"] for n in by_kind["data"]["auditLog"]["nodes"]} == {"SYSTEM"}
    by_raw_target = await gql(LOG, {"filter": {"targetId": "run-1"}}, headers=admin_headers)
    assert len(by_raw_target["data"]["auditLog"]["nodes"]) == 1
    created = await gql(LOG, {"filter": {"action": "staff_user.create"}}, headers=admin_headers)
    (creation,) = created["data"]["auditLog"]["nodes"]
    assert (creation["targetId"], creation["fields"]) == (
        gid("StaffUser", user.id),
        ["displayName", "email"],
    )


async def test_the_actor_needs_the_admin_role_the_rest_does_not(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    user, _ = await _actors(auth)
    await audit.record(user, "customer.update", target_type="customer", target_id=uuid.uuid4())
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    body = await gql(LOG, {"filter": {"action": "customer.update"}}, headers=officer)
    (node,) = body["data"]["auditLog"]["nodes"]
    assert node["actorId"] == gid("StaffUser", user.id)
    assert node["actor"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["auditLog", "nodes", 0, "actor"]
    assert await AuditEntry.filter(action="staff_user.read").count() == 0


async def test_actors_of_a_page_are_read_in_one_batch(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str], sql: StatementRecorder
) -> None:
    user, key = await _actors(auth)
    await gql("{ viewer { role } }", headers=admin_headers)  # the admin key is known now

    async def statements(entries: int) -> int:
        for number in range(entries):
            await audit.record(
                user if number % 2 else key, "customer.update", target_id=str(number)
            )
        with sql.recording():
            body = await gql(LOG, {"first": entries}, headers=admin_headers)
        assert "errors" not in body
        return sql.count

    assert await statements(2) == await statements(10)


JOBS = {"action": "job.run"}


async def test_the_audit_log_pages_backwards(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    for number in range(5):
        await audit.record(SYSTEM, "job.run", target_id=str(number))
    sequences = [
        e.sequence for e in await AuditEntry.filter(action="job.run").order_by("-sequence")
    ]
    last = await gql(PLAIN_LOG, {"filter": JOBS, "last": 2}, headers=admin_headers)
    page = last["data"]["auditLog"]
    assert [n["sequence"] for n in page["nodes"]] == sequences[3:]
    assert (page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["hasNextPage"]) == (True, False)
    before = await gql(
        PLAIN_LOG,
        {"filter": JOBS, "last": 2, "before": page["pageInfo"]["startCursor"]},
        headers=admin_headers,
    )
    middle = before["data"]["auditLog"]
    assert [n["sequence"] for n in middle["nodes"]] == sequences[1:3]
    assert middle["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        PLAIN_LOG,
        {"filter": JOBS, "last": 5, "before": middle["pageInfo"]["startCursor"]},
        headers=admin_headers,
    )
    assert [n["sequence"] for n in rest["data"]["auditLog"]["nodes"]] == sequences[:1]
    assert rest["data"]["auditLog"]["pageInfo"]["hasPreviousPage"] is False
    both = await gql(PLAIN_LOG, {"first": 1, "last": 1}, headers=admin_headers)
    assert both["errors"][0]["extensions"]["field"] == "last"


async def test_a_malformed_actor_id_is_refused_on_its_path(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    for bad in (str(uuid.uuid4()), gid("Customer", uuid.uuid4())):
        body = await gql(PLAIN_LOG, {"filter": {"actorId": bad}}, headers=admin_headers)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_ID"
        assert error["extensions"]["field"] == "filter.actorId"


NODE = """
query($id: ID!) { node(id: $id) { __typename id ... on AuditEntry { sequence action } } }
"""


async def test_node_fetches_an_entry_for_the_oversight_roles_only(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    entry = await audit.record(SYSTEM, "job.run", target_id="1")
    entry_id = gid("AuditEntry", entry.id)
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    found = await gql(NODE, {"id": entry_id}, headers=officer)
    assert found["data"]["node"] == {
        "__typename": "AuditEntry",
        "id": entry_id,
        "sequence": entry.sequence,
        "action": "job.run",
    }
    jobs = '{ auditLog(filter: {action: "job.run"}) { nodes { id } } }'
    listed = await gql(jobs, headers=officer)
    assert listed["data"]["auditLog"]["nodes"] == [{"id": entry_id}]
    several = await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [gid("AuditEntry", uuid.uuid4()), entry_id]},
        headers=officer,
    )
    assert several["data"]["nodes"] == [None, {"id": entry_id}]
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    refused = await gql(NODE, {"id": entry_id}, headers=steward)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = await gql(NODE, {"id": gid("AuditEntry", uuid.uuid4())}, headers=officer)
    assert unknown == {"data": {"node": None}}
    malformed = await gql(NODE, {"id": str(entry.id)}, headers=officer)
    error: dict[str, Any] = malformed["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "id")
