"""Staff users and API keys as Relay nodes: node/nodes, the viewer's own objects, and their
lists paged both ways with a filter and a count."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from cdlm.audit.models import AuditEntry
from cdlm.auth import service as auth_service
from cdlm.auth.models import StaffUser
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from tests.auth.test_login import login
from tests.conftest import GraphQLClient
from tests.factories import DEFAULT_PASSWORD, bearer, gid, make_api_key, make_staff

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on StaffUser { email role }
    ... on ApiKey { name role }
  }
}
"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def test_node_fetches_staff_users_and_api_keys_for_admins(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth, Role.AGENT)
    created = await auth_service.create_api_key(
        SYSTEM, name="shop", role=Role.INGEST, expires_at=None, auth=auth
    )
    user_id, key_id = gid("StaffUser", staff.user.id), gid("ApiKey", created.key.id)
    user = await gql(NODE, {"id": user_id}, headers=admin_headers)
    assert user["data"]["node"] == {
        "__typename": "StaffUser",
        "id": user_id,
        "email": staff.email,
        "role": "AGENT",
    }
    entry = await AuditEntry.get(action="staff_user.read")
    assert (entry.target_id, entry.fields_touched) == (
        str(staff.user.id),
        ["display_name", "email"],
    )
    key = await gql(NODE, {"id": key_id}, headers=admin_headers)
    assert key["data"]["node"] == {
        "__typename": "ApiKey",
        "id": key_id,
        "name": "shop",
        "role": "INGEST",
    }
    several = await gql(
        NODES, {"ids": [key_id, gid("StaffUser", uuid.uuid4()), user_id]}, headers=admin_headers
    )
    assert several["data"]["nodes"] == [
        {"__typename": "ApiKey", "id": key_id},
        None,
        {"__typename": "StaffUser", "id": user_id},
    ]
    assert await gql(NODE, {"id": gid("ApiKey", uuid.uuid4())}, headers=admin_headers) == {
        "data": {"node": None}
    }
    malformed = await gql(NODE, {"id": str(staff.user.id)}, headers=admin_headers)
    error: dict[str, Any] = malformed["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "id")


async def test_node_refuses_staff_users_and_api_keys_to_other_roles(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth, Role.AGENT)
    created = await auth_service.create_api_key(
        SYSTEM, name="shop", role=Role.INGEST, expires_at=None, auth=auth
    )
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    for node_id in (gid("StaffUser", staff.user.id), gid("ApiKey", created.key.id)):
        body = await gql(NODE, {"id": node_id}, headers=officer)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await AuditEntry.filter(action="staff_user.read").count() == 0


VIEWER = """
{
  viewer {
    kind role name
    staffUser { id email displayName role }
    apiKey { id name role revokedAt }
  }
}
"""


async def test_the_viewer_reaches_its_own_staff_user_or_api_key(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth, Role.ANALYST, email="ann.analyst@example.com", name="Ann A")
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    as_user = (await gql(VIEWER, headers=bearer(token)))["data"]["viewer"]
    assert as_user == {
        "kind": "STAFF_USER",
        "role": "ANALYST",
        "name": "Ann A",
        # An analyst is not cleared for personal data, their own record included.
        "staffUser": {
            "id": gid("StaffUser", staff.user.id),
            "email": "a***@example.com",
            "displayName": "A*** A***",
            "role": "ANALYST",
        },
        "apiKey": None,
    }
    created = await auth_service.create_api_key(
        SYSTEM, name="etl", role=Role.INGEST, expires_at=None, auth=auth
    )
    as_key = (await gql(VIEWER, headers=bearer(created.full_key)))["data"]["viewer"]
    assert as_key == {
        "kind": "API_KEY",
        "role": "INGEST",
        "name": "etl",
        "staffUser": None,
        "apiKey": {
            "id": gid("ApiKey", created.key.id),
            "name": "etl",
            "role": "INGEST",
            "revokedAt": None,
        },
    }


STAFF_PAGE = """
query($filter: StaffUserFilter, $first: Int, $after: String, $last: Int, $before: String) {
  staffUsers(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_staff_users_page_backwards_and_count(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    made = []
    for number, role in enumerate([Role.AGENT, Role.AGENT, Role.ANALYST, Role.AGENT, Role.AGENT]):
        with clock.travel(timedelta(seconds=number + 1)):
            made.append(await make_staff(auth, role))
    newest_first = [gid("StaffUser", s.user.id) for s in reversed(made)]
    forwards = (await gql(STAFF_PAGE, {"first": 5}, headers=admin_headers))["data"]["staffUsers"]
    assert [n["id"] for n in forwards["nodes"]] == newest_first
    assert forwards["totalCount"] == 5
    last = (await gql(STAFF_PAGE, {"last": 2}, headers=admin_headers))["data"]["staffUsers"]
    assert [n["id"] for n in last["nodes"]] == newest_first[3:]
    assert (last["pageInfo"]["hasPreviousPage"], last["pageInfo"]["hasNextPage"]) == (True, False)
    assert last["totalCount"] == 5
    before = await gql(
        STAFF_PAGE, {"last": 2, "before": last["pageInfo"]["startCursor"]}, headers=admin_headers
    )
    assert [n["id"] for n in before["data"]["staffUsers"]["nodes"]] == newest_first[1:3]
    agents = await gql(STAFF_PAGE, {"filter": {"role": "AGENT"}, "last": 10}, headers=admin_headers)
    assert agents["data"]["staffUsers"]["totalCount"] == 4
    assert gid("StaffUser", made[2].user.id) not in {
        n["id"] for n in agents["data"]["staffUsers"]["nodes"]
    }
    await StaffUser.filter(id=made[0].user.id).update(active=False)
    active = await gql(STAFF_PAGE, {"first": 1}, headers=admin_headers)
    assert active["data"]["staffUsers"]["totalCount"] == 4
    everyone = await gql(
        STAFF_PAGE, {"filter": {"includeInactive": True}, "first": 1}, headers=admin_headers
    )
    assert everyone["data"]["staffUsers"]["totalCount"] == 5
    bad = await gql(STAFF_PAGE, {"after": "not a cursor"}, headers=admin_headers)
    assert (bad["errors"][0]["extensions"]["code"], bad["errors"][0]["extensions"]["field"]) == (
        "INVALID_CURSOR",
        "after",
    )


KEY_PAGE = """
query($filter: ApiKeyFilter, $first: Int, $last: Int, $before: String) {
  apiKeys(filter: $filter, first: $first, last: $last, before: $before) {
    totalCount
    nodes { name role revokedAt }
    pageInfo { hasNextPage hasPreviousPage startCursor }
  }
}
"""


async def test_api_keys_filter_by_role_page_backwards_and_count(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    for number, role in enumerate([Role.INGEST, Role.AGENT, Role.INGEST]):
        with clock.travel(timedelta(seconds=number + 1)):
            await make_api_key(auth, role, name=f"key {number}")
    revoked = await auth_service.create_api_key(
        SYSTEM, name="old", role=Role.INGEST, expires_at=None, auth=auth
    )
    await auth_service.revoke_api_key(SYSTEM, revoked.key.id)
    ingest = await gql(KEY_PAGE, {"filter": {"role": "INGEST"}}, headers=admin_headers)
    assert [n["name"] for n in ingest["data"]["apiKeys"]["nodes"]] == ["key 2", "key 0"]
    assert ingest["data"]["apiKeys"]["totalCount"] == 2
    with_revoked = await gql(
        KEY_PAGE, {"filter": {"role": "INGEST", "includeRevoked": True}}, headers=admin_headers
    )
    assert with_revoked["data"]["apiKeys"]["totalCount"] == 3
    # The admin key of the fixture is the oldest of all.
    last = (await gql(KEY_PAGE, {"last": 2}, headers=admin_headers))["data"]["apiKeys"]
    assert [n["name"] for n in last["nodes"]] == ["key 0", "test key"]
    assert last["totalCount"] == 4
    assert last["pageInfo"]["hasPreviousPage"] is True
    earlier = await gql(
        KEY_PAGE, {"last": 5, "before": last["pageInfo"]["startCursor"]}, headers=admin_headers
    )
    assert [n["name"] for n in earlier["data"]["apiKeys"]["nodes"]] == ["key 2", "key 1"]
    assert earlier["data"]["apiKeys"]["pageInfo"]["hasPreviousPage"] is False
